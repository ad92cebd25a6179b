"""Edge-aware upsampling of masks (``SessionConfig.refine_radius``): the box mean, the guided
filter's defining properties, edges taken from the frame, object deletion, and the session switch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synthetic_video import dimmed_noise_video, mask_round

import manet
import manet.inference.refine as refine
from manet.config import SessionConfig
from manet.inference.refine import GuidedUpsampler, box_mean, guided_coefficients
from manet.inference.resample import GridResampler


@pytest.mark.parametrize("radius", [1, 2, 5])
@pytest.mark.parametrize("channels", [None, 1, 3, 300])
def test_box_mean_is_the_mean_of_each_window_cut_at_the_borders(radius: int, channels: int | None) -> None:
    rng = np.random.default_rng(radius)
    shape = (9, 13) if channels is None else (9, 13, channels)
    x = rng.normal(size=shape)
    expected = np.empty_like(x)
    for y in range(9):
        for col in range(13):
            window = x[max(0, y - radius):y + radius + 1, max(0, col - radius):col + radius + 1]
            expected[y, col] = window.mean(axis=(0, 1))
    np.testing.assert_allclose(box_mean(x, radius), expected, rtol=1e-10, atol=1e-12)


def test_a_flat_guide_leaves_a_smoothing_of_the_inputs() -> None:
    """Without colour variation in a window the filter has nothing to follow: slope 0, offset the
    window mean, so the result is the inputs' box mean of box means."""
    rng = np.random.default_rng(1)
    guide = np.full((10, 14, 3), 0.4)
    inputs = rng.uniform(-0.5, 0.5, size=(10, 14, 2))
    slopes, offsets = guided_coefficients(guide, inputs, 2, 1e-3)
    np.testing.assert_allclose(slopes, 0.0, atol=1e-9)
    np.testing.assert_allclose(offsets, box_mean(box_mean(inputs, 2), 2), atol=1e-9)


def test_inputs_that_are_an_affine_function_of_the_colour_come_back_unchanged() -> None:
    """The filter fits q = a . I + b per window: inputs that are exactly such a function (the same
    everywhere) are reproduced up to the small regulariser."""
    rng = np.random.default_rng(2)
    guide = rng.uniform(0, 1, size=(12, 16, 3))
    inputs = (guide @ np.array([0.3, -0.2, 0.1]) + 0.05)[..., None]
    slopes, offsets = guided_coefficients(guide, inputs, 3, 1e-8)
    filtered = (slopes[..., 0, :] * guide).sum(axis=-1) + offsets[..., 0]
    np.testing.assert_allclose(filtered, inputs[..., 0], atol=1e-5)


def edge_scene(edge: int, frame_size: tuple[int, int] = (96, 160)) -> tuple[np.ndarray, torch.Tensor, GuidedUpsampler,
                                                                            GridResampler]:
    """A frame split by a colour edge at column ``edge``, and grid logits that say which side of it
    each grid cell's centre lies on (a cell is 8 frame pixels), as matching on the grid gives them."""
    height, width = frame_size
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, :edge] = (40, 90, 30)    # background: grass
    frame[:, edge:] = (200, 60, 50)   # object: a red wall
    working = (48, 80)               # working size: the frame halved
    grid = (math.ceil(working[0] / 4), math.ceil(working[1] / 4))
    centres = (np.arange(grid[1]) + 0.5) * 4 * width / working[1]
    side = torch.from_numpy(np.where(centres >= edge, 4.0, -4.0)).float()
    logits = torch.zeros(2, *grid)
    logits[1] = side[None, :].expand(grid[0], -1)
    return frame, logits, GuidedUpsampler(grid, working, frame_size, 3, 3e-4), GridResampler(grid, working,
                                                                                                frame_size)


@pytest.mark.parametrize("edge", [61, 70, 83])
def test_refined_masks_take_their_boundary_from_the_frame(edge: int) -> None:
    frame, logits, refiner, plain = edge_scene(edge)
    truth = np.zeros(frame.shape[:2], dtype=np.int64)
    truth[:, edge:] = 1
    refined = refiner.channels(logits, frame).astype(np.int64)
    np.testing.assert_array_equal(refined, truth)
    # the plain bilinear resampling of the same logits puts the boundary between two cell centres
    resampled = plain.to_frame(logits).numpy().argmax(axis=0)
    assert (resampled != truth).any(axis=0).sum() >= 2, "the scene does not test the refinement"


def test_deleting_an_object_changes_no_pixel_of_another() -> None:
    rng = np.random.default_rng(3)
    grid, working, frame_size = (12, 20), (48, 80), (96, 160)
    frame = rng.integers(0, 255, (*frame_size, 3), dtype=np.uint8)
    frame[:, 50:] //= 3
    logits = torch.from_numpy(rng.normal(scale=3, size=(4, *grid))).float()
    refiner = GuidedUpsampler(grid, working, frame_size, 2, 1e-3)
    before = refiner.channels(logits, frame)
    assert set(np.unique(before)) == {0, 1, 2, 3}
    after = refiner.channels(logits[[0, 1, 3]], frame)          # object 2 (channel 2) deleted
    kept = before != 2
    np.testing.assert_array_equal(after[kept], np.array([0, 1, 9, 2])[before[kept]])



def test_a_frame_seen_again_reuses_its_guide_and_gives_the_same_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    grid, working, frame_size = (12, 20), (48, 80), (96, 160)
    frames = rng.integers(0, 255, (3, *frame_size, 3), dtype=np.uint8)
    logits = torch.from_numpy(rng.normal(scale=3, size=(3, *grid))).float()
    fresh = [GuidedUpsampler(grid, working, frame_size, 2, 1e-3).channels(logits, frame) for frame in frames]
    area_calls: list[int] = []
    resize = refine.cv2.resize

    def counted(image: np.ndarray, size: tuple[int, int], **kwargs: object) -> np.ndarray:
        if kwargs.get("interpolation") == refine.cv2.INTER_AREA:
            area_calls.append(1)
        return resize(image, size, **kwargs)

    monkeypatch.setattr(refine.cv2, "resize", counted)
    refiner = GuidedUpsampler(grid, working, frame_size, 2, 1e-3)
    for _ in range(2):  # two rounds over the same three frames
        for index, frame in enumerate(frames):
            np.testing.assert_array_equal(refiner.channels(logits, frame, key=index), fresh[index])
    assert len(area_calls) == 3, "each frame is area-averaged once, then its guide is reused"
    refiner.channels(logits, frames[0])
    assert len(area_calls) == 4, "a call without a key keeps nothing and reuses nothing"
    # the cache is bounded: with room for two guides the oldest goes
    monkeypatch.setattr(refine, "GUIDE_CACHE_BYTES", 2 * 12 * 20 * 3)
    bounded = GuidedUpsampler(grid, working, frame_size, 2, 1e-3)
    for index, frame in enumerate(frames):
        bounded.channels(logits, frame, key=index)
    assert list(bounded._guides) == [1, 2]


def test_refiner_refuses_a_frame_of_another_size() -> None:
    refiner = GuidedUpsampler((12, 20), (48, 80), (96, 160), 2, 1e-3)
    with pytest.raises(ValueError, match=r"\(96, 160, 3\) uint8 frame"):
        refiner.channels(torch.zeros(2, 12, 20), np.zeros((96, 161, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        refiner.channels(torch.zeros(2, 12, 20), np.zeros((96, 160, 3), dtype=np.float32))


@pytest.mark.parametrize("field,value", [("refine_radius", -1.0), ("refine_radius", float("nan")),
                                         ("refine_radius", float("inf")), ("refine_radius", True),
                                         ("refine_eps", -1e-3), ("refine_eps", "small"), ("refine_eps", 0.0)])
def test_config_refuses_a_bad_refinement(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SessionConfig(**{field: value})


def test_refinement_off_is_zero_radius_and_any_eps() -> None:
    assert SessionConfig(refine_radius=0, refine_eps=0.0).refine_radius == 0


def test_session_refinement_changes_the_masks_only(tiny_model) -> None:
    """The switch changes the masks at the frame's size, never the round's logits; with it off
    (and edge snapping off) the masks are the plain resampling's argmax."""
    video, truth = dimmed_noise_video()
    results = {radius: mask_round(tiny_model, video, truth,
                                  SessionConfig(working_size=None, refine_radius=radius, edge_radius=0.0))
               for radius in (0.0, 2.0)}
    plain_logits, plain_masks, plain_session = results[0.0]
    refined_logits, refined_masks, refined_session = results[2.0]
    assert torch.equal(plain_logits, refined_logits)
    resampler = plain_session._resample()
    channels = plain_session.rounds[-1].channels
    for frame in range(1, 6):
        expected = channels.lookup_table()[resampler.to_frame(plain_logits[frame].float()).numpy().argmax(axis=0)]
        np.testing.assert_array_equal(plain_masks[frame], expected)
    assert not np.array_equal(plain_masks[1:], refined_masks[1:]), "the refinement changed nothing"
    # a mask recomputed after the cache forgets it equals the one given while propagating
    refined_session.mask_cache.clear()
    np.testing.assert_array_equal(refined_session.masks, refined_masks)


# ---------------------------------------------------------------- touch-up strokes (touchup_reach)

def square_mask(size: tuple[int, int] = (96, 160)) -> np.ndarray:
    shown = np.zeros(size, dtype=np.uint8)
    shown[24:72, 40:120] = 1
    return shown


def stroke_grid(points: list[tuple[float, float]], object_id: int, grid: tuple[int, int] = (24, 40),
                frame: tuple[int, int] = (96, 160)) -> np.ndarray:
    from manet.inference.scribbles import Scribble, rasterize
    return rasterize([Scribble(object_id, np.array(points, dtype=np.float64))], frame, grid)


def halo_then_touchup(model, frames: int, frame: int, reach: float, observe):
    """Round 1: a mask with a 4-pixel halo right of the object on ``frame`` of a random video;
    then a background stroke along the halo on the same frame, not propagated yet. Returns the
    session and what ``observe`` saw of it between the two."""
    video = np.random.default_rng(5).integers(0, 255, (frames, 96, 160, 3), dtype=np.uint8)
    shown = square_mask()
    shown[24:72, 120:124] = 1
    session = manet.Session(model, video, SessionConfig(working_size=None, refine_radius=0.0, touchup_reach=reach))
    session.interact_mask(shown, frame)
    list(session.propagate())
    seen = observe(session)
    session.interact([manet.Scribble(0, np.array([[121.5, 30.0], [121.5, 66.0]]))], frame=frame)
    return session, seen


def test_touchups_are_strokes_along_the_shown_edge_only() -> None:
    from manet.inference.interaction import touchup_cells
    shown = square_mask()
    shown[24:72, 120:122] = 1   # a 2-pixel halo the mask added right of the object
    halo = stroke_grid([(121, 30), (121, 66)], 0)             # background along the halo
    chunk_mask = shown.copy()
    chunk_mask[30:70, 0:40] = 1                                 # a wide false positive left of it
    chunk = stroke_grid([(20, 40), (20, 60)], 0)               # background through its middle
    inside = stroke_grid([(80, 40), (80, 56)], 1)              # the object, deep inside, already right
    new_object = stroke_grid([(121, 30), (121, 66)], 2)        # an object the mask never showed
    assert touchup_cells(halo, shown, 1.0)[halo >= 0].all()
    assert not touchup_cells(chunk, chunk_mask, 1.0).any()
    assert not touchup_cells(inside, shown, 1.0).any()
    assert not touchup_cells(new_object, shown, 1.0).any()
    assert not touchup_cells(halo, shown, 0.0).any(), "reach 0 finds none"


def test_a_round_of_touchups_writes_no_reference_for_other_frames(tiny_model) -> None:
    """Round 1's mask has a 4-pixel halo right of the object; round 2 draws background along it.
    With touch-ups on, the global memory of every other frame stays round 1's; off (the paper),
    the stroke's cells are new background references and the memory changes."""
    unchanged = {}
    for reach in (0.0, 1.0):
        session, before = halo_then_touchup(tiny_model, 5, 2, reach, lambda s: s.state().global_memory.maps.clone())
        pending = session.pending
        assert pending is not None
        assert (pending.touchups is not None and pending.touchups[pending.labels == 0].all()) == (reach > 0)
        list(session.propagate())
        others = [t for t in range(5) if t != 2]
        unchanged[reach] = torch.equal(session.state().global_memory.maps[others], before[others])
    assert unchanged == {0.0: False, 1.0: True}


@pytest.mark.parametrize("value", [-1.0, float("nan"), True])
def test_config_refuses_a_bad_touchup_reach(value: object) -> None:
    with pytest.raises(ValueError, match="touchup_reach"):
        SessionConfig(touchup_reach=value)


def test_an_object_the_filter_would_erase_keeps_its_plain_pixels() -> None:
    """A one-cell object on a frame without colour edges: window means smooth it away, so the
    plain resampling's pixels of it come back (and nothing else changes)."""
    grid, working, frame_size = (12, 20), (48, 80), (96, 160)
    frame = np.full((*frame_size, 3), 120, dtype=np.uint8)
    logits = torch.zeros(3, *grid)
    logits[0] = 5.0
    logits[1, :, :10] = 10.0          # object 1: the left half
    logits[2, 6, 15] = 10.0           # object 2: one cell on the right
    refiner = GuidedUpsampler(grid, working, frame_size, 3, 3e-4)
    scores = refiner.channels(logits, frame)
    plain = GridResampler(grid, working, frame_size).to_frame(logits).numpy().argmax(axis=0)
    assert (plain == 2).sum() > 0
    np.testing.assert_array_equal(scores == 2, plain == 2)
    assert abs(int((scores == 1).sum()) - int((plain == 1).sum())) < 0.05 * (plain == 1).sum()


def test_touchups_leave_their_own_cells_undecided_and_the_rest_of_the_frame_alone() -> None:
    """A background stroke along the halo of round 1's mask, on the same frame: each of its cells
    ends tied between the stroke's id and what the mask had there (the guided filter then puts
    the edge inside the cell from the frame's colours), and no other cell of the frame changes,
    since a touch-up cell is no reference for the frame's other cells either (heads that are
    pure matching, as shipped). Without touch-ups (reach 0, the paper) every stroke cell goes to
    the background outright."""
    import dataclasses

    from manet.config import ModelConfig
    from manet.model.network import MANet
    untrained = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    results = {}
    for reach in (0.0, 1.0):
        session, before = halo_then_touchup(untrained, 3, 1, reach,
                                            lambda s: s.state().rounds[-1].logits[1].float().argmax(dim=0))
        assert session.pending is not None
        results[reach] = (session.pending.touchups, before, session.pending.logits)
    touchups, before, logits = results[1.0]
    assert touchups is not None and touchups.any()
    cells = torch.from_numpy(touchups)
    assert torch.equal(logits[0][cells], logits.max(dim=0).values[cells]), "background ties with the best"
    assert (before[cells] == 1).any(), "the halo cells were the object's"
    assert torch.equal(logits.argmax(dim=0)[~cells], before[~cells]), "nothing else on the frame changes"
    none, before, logits = results[0.0]
    assert none is None
    assert (logits.argmax(dim=0)[cells] == 0).all(), "without touch-ups the stroke's cells go to the background"
