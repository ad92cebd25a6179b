"""Hostile input never crashes or corrupts a session; damaged session folders fail clearly.

Every public entry point that takes user data (``interact`` with DAVIS dicts, prompt lists or
annotations, ``interact_mask``, ``propagate``, the robot) must either work or raise a
:class:`manet.ManetError` subclass; after a failure the session's masks, rounds and memories
are exactly as before and a valid round still runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.persistence import FORMAT, save_session
from manet.inference.scribbles import Box
from manet.simulate.robot import robot_annotation, robot_scribbles

T, H, W = 4, 32, 48
VIDEO = moving_square_video(frames=T, height=H, width=W)
VALID = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 4], [46, 8]])]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_MODEL: list[Any] = []


def model() -> Any:
    if not _MODEL:
        torch.manual_seed(0)
        _MODEL.append(manet.load_model("tiny", weights=None))
    return _MODEL[0]


def started_session() -> manet.Session:
    """A session with one committed round (so later rounds exercise every memory)."""
    session = manet.Session(model(), VIDEO)
    session.run_round(VALID, frame=1)
    return session


def load_session(folder: Path, model: Any, video: Any) -> manet.Session:
    return manet.Session.load(folder, model, video)


def state(session: manet.Session) -> tuple[Any, ...]:
    committed = session.state()
    memory = committed.global_memory
    maps = None if memory is None else (memory.maps.clone(), memory.written.clone())
    local = [(entry.interactive_frame, sorted(entry.maps)) for entry in committed.local_rounds]
    return session.masks.copy(), list(committed.rounds), committed.channels, maps, local, session.pending


def assert_state(session: manet.Session, expected: tuple[Any, ...]) -> None:
    masks, rounds, channels, maps, local, pending = state(session)
    assert np.array_equal(masks, expected[0]) and rounds == expected[1] and channels == expected[2]
    assert (maps is None) == (expected[3] is None)
    if maps is not None:
        assert torch.equal(maps[0], expected[3][0]) and torch.equal(maps[1], expected[3][1])
    assert local == expected[4] and pending is expected[5]


def assert_still_works(session: manet.Session) -> None:
    assert not session.is_propagating
    count = len(session.rounds)
    masks = session.run_round(VALID, frame=0)
    assert masks.shape == (T, H, W) and masks.dtype == np.uint8 and len(session.rounds) == count + 1
    assert set(np.unique(masks)) <= set(session.state().channels.ids)


def attempt(session: manet.Session, action: Any) -> Any:
    """Run ``action``; on failure it must be a ManetError that left the session untouched."""
    before = state(session)
    try:
        result = action()
    except manet.ManetError as error:
        event(type(error).__name__)
        assert_state(session, before)
        return None
    event("accepted")
    return result


def finish_round(session: manet.Session, mask: np.ndarray, cancel_after: int | None) -> None:
    """Check the interactive mask, then propagate fully or cancel after ``cancel_after`` frames."""
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= set(session.pending.channels.ids)
    before = state(session)
    seen = 0

    def cancel() -> bool:
        return cancel_after is not None and seen >= cancel_after

    try:
        for _ in session.propagate(cancel=cancel):
            seen += 1
    except manet.PropagationCancelled:
        assert_state(session, before[:5] + (session.pending,))
        return
    assert len(session.rounds) == len(before[1]) + 1


# ----------------------------------------------------------------------------- strategies
def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually ``good``, sometimes ``bad``: hostile input should still reach the deep code paths."""
    return st.sampled_from([False] * 5 + [True]).flatmap(lambda hostile: bad if hostile else good)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**70), st.floats(), st.text(max_size=3))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["scribbles", "path", "object_id", "radius", "x"]), inner, max_size=3)),
    max_leaves=8)
unit = st.floats(0, 1)
coordinate = mostly(unit, st.one_of(st.floats(), st.sampled_from([-1e-9, 1 + 1e-9, 2, -1]), json_leaf))
point = mostly(st.tuples(coordinate, coordinate).map(list), st.one_of(st.lists(coordinate, max_size=3), json_leaf))
object_id = mostly(st.integers(0, 3), st.one_of(
    st.integers(-3, 2**70), st.floats(), st.booleans(), st.text(max_size=2), st.none(),
    st.sampled_from([1.0, 2.0, 2.5, 255, 256, 10**30])))
radius = mostly(st.one_of(st.none(), st.floats(1e-3, 0.3)), st.one_of(
    st.floats(), st.text(max_size=2), st.booleans(), st.lists(st.integers(), max_size=2),
    st.sampled_from([1e30, 1e300, 1e-300, 0.0, -0.1])))
stroke = mostly(
    st.fixed_dictionaries({"path": mostly(st.lists(point, min_size=1, max_size=5), json_value),
                           "object_id": object_id}, optional={"radius": radius}),
    json_value)


@st.composite
def davis_dicts(draw: st.DrawFn) -> Any:
    """Mostly DAVIS-shaped dicts with some wrong parts; sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    frames = draw(mostly(st.just(T), st.integers(0, T + 2)))
    per_frame: list[Any] = [[] for _ in range(frames)]
    annotated = draw(mostly(st.lists(st.integers(0, T - 1), min_size=1, max_size=1),
                            st.lists(st.integers(0, T - 1), max_size=2)))
    for index in annotated:
        if index < frames:
            per_frame[index] = draw(mostly(st.lists(stroke, min_size=1, max_size=3), json_value))
    return {"scribbles": per_frame}


pixel = mostly(st.floats(0, min(H, W)), st.one_of(st.floats(), st.integers(-5, 2**70), st.text(max_size=2),
                                                  st.none(), st.lists(st.integers(), max_size=2)))
prompt = st.one_of(
    st.builds(lambda i, p, r: (Scribble, (i, p, r)), object_id,
              mostly(st.lists(st.tuples(pixel, pixel).map(list), min_size=1, max_size=4),
                     st.lists(st.lists(pixel, max_size=3), max_size=3)),
              mostly(st.one_of(st.none(), st.floats(0.5, 8)), pixel)),
    st.builds(lambda i, *c: (Box, (i, *c)), object_id, pixel, pixel, pixel, pixel),
    json_value.map(lambda value: (None, value)))
frame_argument = mostly(st.integers(0, T - 1), st.one_of(st.integers(-2, T + 1), st.none(), st.booleans(),
                                                         st.floats(), st.text(max_size=2)))


def build_prompts(specs: list[tuple[Any, Any]]) -> list[Any]:
    """Construct prompts the way user code does; construction itself may only fail with ManetError."""
    prompts = []
    for kind, arguments in specs:
        if kind is None:
            prompts.append(arguments)
            continue
        try:
            prompts.append(kind(*arguments))
        except manet.ManetError:
            pass
    return prompts


# ----------------------------------------------------------------------------- interaction
@settings(SETTINGS, max_examples=60)
@given(data=davis_dicts(), frame=frame_argument, cancel_after=st.one_of(st.none(), st.integers(0, T)))
def test_random_davis_json_never_breaks_a_session(data: Any, frame: Any, cancel_after: int | None) -> None:
    session = started_session()
    mask = attempt(session, lambda: session.interact(data, frame=frame))
    if mask is not None:
        finish_round(session, mask, cancel_after)
    assert_still_works(session)


@settings(SETTINGS, max_examples=60)
@given(specs=st.lists(prompt, max_size=4), frame=frame_argument, as_annotation=st.booleans(),
       container=st.sampled_from([list, tuple, iter]), cancel_after=st.one_of(st.none(), st.integers(0, T)))
def test_random_prompt_lists_and_annotations(specs: list[Any], frame: Any, as_annotation: bool, container: Any,
                                             cancel_after: int | None) -> None:
    session = started_session()
    prompts = build_prompts(specs)
    if as_annotation:
        argument: Any = manet.Annotation(frame, tuple(p for p in prompts if isinstance(p, Scribble)),
                                         tuple(p for p in prompts if isinstance(p, Box)))
    else:
        argument = container(prompts)
    mask = attempt(session, lambda: session.interact(argument, frame=frame))
    if mask is not None:
        finish_round(session, mask, cancel_after)
    assert_still_works(session)


@SETTINGS
@given(scribbles=st.one_of(json_leaf, st.just(VIDEO[0]), st.just(np.zeros((H, W), np.uint8))), frame=frame_argument)
def test_non_prompt_objects_are_refused(scribbles: Any, frame: Any) -> None:
    session = started_session()
    assert attempt(session, lambda: session.interact(scribbles, frame=frame)) is None
    assert_still_works(session)


mask_dtypes = mostly(st.sampled_from([np.uint8, np.int64, np.bool_]), st.sampled_from([np.int8, np.uint16, np.float32]))
mask_shapes = mostly(st.just((H, W)), st.sampled_from([(W, H), (H, W, 1), (0, 0), (H,), (T, H, W)]))


@SETTINGS
@given(dtype=mask_dtypes, shape=mask_shapes, high=mostly(st.sampled_from([1, 3, 255]), st.just(300)),
       negative=mostly(st.just(False), st.just(True)),
       nan=st.booleans(), frame=frame_argument, cancel_after=st.one_of(st.none(), st.integers(0, T)),
       seed=st.integers(0, 2**16))
def test_random_masks_as_annotations(dtype: Any, shape: tuple[int, ...], high: int, negative: bool, nan: bool,
                                     frame: Any, cancel_after: int | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-3 if negative else 0, high + 1, size=shape)
    mask = values.astype(dtype)
    if nan and np.issubdtype(mask.dtype, np.floating) and mask.size:
        mask.flat[0] = np.nan
    session = started_session()
    result = attempt(session, lambda: session.interact_mask(mask, frame=frame))
    if result is not None:
        assert np.array_equal(result, mask.astype(np.uint8))
        finish_round(session, result, cancel_after)
        if cancel_after is None:
            assert np.array_equal(session.mask(frame), mask.astype(np.uint8)), "a given mask is kept as given"
    assert_still_works(session)


# ----------------------------------------------------------------------------- propagation misuse
def test_propagate_without_a_round_and_twice_at_once() -> None:
    session = started_session()
    before = state(session)
    with pytest.raises(manet.SessionStateError):
        next(session.propagate())
    assert_state(session, before)
    session.interact([Scribble(2, [[30, 8], [34, 12]])], frame=2)
    first = session.propagate()
    next(first)
    with pytest.raises(manet.SessionStateError):
        next(session.propagate())
    first.close()
    assert_state(session, before[:5] + (session.pending,))
    assert_still_works(session)


def test_a_failing_cancel_callback_leaves_the_session_intact() -> None:
    session = started_session()
    before = state(session)  # a failed propagation returns the session to its state before interact()
    session.interact([Scribble(2, [[30, 8], [34, 12]])], frame=2)

    def cancel() -> bool:
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        for _ in session.propagate(cancel=cancel):
            pass
    assert_state(session, before)
    assert_still_works(session)


# ----------------------------------------------------------------------------- the robot
robot_ids = st.lists(st.one_of(st.integers(0, 3), st.integers(-2, 300), st.floats(), st.sampled_from([1.0, 2.5])),
                     max_size=3)


@SETTINGS
@given(seed=st.integers(0, 2**16), gt_shape=st.sampled_from([(H, W), (H, W), (W, H), (0, 0), (H, W, 1)]),
       dtype=st.sampled_from([np.uint8, np.int64, np.float32, np.bool_]), high=st.sampled_from([1, 3, 300]),
       ids=robot_ids)
def test_robot_on_random_masks(seed: int, gt_shape: tuple[int, ...], dtype: Any, high: int, ids: list[Any]) -> None:
    rng = np.random.default_rng(seed)
    gt = blobs(rng, (H, W), high).astype(dtype).reshape(gt_shape) if gt_shape != (0, 0) else np.zeros(gt_shape, dtype)
    pred = blobs(rng, (H, W), high).astype(dtype)
    try:
        scribbles = robot_scribbles(gt, pred, ids, np.random.default_rng(seed))
    except manet.ManetError:
        return
    for scribble in scribbles:
        region = (gt == scribble.object_id) & (pred != scribble.object_id)
        pixels = np.floor(scribble.points).astype(int)
        assert region[pixels[:, 1], pixels[:, 0]].all(), "robot strokes lie inside their error region"


@SETTINGS
@given(seed=st.integers(0, 2**16), high=st.sampled_from([1, 2, 3]))
def test_robot_annotations_are_always_valid_session_input(seed: int, high: int) -> None:
    rng = np.random.default_rng(seed)
    gt = np.stack([blobs(rng, (H, W), high) for _ in range(T)]).astype(np.uint8)
    session = started_session()
    ids = sorted(int(k) for k in np.unique(gt) if k > 0)
    annotation = robot_annotation(gt, session.masks, ids, rng, annotated_frames=session.annotated_frames)
    if annotation is None:
        assert np.array_equal(gt, session.masks)
        return
    finish_round(session, session.interact(annotation), None)
    assert_still_works(session)


def blobs(rng: np.random.Generator, shape: tuple[int, int], high: int) -> np.ndarray:
    """Random ids painted as a few rectangles (robot input needs regions, not noise)."""
    canvas = np.zeros(shape, dtype=np.int64)
    for _ in range(int(rng.integers(0, 4))):
        y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        canvas[y:y + int(rng.integers(1, 16)), x:x + int(rng.integers(1, 24))] = int(rng.integers(0, high + 1))
    return canvas


# ----------------------------------------------------------------------------- damaged session folders
@pytest.fixture
def saved(tmp_path: Path) -> tuple[manet.Session, Path]:
    session = started_session()
    session.run_round([Scribble(2, [[30, 8], [34, 12]])], frame=3)
    return session, save_session(session, tmp_path / "saved")


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def rewrite_manifest(folder: Path, change: Any) -> None:
    data = manifest(folder)
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("victim", ["manifest.json", "embeddings", "computed", "global", "round-001"])
def test_missing_files_are_named(saved, victim: str) -> None:
    _, folder = saved
    path = next(p for p in folder.iterdir() if p.name.startswith(victim))
    path.unlink()
    with pytest.raises(manet.SessionFileError, match=path.name.split("-")[0]):
        load_session(folder, model(), VIDEO)


@pytest.mark.parametrize("victim", ["embeddings", "computed", "global", "round-000", "manifest.json"])
def test_truncated_files_are_named(saved, victim: str) -> None:
    _, folder = saved
    path = next(p for p in folder.iterdir() if p.name.startswith(victim))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(manet.SessionFileError, match=path.name.split("-")[0]):
        load_session(folder, model(), VIDEO)


@pytest.mark.parametrize("version, message", [("manet-session-3", "newer manet"), ("manet-session-0", "not a manet"),
                                              (None, "not a manet"), (7, "not a manet")])
def test_unknown_format_versions(saved, version: Any, message: str) -> None:
    _, folder = saved
    rewrite_manifest(folder, lambda data: data.update(format=version))
    with pytest.raises(manet.SessionFileError, match=message):
        load_session(folder, model(), VIDEO)


@pytest.mark.parametrize("change", [
    lambda data: data.pop("rounds"),
    lambda data: data["rounds"][0].update(strokes=[{"object_id": 1, "points": [[1e9, 0]], "radius": None}]),
    lambda data: data["rounds"][1].update(index=5),
    lambda data: data.update(channels=[0, 1]),
    lambda data: data["rounds"][0].update(channels=[0, 1, 2, 3]),
    lambda data: data["rounds"][1].update(local_frames=[0]),
    lambda data: data.update(grid=[3, 3]),
    lambda data: data["embeddings"].update(shape=[1, 2, 3, 4]),
])
def test_inconsistent_manifests(saved, change: Any) -> None:
    _, folder = saved
    rewrite_manifest(folder, change)
    with pytest.raises(manet.SessionFileError):
        load_session(folder, model(), VIDEO)


def test_tensor_of_wrong_shape_is_named(saved) -> None:
    from safetensors.torch import load_file, save_file

    _, folder = saved
    path = next(folder.glob("round-000-*"))
    tensors = load_file(str(path))
    tensors["logits"] = tensors["logits"][:, :, :-1].contiguous()
    save_file(tensors, str(path))
    with pytest.raises(manet.SessionFileError, match=f"{path.name}.*logits"):
        load_session(folder, model(), VIDEO)


def test_other_video_or_model_is_refused(saved) -> None:
    _, folder = saved
    with pytest.raises(manet.SessionFileError, match="video does not match"):
        load_session(folder, model(), moving_square_video(frames=T, height=H, width=W, seed=1))
    with pytest.raises(manet.SessionFileError, match="video does not match"):
        load_session(folder, model(), VIDEO[:-1])
    torch.manual_seed(1)
    other = manet.load_model("tiny", weights=None)
    with pytest.raises(manet.SessionFileError, match="other model weights"):
        load_session(folder, other, VIDEO)
    wider = manet.load_model("tiny", weights=None, config=manet.ModelConfig.tiny().__class__(
        **{**manet.ModelConfig.tiny().to_dict(), "head_width": 12}))
    with pytest.raises(manet.SessionFileError, match="head_width"):
        load_session(folder, wider, VIDEO)


def test_a_file_in_place_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(manet.SessionFileError):
        load_session(tmp_path / "file", model(), VIDEO)
    assert FORMAT == "manet-session-2"


# ----------------------------------------------------------------------------- odd videos
def test_grayscale_frames_run_a_round() -> None:
    gray = VIDEO.mean(axis=3).astype(np.uint8)
    for frames in (gray, gray[..., None]):
        session = manet.Session(model(), frames)
        assert session.frame(0).shape == (H, W, 3)
        assert session.run_round(VALID, frame=1).shape == (T, H, W)


def test_grayscale_image_folder_runs_a_round(tmp_path: Path) -> None:
    for index, image in enumerate(VIDEO.mean(axis=3).astype(np.uint8)):
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
    session = manet.Session(model(), str(tmp_path))
    assert (session.num_frames, session.height, session.width) == (T, H, W)
    assert session.run_round(VALID, frame=1).shape == (T, H, W)


def test_frames_of_different_sizes_are_refused(tmp_path: Path) -> None:
    for index, image in enumerate(VIDEO):
        if index == 2:
            image = cv2.resize(image, (W + 2, H))
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
    with pytest.raises(manet.VideoError, match="size"):
        manet.Session(model(), str(tmp_path))


def test_ragged_frame_lists_are_refused() -> None:
    with pytest.raises(manet.VideoError):
        manet.Session(model(), [VIDEO[0], VIDEO[1][:, :-1]])
    assert math.isfinite(float(VIDEO.mean()))
