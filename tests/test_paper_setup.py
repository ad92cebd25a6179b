"""The paper preset's session settings and the precision policy per device."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import manet
from manet.config import ModelConfig, SessionConfig
from manet.inference import embeddings
from manet.inference.embeddings import autocast_context, autocast_dtype
from manet.model.network import MANet


def test_paper_session_config_is_the_authors_setup() -> None:
    config = SessionConfig.paper()
    assert config.working_size == 480 and config.max_reference_pixels is None
    assert config.local_map_order == "authors" and config.augmented_map_before_roi
    assert (config.window, config.roi_margin, config.memory_rounds) == (12, 20, 2)
    assert config.round_fusion == "replace" and config.refine_radius == 0, "the paper resamples masks plainly"
    assert config.touchup_reach == 0 and not config.mirror_embedding, "every stroke a reference, one encoder pass"


def test_models_carry_their_session_settings(video: np.ndarray) -> None:
    with torch.device("meta"):
        paper = MANet(ModelConfig.paper())
    assert paper.recommended_session_config() == SessionConfig.paper()
    assert manet.load_model("lite").recommended_session_config() == SessionConfig()  # the lite default, exactly
    tiny = manet.load_model("tiny", weights=None)
    assert manet.Session(tiny, video).config == SessionConfig()
    tiny.session_config = SessionConfig(window=3)
    assert manet.Session(tiny, video).config.window == 3
    assert manet.Session(tiny, video, SessionConfig(window=5)).config.window == 5  # an explicit config wins


@pytest.mark.parametrize("device, precision, native, expected", [
    ("cpu", "auto", True, torch.bfloat16),
    ("cpu", "auto", False, None),
    ("cuda", "auto", True, torch.bfloat16),
    ("cuda", "auto", False, None),  # never float16 unless asked
    ("mps", "auto", True, None),
    ("cuda", "float16", False, torch.float16),
    ("cpu", "bfloat16", False, torch.bfloat16),
    ("cuda", "float32", True, None),
])
def test_autocast_dtype_per_device(device: str, precision: str, native: bool, expected: torch.dtype | None) -> None:
    assert autocast_dtype(device, precision, native) == expected


def test_autocast_context_on_this_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(embeddings, "cpu_supports_bf16", lambda native=native: native)
        context = autocast_context(cpu, "auto")
        if native:
            assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
            with context:
                assert torch.get_autocast_dtype("cpu") == torch.bfloat16
                assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        else:
            assert isinstance(context, contextlib.nullcontext)
    assert isinstance(autocast_context(cpu, "float32"), contextlib.nullcontext)
    with pytest.raises(ValueError, match="precision"):
        SessionConfig(precision="half")  # type: ignore[arg-type]
