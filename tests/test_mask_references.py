"""SessionConfig.mask_references: the interactive frame's confident mask joins the global map's references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.propagation import reference_labels
from manet.inference.scribbles import UNLABELLED
from manet.inference.state import Channels


def test_reference_labels_add_confident_pixels_and_keep_strokes() -> None:
    labels = np.full((2, 3), UNLABELLED, dtype=np.int16)
    labels[0, 0] = 5  # a stroke of object 5
    logits = torch.zeros(2, 2, 3)
    logits[1, 0, :] = 6.0   # object 5 very likely on the top row
    logits[0, 1, 0] = 6.0   # background very likely at (1, 0)
    logits[1, 1, 1] = 0.5   # unsure at (1, 1)
    logits[0, 0, 0] = 9.0   # the network disagrees with the stroke at (0, 0): the stroke stays
    channels = Channels((0, 5))
    assert reference_labels(labels, logits, channels, None) is labels
    result = reference_labels(labels, logits, channels, 0.9)
    expected = np.array([[5, 5, 5], [0, UNLABELLED, UNLABELLED]], dtype=np.int16)
    assert np.array_equal(result, expected), result
    assert result.dtype == labels.dtype and labels[0, 1] == UNLABELLED, "the round's own labels are not changed"


def test_mask_references_change_the_propagated_global_map(tiny_model) -> None:
    video = moving_square_video(frames=5, height=32, width=48)
    strokes = [Scribble(1, [[12, 20], [14, 22]], radius=1.0), Scribble(0, [[40, 5], [46, 10]], radius=1.5)]
    plain = manet.Session(tiny_model, video)
    dense = manet.Session(tiny_model, video, manet.SessionConfig(mask_references=0.0))
    for session in (plain, dense):
        session.run_round(strokes, frame=1)
    plain_map = torch.from_numpy(np.stack([plain.maps(3, object_id).global_map for object_id in (0, 1)]))
    dense_map = torch.from_numpy(np.stack([dense.maps(3, object_id).global_map for object_id in (0, 1)]))
    # With every pixel of the interactive frame a reference, each pixel of the next frames finds a
    # reference at least as near as with the strokes alone, and some nearer.
    assert torch.all(dense_map <= plain_map + 1e-6)
    assert float((plain_map - dense_map).max()) > 0.5 * float(plain_map.max()), (plain_map.max(), dense_map.max())


def test_mask_references_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="mask_references"):
        manet.SessionConfig(mask_references=1.0)
    assert manet.SessionConfig().mask_references is None, "the paper's strokes-only references by default"
