"""``manet_widget.Annotator`` on a real session (tiny random model), without a browser: traits,
messages sent to the front end, the Python API and the import direction."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from protocol_encoders import encode_run, encode_strokes

import manet
from manet import Box, Scribble
from manet.inference.scribbles import click_radius
from manet_widget import Annotator, protocol


def tiny_video(frames: int = 5, height: int = 48, width: int = 64) -> np.ndarray:
    video = np.full((frames, height, width, 3), 50, np.uint8)
    for t in range(frames):
        video[t, 12:36, 8 + 4 * t:32 + 4 * t] = (220, 40, 40)
    return video


@pytest.fixture
def annotator() -> Annotator:
    torch.manual_seed(0)
    model = manet.load_model(weights=None, config=manet.ModelConfig.tiny())
    widget = Annotator.from_video(tiny_video(), model=model)
    assert widget.wait(30)
    return widget


def capture(widget: Annotator) -> list[tuple[dict[str, Any], list[bytes]]]:
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    widget.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    return sent


def test_traits_describe_the_session(annotator: Annotator) -> None:
    assert (annotator.num_frames, annotator.height, annotator.width) == (5, 48, 64)
    assert annotator.objects == [{"id": 1, "name": "object 1", "color": "#e6194b"}]
    assert annotator.status == "idle" and annotator.round_index == 0 and annotator.brush_radius == 2.0
    assert annotator.masks.shape == (5, 48, 64) and not annotator.masks.any()
    state = annotator.get_state()
    assert {"frame_index", "overlay_opacity", "map_overlay", "tool", "mask_version"} <= set(state)


def test_front_end_messages_drive_a_real_round(annotator: Annotator) -> None:
    sent = capture(annotator)
    scribbles = [Scribble(1, np.array([[12.0, 20.0], [28.0, 28.0]]), 3.0),
                 Scribble(0, np.array([[55.0, 5.0], [60.0, 40.0]]), 2.0)]
    meta, header, data = encode_strokes(scribbles)
    annotator._on_custom_message(annotator, {"type": "run", "frame": 1, "strokes": meta, "header": header},
                                 [memoryview(data)])
    assert annotator.wait(60)
    assert annotator.error == ""
    kinds = [content["type"] for content, _ in sent]
    assert kinds[0] == "round_started" and kinds[-1] == "round_finished"
    assert sum(1 for content, _ in sent if content["type"] == "mask") == 5
    round_record = annotator.session.rounds[0]
    assert round_record.annotation.frame == 1
    np.testing.assert_allclose(round_record.annotation.scribbles[0].points, scribbles[0].points)
    assert annotator.round_index == 1 and annotator.annotated_frames == [1] and annotator.mask_version == 1
    np.testing.assert_array_equal(annotator.masks, annotator.session.masks)
    assert 0 <= annotator.suggested_frame < 5 and annotator.suggested_frame != 1


def test_clicks_and_a_box_from_the_front_end_reach_the_session(annotator: Annotator) -> None:
    content, buffers = encode_run(2, clicks=[protocol.Click(1, 20.0, 24.0, None)],
                                           boxes=[Box(1, 10.0, 10.0, 40.0, 38.0)])
    annotator._on_custom_message(annotator, content, [memoryview(b) for b in buffers])
    assert annotator.wait(60) and annotator.error == ""
    annotation = annotator.session.rounds[0].annotation
    assert annotation.boxes == (Box(1, 10.0, 10.0, 40.0, 38.0),)
    (click,) = annotation.scribbles
    assert click.points.tolist() == [[20.0, 24.0]] and click.radius == click_radius(48, 64) == annotator.click_radius
    assert annotator.round_history[0]["clicks"] == 1 and annotator.round_history[0]["boxes"] == 1


def test_python_api_round_undo_and_map(annotator: Annotator) -> None:
    annotator.run([Scribble(1, np.array([[15.0, 20.0], [25.0, 30.0]]), 3.0)], frame=0)
    assert annotator.round_index == 1 and annotator.error == ""
    sent = capture(annotator)
    annotator._on_custom_message(annotator, {"type": "request_map", "index": 0, "object_id": 1, "kind": "global"}, [])
    reply, buffers = sent[-1]
    assert reply["type"] == "map" and reply["header"]["encoding"] == "zlib"
    assert protocol.decode_array(reply["header"], buffers).shape == (48, 64)
    annotator.undo_round()
    assert annotator.round_index == 0 and not annotator.masks.any()


def test_objects_from_python(annotator: Annotator) -> None:
    assert annotator.add_object("car") == 2
    annotator.rename_object(1, "dog")
    assert [(o["id"], o["name"]) for o in annotator.objects] == [(1, "dog"), (2, "car")]
    annotator.delete_object(2)
    assert [o["id"] for o in annotator.objects] == [1]


def test_errors_in_handlers_show_in_the_error_trait(annotator: Annotator) -> None:
    sent = capture(annotator)
    annotator._on_custom_message(annotator, {"type": "request_frame", "index": 99}, [])
    assert annotator.error.startswith("FrameIndexError") and "outside the video" in annotator.error
    assert sent[-1][0] == {"type": "error", "message": annotator.error}


def test_library_never_imports_the_widget_stack() -> None:
    code = ("import sys, manet; bad = [m for m in ('anywidget', 'ipywidgets', 'traitlets', 'manet_widget')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def write_frames(folder: Path, video: np.ndarray) -> Path:
    folder.mkdir()
    for t, frame in enumerate(video):
        cv2.imwrite(str(folder / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def tiny_model() -> Any:
    torch.manual_seed(0)  # a restarted kernel rebuilds the same weights
    return manet.load_model(weights=None, config=manet.ModelConfig.tiny())


def test_autosave_survives_a_kernel_restart(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "frames", tiny_video())
    folder = tmp_path / "autosave"
    first = Annotator.from_video(frames, model=tiny_model(), autosave=folder)
    assert first.wait(60) and first.autosave_state == "ready" and first.autosave_path == str(folder)
    first.rename_object(1, "dog")
    first.run([Scribble(1, np.array([[12.0, 20.0], [28.0, 28.0]]), 3.0), Box(1, 8.0, 10.0, 36.0, 38.0)], frame=1)
    painted = first.masks[3].copy()
    painted[2:8, 50:60] = 2
    first.apply_mask(painted, frame=3)
    assert first.error == "" and first.autosave_state == "saved" and first.round_index == 2
    masks, history = first.masks, first.round_history
    del first
    gc.collect()

    second = Annotator.from_video(frames, model=tiny_model(), autosave=folder)
    assert second.wait(60) and second.error == ""
    assert second.round_index == 2 and second.round_history == history
    np.testing.assert_array_equal(second.masks, masks)
    np.testing.assert_array_equal(second.masks[3], painted)
    assert [(o["id"], o["name"]) for o in second.objects] == [(1, "dog"), (2, "object 2")]
    second.undo_round()  # saved again: a third kernel sees one round
    assert second.wait(60) and second.autosave_state == "saved"
    assert len(manet.Session.load(folder, tiny_model(), frames).rounds) == 1


def test_autosave_refuses_to_overwrite_another_save(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "frames", tiny_video())
    folder = tmp_path / "autosave"
    model = tiny_model()
    first = Annotator.from_video(frames, model=model, autosave=folder, prepare=False)
    first.run([Scribble(1, np.array([[12.0, 20.0]]), 3.0)], frame=0)
    assert first.autosave_state == "saved"
    with pytest.raises(manet.SessionStateError, match="resume them with Annotator.from_video"):
        Annotator(manet.Session(model, frames), autosave=folder, prepare=False)
    other = tiny_video()[:, :, ::-1].copy()
    with pytest.raises(manet.SessionFileError, match="another video"):
        Annotator(manet.Session(model, other), autosave=folder, prepare=False)
    with pytest.raises(manet.SessionFileError, match="cannot be resumed"):
        Annotator.from_video(other, model=model, autosave=folder, prepare=False)
    assert len(manet.Session.load(folder, model, frames).rounds) == 1


def test_python_api_propagation_range_object_deletion_and_undo(annotator: Annotator) -> None:
    annotator.run([Scribble(1, np.array([[15.0, 20.0], [25.0, 30.0]]), 3.0)], frame=0)
    first = annotator.masks
    annotator.run([Scribble(2, np.array([[50.0, 6.0], [56.0, 12.0]]), 3.0)], frame=3, start=3, stop=4)
    assert annotator.error == "" and annotator.round_index == 2
    np.testing.assert_array_equal(annotator.masks[:3], first[:3])  # outside the range: unchanged
    assert annotator.can_undo and annotator.protocol_version == protocol.PROTOCOL_VERSION
    assert [o["id"] for o in annotator.objects] == [1, 2]
    with_both = annotator.masks
    annotator.delete_object(1)
    assert annotator.wait(30) and annotator.error == ""
    assert [o["id"] for o in annotator.objects] == [2] and 1 not in np.unique(annotator.masks)
    annotator.undo()
    assert [o["id"] for o in annotator.objects] == [1, 2]
    np.testing.assert_array_equal(annotator.masks, with_both)
    with pytest.raises(manet.FrameIndexError, match="outside the propagation range"):
        annotator.run([Scribble(1, np.array([[15.0, 20.0]]), 3.0)], frame=0, start=2, stop=4)


def test_names_an_older_annotator_kept_beside_its_save_are_adopted(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "frames", tiny_video())
    folder = tmp_path / "autosave"
    first = Annotator.from_video(frames, model=tiny_model(), autosave=folder, prepare=False)
    first.run([Scribble(1, np.array([[12.0, 20.0], [28.0, 28.0]]), 3.0)], frame=1)
    assert first.autosave_state == "saved"
    del first
    gc.collect()
    # The side file older annotators wrote (before sessions held their objects' names).
    side = {"objects": [{"id": 1, "name": "ball"}, {"id": 4, "name": "net"}]}
    (folder / "annotator.json").write_text(json.dumps(side), encoding="utf-8")
    second = Annotator.from_video(frames, model=tiny_model(), autosave=folder, prepare=False)
    assert [(o["id"], o["name"]) for o in second.objects] == [(1, "ball"), (4, "net")]
    assert [(o.id, o.name) for o in second.session.objects] == [(1, "ball"), (4, "net")]


def test_the_widget_package_has_no_import_cycle() -> None:
    import test_import_cycles as walk  # the same import walk as for manet (TYPE_CHECKING imports count)

    graph = walk.import_graph(walk.ROOT, "manet_widget")
    assert "manet_widget.round_job" in graph and "manet_widget.protocol.schema" in graph
    assert walk.circles(graph) == []
