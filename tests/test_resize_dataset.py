"""``python -m manet.eval.resize``: a DAVIS folder at another frame size, masks and scribbles intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_synthetic import make_synthetic_davis
from PIL import Image

from manet.errors import VideoError
from manet.eval.resize import main, parse_size, resize_folder
from manet.io.davis import find_sequences


def test_resized_folder_keeps_ids_palette_and_scribbles(tmp_path: Path) -> None:
    source = make_synthetic_davis(tmp_path / "src", sequences=2, frames=3, height=48, width=64, objects=2,
                                  with_scribbles=True)
    names = resize_folder(source, tmp_path / "big", (128, 96), ["synth-01"])
    assert names == ["synth-01"]
    (sequence,) = find_sequences(tmp_path / "big")
    assert sequence.name == "synth-01" and sequence.num_frames == 3 and sequence.scribbles
    original = Image.open(find_sequences(source, ["synth-01"])[0].annotations[1])
    resized = Image.open(sequence.annotations[1])
    assert resized.size == (128, 96) and resized.mode == original.mode == "P"
    assert resized.getpalette() == original.getpalette()
    small, big = np.array(original), np.array(resized)
    assert set(np.unique(big)) == set(np.unique(small)), "nearest neighbour: no new ids"
    assert np.array_equal(big[::2, ::2], small), "an exact 2x resize repeats every mask pixel"
    assert Image.open(sequence.frames[0]).size == (128, 96)


def test_bad_input_is_refused_without_overwriting(tmp_path: Path, capsys) -> None:
    source = make_synthetic_davis(tmp_path / "src", sequences=1, frames=2)
    resize_folder(source, tmp_path / "out", (96, 64))
    with pytest.raises(VideoError, match="already holds"):
        resize_folder(source, tmp_path / "out", (96, 64))
    with pytest.raises(VideoError, match="missing"):
        resize_folder(source, tmp_path / "other", (96, 64), ["nope"])
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("854")
    assert main([str(source), str(tmp_path / "third"), "--size", "0x480"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main([str(tmp_path / "nothing"), str(tmp_path / "fourth")]) == 2
    assert main([str(source), str(tmp_path / "fifth"), "--size", "96x64"]) == 0
