"""SessionConfig.matching_precision: bfloat16 products inside the propagated frames' matching maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.propagation import matching_dtype
from manet.model.matching import global_matching_map, local_distances


def unit_rows(count: int, dim: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(count, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_bfloat16_products_stay_within_a_few_thousandths() -> None:
    target = unit_rows(20 * 30, 64, 0).t().reshape(64, 20, 30).contiguous()
    references = [unit_rows(200, 64, 1), unit_rows(0, 64, 2), unit_rows(37, 64, 3)]
    exact = global_matching_map(target, references)
    fast = global_matching_map(target, references, dtype=torch.bfloat16)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert float((fast - exact).abs().max()) < 5e-3
    assert not torch.equal(fast, exact), "the products really ran in bfloat16"
    assert torch.equal(fast[1], exact[1]), "an object without references is still all ones"
    other = unit_rows(20 * 30, 64, 4).t().reshape(64, 20, 30).contiguous()
    exact_local = local_distances(target, other, 3)
    fast_local = local_distances(target, other, 3, dtype=torch.bfloat16)
    assert fast_local.dtype == torch.float32
    assert float((fast_local - exact_local).abs().max()) < 5e-3
    assert not torch.equal(fast_local, exact_local)


def test_precision_choice_per_device() -> None:
    cpu = torch.device("cpu")
    assert matching_dtype(cpu, "float32") == torch.float32
    assert matching_dtype(cpu, "bfloat16") == torch.bfloat16
    from manet.inference.embeddings import native_bfloat16

    assert matching_dtype(cpu, "auto") == (torch.bfloat16 if native_bfloat16(cpu) else torch.float32)
    with pytest.raises(ValueError, match="matching_precision"):
        manet.SessionConfig(matching_precision="float16")  # type: ignore[arg-type]


def test_a_session_with_bfloat16_matching_gives_nearly_the_same_maps(tiny_model) -> None:
    video = moving_square_video(frames=5, height=32, width=48)
    strokes = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 5], [46, 10]], radius=1.5)]
    exact = manet.Session(tiny_model, video, manet.SessionConfig(matching_precision="float32"))
    fast = manet.Session(tiny_model, video, manet.SessionConfig(matching_precision="bfloat16"))
    for session in (exact, fast):
        session.run_round(strokes, frame=1)
    exact_map, fast_map = exact.maps(3, 1).global_map, fast.maps(3, 1).global_map
    assert not np.array_equal(exact_map, fast_map)
    assert float(np.abs(exact_map - fast_map).max()) < 5e-3
