"""SessionConfig.encoder_size: the encoder sees larger frames, matching stays on the working grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.embeddings import embedding_grid, resample_embedding


def test_resample_embedding_keeps_unit_lengths_and_is_the_identity_on_its_own_grid() -> None:
    embedding = torch.nn.functional.normalize(torch.randn(1, 8, 12, 20), dim=1) * 0.8
    assert torch.allclose(resample_embedding(embedding, (12, 20)), embedding, atol=1e-6)
    smaller = resample_embedding(embedding, (9, 15))
    assert smaller.shape == (1, 8, 9, 15)
    assert torch.allclose(smaller.norm(dim=1), torch.full((1, 9, 15), 0.8), atol=1e-5)
    assert embedding_grid((240, 427)) == (60, 107)


def test_the_embedding_is_the_encoder_size_embedding_resampled_to_the_working_grid(tiny_model) -> None:
    video = moving_square_video(frames=2, height=64, width=96)
    session = manet.Session(tiny_model, video, manet.SessionConfig(working_size=32, encoder_size=48,
                                                                 mirror_embedding=False))
    assert session.working_size == (32, 48) and session.encoder_size == (48, 72)
    assert session.embeddings.encoder_frame(0).shape == (48, 72, 3)
    larger = manet.Session(tiny_model, video, manet.SessionConfig(working_size=48, mirror_embedding=False))
    for frame in range(2):
        embedding = session.embeddings.get(frame)
        assert embedding.shape[-2:] == (8, 12) == session.grid
        expected = resample_embedding(larger.embeddings.get(frame)[None], (8, 12))[0]
        assert torch.allclose(embedding, expected, atol=2e-3 * float(expected.abs().max()))
    plain = manet.Session(tiny_model, video, manet.SessionConfig(working_size=32, mirror_embedding=False))
    assert not torch.allclose(plain.embeddings.get(0), session.embeddings.get(0), atol=1e-2)
    # A round runs on the working grid and gives masks at the video's size.
    session.run_round([Scribble(1, [[30, 40], [40, 50]]), Scribble(0, [[80, 5], [90, 10]])], frame=1)
    assert session.masks.shape == (2, 64, 96)


def test_the_encoder_never_sees_frames_larger_than_the_video(tiny_model) -> None:
    video = moving_square_video(frames=1, height=32, width=48)
    session = manet.Session(tiny_model, video, manet.SessionConfig(working_size=24, encoder_size=320))
    assert session.encoder_size == (32, 48)
    assert session.embeddings.get(0).shape[-2:] == embedding_grid((24, 36))
    same = manet.Session(tiny_model, video, manet.SessionConfig(working_size=32, encoder_size=320))
    assert same.embeddings.encoder_size is None  # nothing to resample: the encoder sees the working size


def test_a_session_loads_only_with_the_encoder_size_it_was_saved_with(tmp_path, tiny_model) -> None:
    video = moving_square_video(frames=3, height=64, width=96)
    config = manet.SessionConfig(working_size=32, encoder_size=48)
    session = manet.Session(tiny_model, video, config)
    session.run_round([Scribble(1, [[30, 40], [40, 50]])], frame=1)
    folder = session.save(tmp_path / "saved")
    loaded = manet.Session.load(folder, tiny_model, video)
    assert loaded.config.encoder_size == 48 and np.array_equal(loaded.masks, session.masks)
    with pytest.raises(manet.SessionFileError, match="encoder_size=48.*load with the saved encoder_size"):
        manet.Session.load(folder, tiny_model, video, config.replace(encoder_size=None))
    # Saves from before the switch embedded at the working size: they load with encoder_size None.
    plain = manet.Session(tiny_model, video, config.replace(encoder_size=None))
    plain.run_round([Scribble(1, [[30, 40], [40, 50]])], frame=1)
    older = plain.save(tmp_path / "older")
    manifest = json.loads((older / "manifest.json").read_text(encoding="utf-8"))
    del manifest["session_config"]["encoder_size"]
    (older / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert manet.Session.load(older, tiny_model, video).config.encoder_size is None
    with pytest.raises(manet.SessionFileError, match="load with the saved encoder_size"):
        manet.Session.load(older, tiny_model, video, config)


@pytest.mark.parametrize("value", [True, 15, 320.0, "320"])
def test_config_refuses_an_encoder_size_that_is_not_a_size(value: object) -> None:
    with pytest.raises(ValueError, match="encoder_size must be a whole number of pixels >= 16 or None"):
        manet.SessionConfig(encoder_size=value)
