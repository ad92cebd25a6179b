"""An untrained propagation head (zero classifier) never reads local maps, so a round records
only which frame each map would match and computes the map when someone asks for it: the masks
are the same, and ``Session.maps``, saved sessions, object deletion and a later trained head
see the same local maps as if they had been computed while the round ran."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
import manet.inference.propagation as propagation
from manet import Scribble, SessionConfig
from manet.config import ModelConfig
from manet.inference.memory import LocalMemory
from manet.model.heads import SegmentationHead
from manet.model.matching import upsample_maps
from manet.model.network import MANet

FIRST = [Scribble(1, [[12, 20], [20, 26]]), Scribble(2, [[50, 30], [56, 34]]), Scribble(0, [[4, 4], [10, 6]])]
SECOND = [Scribble(1, [[30, 20], [34, 30]]), Scribble(0, [[56, 40], [60, 44]])]
ATOL = 2e-3  # maps are stored in float16


@pytest.fixture
def untrained() -> MANet:
    """A tiny model whose heads are pure matching (zero classifiers), as in the shipped weights."""
    torch.manual_seed(0)
    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    assert model.propagation_head.adds_nothing() is False  # autograd is on here
    with torch.inference_mode():
        assert model.propagation_head.adds_nothing()
    return model


@pytest.fixture
def video() -> np.ndarray:
    return moving_square_video()


def _two_rounds(model: MANet, video: np.ndarray, config: SessionConfig | None = None) -> manet.Session:
    # float32: a head that runs its layers under bfloat16 autocast rounds the logits it adds to.
    session = manet.Session(model, video, config or SessionConfig(memory_rounds=2, precision="float32"))
    session.run_round(FIRST, frame=1)
    session.run_round(SECOND, frame=6)
    return session


def _eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every head run its layers: a zero classifier then gives the same logits, and the
    rounds compute and store their local maps as they go."""
    monkeypatch.setattr(SegmentationHead, "adds_nothing", lambda self: False)


def _local_maps(session: manet.Session, object_id: int) -> list[np.ndarray]:
    maps = [session.maps(frame, object_id).local_map for frame in range(session.num_frames)]
    return [np.full((1, 1), np.nan) if value is None else value for value in maps]


def _assert_maps_close(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    for frame, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a.shape == b.shape and np.allclose(a, b, atol=ATOL, equal_nan=True), f"frame {frame}"


def test_rounds_defer_local_maps_and_maps_computes_them(untrained, video, monkeypatch) -> None:
    calls: list[int] = []
    original = propagation.local_distances
    monkeypatch.setattr(propagation, "local_distances", lambda *args, **kwargs: calls.append(1) or original(
        *args, **kwargs))
    deferred = _two_rounds(untrained, video)
    assert not calls, "an untrained propagation head: no local distances while the rounds run"
    for local, frame in zip(deferred.state().local_rounds, (1, 6), strict=True):
        assert not local.maps
        expected = {t: t - 1 if t > frame else t + 1 for t in range(video.shape[0]) if t != frame}
        assert local.deferred == expected, "each frame remembers the frame it was propagated from"
    lazy = _local_maps(deferred, 1)
    assert calls, "Session.maps computed the local maps it was asked for"
    assert all(value.ndim == 2 and np.isfinite(value).all() for value in lazy[:1] + lazy[2:])

    with monkeypatch.context() as patch:
        _eager(patch)
        eager = _two_rounds(untrained, video)
        assert all(local.maps and not local.deferred for local in eager.state().local_rounds)
        eager_maps = _local_maps(eager, 1)
    assert np.array_equal(eager.masks, deferred.masks), "the masks do not depend on the deferral"
    _assert_maps_close(lazy, eager_maps)
    assert any(not np.allclose(value, 1.0) for value in lazy if value.size > 1), "the maps hold distances"



def test_maps_without_the_local_map_compute_no_local_distances(untrained, video, monkeypatch) -> None:
    session = _two_rounds(untrained, video)
    calls: list[int] = []
    original = propagation.local_distances
    monkeypatch.setattr(propagation, "local_distances", lambda *args, **kwargs: calls.append(1) or original(
        *args, **kwargs))
    computed = 0
    for frame in (1, 3, 6):
        quick = session.maps(frame, 1, local=False)
        assert quick.local_map is None
        assert len(calls) == computed, f"frame {frame}: the global map alone computed local distances"
        whole = session.maps(frame, 1)
        computed = len(calls)
        np.testing.assert_array_equal(quick.global_map, whole.global_map)
        if whole.augmented_map is None:
            assert quick.augmented_map is None
        else:
            np.testing.assert_array_equal(quick.augmented_map, whole.augmented_map)
    assert calls, "the default still computes the deferred local map"
    assert session.maps(6, 1).augmented_map is not None, "frame 6 was scribbled: its augmented map is compared above"


def test_memory_rounds_choose_among_deferred_rounds(untrained, video) -> None:
    recent = _two_rounds(untrained, video, SessionConfig(memory_rounds=1, precision="float32"))
    both = _two_rounds(untrained, video)
    # Frame 2 is nearer round 1's interactive frame (1): R = 2 reads round 1's map, R = 1 round 2's.
    assert not np.allclose(recent.maps(2, 1).local_map, both.maps(2, 1).local_map)
    assert np.allclose(recent.maps(7, 1).local_map, both.maps(7, 1).local_map), "frame 7: round 2 either way"
    with pytest.raises(KeyError, match="deferred"):
        LocalMemory(both.state().local_rounds).read(2, 2)  # without a resolver a deferred map is not there


def test_saved_sessions_keep_deferred_maps(untrained, video, tmp_path) -> None:
    session = _two_rounds(untrained, video)
    session.save(tmp_path / "saved")
    loaded = manet.Session.load(tmp_path / "saved", untrained, video)
    assert [local.deferred for local in loaded.state().local_rounds] == \
        [local.deferred for local in session.state().local_rounds]
    _assert_maps_close(_local_maps(loaded, 1), _local_maps(session, 1))
    without_embeddings = tmp_path / "light"
    session.save(without_embeddings, include_embeddings=False)
    _assert_maps_close(_local_maps(manet.Session.load(without_embeddings, untrained, video), 1),
                       _local_maps(session, 1))


def test_damaged_deferred_list_is_refused(untrained, video, tmp_path) -> None:
    import json

    _two_rounds(untrained, video).save(tmp_path / "saved")
    manifest_path = tmp_path / "saved" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["rounds"][0]["local_deferred"].append([99, 98])
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(manet.errors.SessionFileError, match="local_deferred"):
        manet.Session.load(tmp_path / "saved", untrained, video)


def test_deleting_an_object_keeps_deferred_maps_consistent(untrained, video, monkeypatch) -> None:
    deferred = _two_rounds(untrained, video)
    deferred.delete_object(2)
    lazy = _local_maps(deferred, 1)
    with monkeypatch.context() as patch:
        _eager(patch)
        eager = _two_rounds(untrained, video)
        eager.delete_object(2)
        _assert_maps_close(lazy, _local_maps(eager, 1))
    with pytest.raises(manet.errors.UnknownObjectError):
        deferred.maps(3, 2)
    deferred.undo()
    assert deferred.maps(3, 2).local_map is not None, "undo brings the object's local maps back"


def test_a_trained_head_reads_an_earlier_deferred_round(untrained, video, monkeypatch) -> None:
    session = manet.Session(untrained, video, SessionConfig(memory_rounds=2))
    session.run_round(FIRST, frame=1)
    assert session.state().local_rounds[0].deferred
    read: dict[int, torch.Tensor] = {}
    original = LocalMemory.read

    def recording_read(memory, frame, rounds, resolve=None):
        read[frame] = original(memory, frame, rounds, resolve)
        return read[frame]

    monkeypatch.setattr(LocalMemory, "read", recording_read)
    with torch.no_grad():
        untrained.propagation_head.classifier.bias.fill_(0.25)  # the head now reads its maps
    session.run_round(SECOND, frame=6)
    second = session.state().local_rounds[1]
    assert second.maps and not second.deferred, "a head that reads local maps computes them"
    # Frame 2 is nearer round 1's frame (1): round 2 read round 1's deferred map there, computed
    # from round 1's masks, the same map Session.maps shows afterwards.
    shown = session.maps(2, 1).local_map
    assert shown is not None and 2 in read
    used = upsample_maps(read[2][1:2], session.grid)[0].numpy()
    assert np.allclose(used, shown, atol=ATOL)
    assert not np.allclose(shown, session.maps(7, 1).local_map[:1, :1].mean()), "a real map, not a constant"


def test_local_skip_weighs_the_local_map_into_an_untrained_head(untrained, video) -> None:
    plain = _two_rounds(untrained, video)
    weighted = _two_rounds(untrained, video, SessionConfig(memory_rounds=2, precision="float32", local_skip=0.5))
    assert all(local.maps and not local.deferred for local in weighted.state().local_rounds), \
        "the local map is read, so the rounds compute it"
    first = weighted.state().rounds[0]
    for frame in (2, 3):  # round 1 propagated these from frame 1 (no fusion in round 1)
        maps = weighted.maps(frame, 1)
        background = weighted.maps(frame, 0)
        expected = -20.0 * (np.stack([background.global_map, maps.global_map])
                            + 0.5 * np.stack([background.local_map, maps.local_map]))
        # maps.local_map is eq 6's read after both rounds: frames 2 and 3 are nearer frame 1,
        # so it is round 1's own map, the one round 1 used.
        assert np.allclose(first.logits[frame, :2].float().numpy(), expected, atol=0.05)
    assert not torch.equal(weighted.state().rounds[0].logits, plain.state().rounds[0].logits)


def test_local_skip_changes_nothing_for_a_trained_head(untrained, video) -> None:
    with torch.no_grad():
        untrained.propagation_head.classifier.bias.fill_(0.25)
    plain = _two_rounds(untrained, video)
    weighted = _two_rounds(untrained, video, SessionConfig(memory_rounds=2, precision="float32", local_skip=0.5))
    assert torch.equal(weighted.state().rounds[-1].logits, plain.state().rounds[-1].logits)


@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf"), "0.5"])
def test_local_skip_must_be_a_finite_weight(value) -> None:
    with pytest.raises(ValueError, match="local_skip"):
        SessionConfig(local_skip=value)
