"""SessionConfig.mirror_embedding: each frame's embedding averages the frame's and its mirror image's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.embeddings import mirror_average


def test_mirror_average_keeps_lengths_and_is_symmetric() -> None:
    first = torch.nn.functional.normalize(torch.randn(2, 8, 5, 7), dim=1) * 0.8
    second = torch.nn.functional.normalize(torch.randn(2, 8, 5, 7), dim=1) * 0.8
    merged = mirror_average(first, second)
    assert torch.allclose(merged.norm(dim=1), torch.full((2, 5, 7), 0.8), atol=1e-5)
    assert torch.equal(merged, mirror_average(second, first))
    assert torch.allclose(mirror_average(first, first), first, atol=1e-6)
    # Lengths that differ meet half-way; the direction is the sum's.
    scaled = mirror_average(first, 3 * first)
    assert torch.allclose(scaled, 2 * first, atol=1e-5)


def test_a_mirrored_video_gets_the_mirrored_embedding_exactly(tiny_model) -> None:
    video = moving_square_video(frames=3, height=32, width=48)
    config = manet.SessionConfig(mirror_embedding=True)
    plain = manet.Session(tiny_model, video, config)
    mirrored = manet.Session(tiny_model, np.ascontiguousarray(video[:, :, ::-1]), config)
    for frame in range(3):
        assert torch.allclose(mirrored.embeddings.get(frame), plain.embeddings.get(frame).flip(-1), atol=1e-3)
    # Without the switch the encoder is not mirror-symmetric, so the two differ.
    single = manet.Session(tiny_model, video, manet.SessionConfig(mirror_embedding=False))
    flipped = manet.Session(tiny_model, np.ascontiguousarray(video[:, :, ::-1]),
                            manet.SessionConfig(mirror_embedding=False))
    assert not torch.allclose(flipped.embeddings.get(0), single.embeddings.get(0).flip(-1), atol=1e-2)
    assert not torch.allclose(single.embeddings.get(0), plain.embeddings.get(0), atol=1e-2)


def test_a_session_loads_only_with_the_mirror_setting_it_was_saved_with(tmp_path, tiny_model) -> None:
    video = moving_square_video(frames=4, height=32, width=48)
    session = manet.Session(tiny_model, video, manet.SessionConfig(mirror_embedding=True))
    session.run_round([Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 5], [46, 10]])], frame=1)
    folder = session.save(tmp_path / "saved")
    assert manet.Session.load(folder, tiny_model, video).config.mirror_embedding
    with pytest.raises(manet.SessionFileError, match="mirror_embedding=True.*load with the saved"):
        manet.Session.load(folder, tiny_model, video, manet.SessionConfig(mirror_embedding=False))


def test_sessions_saved_before_the_switch_load_unmirrored(tmp_path, tiny_model) -> None:
    video = moving_square_video(frames=4, height=32, width=48)
    session = manet.Session(tiny_model, video, manet.SessionConfig(mirror_embedding=False))
    session.run_round([Scribble(1, [[12, 20], [20, 26]])], frame=1)
    folder = session.save(tmp_path / "saved")
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["session_config"]["mirror_embedding"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    loaded = manet.Session.load(folder, tiny_model, video)
    assert not loaded.config.mirror_embedding
    assert np.array_equal(loaded.masks, session.masks)


@pytest.mark.parametrize("value", ["false", 1, None])
def test_config_refuses_a_mirror_setting_that_is_not_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="mirror_embedding must be True or False"):
        manet.SessionConfig(mirror_embedding=value)


def test_the_fast_preset_runs_the_encoder_once_a_frame(tiny_model) -> None:
    assert manet.SessionConfig.fast() == manet.SessionConfig(mirror_embedding=False, touchup_reach=0.5,
                                                             matching_precision="auto")
    video = moving_square_video(frames=3, height=32, width=48)
    images: list[int] = []
    hook = tiny_model.encoder.register_forward_pre_hook(lambda module, inputs: images.append(len(inputs[0])))
    try:
        manet.Session(tiny_model, video, manet.SessionConfig.fast()).prepare()
        assert sum(images) == 3
        images.clear()
        manet.Session(tiny_model, video, manet.SessionConfig()).prepare()
        assert sum(images) == 6  # each frame and its mirror image
    finally:
        hook.remove()
