"""Evaluating and fine-tuning from the authors' checkpoint (a synthetic one with their keys and shapes),
and checkpoints that always reload complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_synthetic import make_synthetic_davis
from official_checkpoint import write_synthetic_checkpoint
from safetensors.torch import save_file
from test_local_map_order import spy_on_authors_order

import manet
from manet.cli import main as manet_main
from manet.config import ModelConfig, SessionConfig
from manet.errors import CheckpointError
from manet.inference.interaction import head_scribble_maps, stroke_labels
from manet.inference.scribbles import Annotation, Scribble
from manet.inference.state import Channels
from manet.model.checkpoint import FORMAT, load_checkpoint, read_metadata, save_checkpoint
from manet.model.network import MANet
from manet.model.official import load_official_checkpoint


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("official") / "manet.pth")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_davis(tmp_path_factory.mktemp("davis"), sequences=1, frames=4, height=48, width=64,
                                objects=1, seed=5)


@pytest.mark.slow
def test_eval_runs_the_paper_setup_from_their_checkpoint(official: Path, dataset: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    code = manet_main(["eval", str(dataset), "--preset", "paper", "--checkpoint", str(official), "--rounds", "2",
                       "--max-frames", "3", "--no-progress", "--report", str(report)])
    assert code == 0
    written = json.loads(report.read_text())
    assert written["context"]["session_config"] == SessionConfig.paper().to_dict()
    assert written["context"]["model"]["checkpoint"] == str(official)


@pytest.mark.slow
def test_a_session_on_their_checkpoint_is_the_paper_setup(official: Path, video: np.ndarray,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = spy_on_authors_order(monkeypatch)
    model = manet.load_model("paper", checkpoint=official)
    session = manet.Session(model, video)  # no config: the model's own
    assert session.config == SessionConfig.paper()
    masks = session.run_round([Scribble(1, [[20, 18], [28, 26]])], frame=2)
    assert masks.shape == video.shape[:3]
    # The authors' order ran for the augmented map and every propagated frame, at stride 4.
    assert len(shapes) == video.shape[0] and set(shapes) == {(2, *session.grid)}


def test_eval_explains_a_checkpoint_without_the_paper_preset(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert manet_main(["eval", str(dataset), "--checkpoint", "manet.pth", "--no-progress"]) == 2
    assert "--preset paper" in capsys.readouterr().err
    assert manet_main(["eval", str(dataset), "--preset", "paper", "--no-progress"]) == 2
    assert "--checkpoint manet.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_training_from_their_checkpoint_saves_every_tensor(official: Path, dataset: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = manet_main(["train", "stage2", "--data", str(dataset), "--out", str(out), "--preset", "paper",
                       "--init", str(official), "--steps", "1", "--batch-size", "1", "--crop", "32",
                       "--threads", "1"])
    assert code == 0
    assert read_metadata(out / "last.safetensors")["backbone"] == "included"
    trained = load_checkpoint(out / "last.safetensors")
    start = load_official_checkpoint(official).state_dict()
    for key, value in trained.state_dict().items():
        if not key.startswith("interaction_head."):  # stage 2 trains the interaction head only
            assert torch.equal(value, start[key]), key
    changed = [key for key, value in trained.state_dict().items() if not torch.equal(value, start[key])]
    assert changed and all(key.startswith("interaction_head.") for key in changed)


def test_a_checkpoint_that_lost_an_unrestorable_backbone_is_refused(tmp_path: Path) -> None:
    model = MANet(ModelConfig.tiny())
    kept = save_checkpoint(model, tmp_path / "kept.safetensors", include_backbone=False)
    assert read_metadata(kept)["backbone"] == "included"  # no package restores a tiny backbone
    reloaded = load_checkpoint(kept).state_dict()
    assert all(torch.equal(value, reloaded[key]) for key, value in model.state_dict().items())
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "backbone": "imagenet",
                "extra": "{}"}
    save_file(state, str(tmp_path / "stripped.safetensors"), metadata=metadata)  # as earlier versions wrote
    with pytest.raises(CheckpointError, match="saved without its 'tiny' backbone"):
        load_checkpoint(tmp_path / "stripped.safetensors")


def test_the_interaction_head_sees_the_encoding_of_its_config() -> None:
    annotation = Annotation(0, (Scribble(1, [[10, 10], [20, 12]]),))
    labels = stroke_labels(annotation, (48, 64), (12, 16), True, 2)  # round 1: ROI background added
    channels = Channels((0, 1))
    positive = head_scribble_maps(annotation, labels, channels, (48, 64), "positive", 2, torch.device("cpu"))
    signed = head_scribble_maps(annotation, labels, channels, (48, 64), "signed", 2, torch.device("cpu"))
    assert positive.min() == 0 and positive[0].sum() == 0  # no background strokes, no ROI
    assert signed.min() == -1 and (signed[0] > 0).any()  # the ROI background is a background stroke
    assert np.array_equal(positive[1].numpy() > 0, signed[1].numpy() > 0)
