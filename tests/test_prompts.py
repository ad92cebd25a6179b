"""Clicks, boxes and full masks as round annotations, mixed with scribbles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import manet
from manet import Box, Scribble
from manet.inference.interaction import scribble_maps, stroke_labels
from manet.inference.scribbles import Annotation
from manet.inference.state import Channels


def test_click_is_a_disc_scribble_scaled_to_the_grid() -> None:
    clicks = Scribble.from_points(1, [[32, 24]], radius=8)
    labels = stroke_labels(Annotation(0, tuple(clicks)), (48, 64), (12, 16), first_round=False, roi_margin=20)
    ys, xs = np.nonzero(labels == 1)
    assert labels[6, 8] == 1 or labels[5, 7] == 1
    assert 2 <= ys.max() - ys.min() + 1 <= 6 and 2 <= xs.max() - xs.min() + 1 <= 6, "radius 8 px = 2 grid cells"
    maps = scribble_maps(labels, Channels((0, 1)), torch.device("cpu"))
    assert float(maps[1].max()) == 1.0 and float(maps[0].min()) == -1.0


def test_box_marks_outside_as_background_and_seeds_inside() -> None:
    box = Box(2, 16, 8, 48, 40)
    labels = stroke_labels(Annotation(0, (), (box,)), (48, 64), (12, 16), first_round=False, roi_margin=20)
    assert np.all(labels[:, :3] == 0) and np.all(labels[:, 12:] == 0), "outside the box is background"
    assert (labels[2:10, 4:12] == 2).any(), "a positive seed inside the box"
    assert not (labels[2:10, 4:12] == 0).any()


@pytest.mark.parametrize("bad", [dict(object_id=0), dict(x1=10), dict(y0=float("nan"))])
def test_bad_boxes_are_refused(bad: dict) -> None:
    args = dict(object_id=1, x0=16, y0=8, x1=48, y1=40) | bad
    with pytest.raises(manet.ScribbleError):
        Box(**args)


def test_prompts_mix_in_one_round(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    prompts = [Scribble(1, [[12, 20], [20, 26]]), *Scribble.from_points(0, [[55, 40]], radius=3),
               Box(2, 30, 4, 60, 20)]
    mask = session.interact(prompts, frame=3)
    assert mask.shape == (48, 64)
    list(session.propagate())
    assert session.object_ids == [1, 2]
    with pytest.raises(manet.ScribbleError):
        session.interact([Box(1, 0, 0, 80, 20)], frame=0)


def test_mask_annotation_is_kept_exactly_and_propagated(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    painted = np.zeros((48, 64), dtype=np.uint8)
    painted[16:32, 14:30] = 3
    painted[0:5, 0:7] = 1  # an odd shape that a grid-level result could not reproduce
    returned = session.interact_mask(painted, frame=3)
    assert np.array_equal(returned, painted)
    list(session.propagate())
    assert np.array_equal(session.mask(3), painted)
    assert session.object_ids == [1, 3]
    global_map = session.maps(3, 3).global_map
    assert float(global_map[5, 5]) < 0.05, "mask pixels are written into the global memory"
    # A later scribble round elsewhere leaves the painted frame exactly as painted.
    session.run_round([Scribble(3, [[40, 20], [44, 28]])], frame=6)
    assert np.array_equal(session.mask(3), painted)
    assert np.array_equal(session.masks[3], painted)
    session.undo_round()
    session.undo_round()
    assert not session.masks.any()


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.full((48, 64), 300, np.int32),
                                 np.zeros((48, 64), np.float32)])
def test_bad_masks_are_refused(tiny_model, video, bad: np.ndarray) -> None:
    session = manet.Session(tiny_model, video)
    with pytest.raises(manet.ScribbleError):
        session.interact_mask(bad, frame=0)
    assert session.pending is None


def test_strokes_become_clicks_at_their_middle() -> None:
    from manet.inference.scribbles import click_radius, strokes_to_clicks

    stroke = Scribble(2, [[0, 0], [10, 0], [20, 0]])
    clicked = strokes_to_clicks(Annotation(4, (stroke,)), radius=click_radius(240, 427))
    (click,) = clicked.scribbles
    assert clicked.frame == 4 and click.object_id == 2
    assert np.array_equal(click.points, [[10.0, 0.0]]) and click.radius == pytest.approx(9.6)


def test_evaluator_runs_with_clicks(tmp_path, tiny_model) -> None:
    from data_synthetic import make_synthetic_davis

    from manet.config import SessionConfig
    from manet.eval.dataset import find_sequences
    from manet.eval.evaluate import EvalSettings, evaluate

    root = make_synthetic_davis(tmp_path, sequences=1, frames=4)
    settings = EvalSettings(rounds=2, prompt="clicks")
    result = evaluate(tiny_model, find_sequences(root, None), SessionConfig(), settings)
    assert len(result.sequences[0].rounds) == 2
