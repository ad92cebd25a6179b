"""A DAVIS-layout folder resized to another frame size, for evaluating under the conditions of another
resolution.

The simulated user draws its strokes and the scores are computed at the frames' own size, so the
same videos score differently at 240p and at 480p even when the network works at the same size:
the shipped weights' session settings compared on the 24 training videos at 240p and on the same
videos resized to 854x480 disagreed (model card), and the 480p copy agreed with the dev split.
Frames are resized with bicubic interpolation, masks with nearest neighbour (palette kept), DAVIS
scribble files (normalised coordinates) are copied as they are.

    python -m manet.eval.resize SRC DST [--size 854x480] [--sequences-file splits/train.txt]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2
from PIL import Image

from manet.errors import ManetError, VideoError
from manet.io.davis import find_sequences


def parse_size(text: str) -> tuple[int, int]:
    """``"854x480"`` -> (854, 480); ValueError for anything else."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"size must be WIDTHxHEIGHT in pixels, e.g. 854x480, got {text!r}")
    return int(parts[0]), int(parts[1])


def resize_folder(source: str | Path, target: str | Path, size: tuple[int, int],
                  sequences: list[str] | None = None) -> list[str]:
    """Write ``source``'s sequences (all, or ``sequences``) resized to ``size`` (width, height) into
    ``target``; returns the sequences written.

    Raises:
        VideoError: ``source`` is not a DAVIS-layout folder, a sequence is missing, or ``target``
            already holds one of the sequences (nothing is overwritten).
    """
    source, target = Path(source), Path(target)
    found = find_sequences(source, sequences)
    names = [sequence.name for sequence in found]
    existing = [name for name in names if (target / "JPEGImages" / name).exists()]
    if existing:
        raise VideoError(f"{target} already holds {existing}: choose an empty folder")
    for sequence in found:
        name = sequence.name
        frames_out, masks_out = target / "JPEGImages" / name, target / "Annotations" / name
        frames_out.mkdir(parents=True)
        masks_out.mkdir(parents=True)
        for path in sequence.frames:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"{path} is not a readable image")
            resized = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(frames_out / (path.stem + ".jpg")), resized, [cv2.IMWRITE_JPEG_QUALITY, 95])
        for path in sequence.annotations:
            with Image.open(path) as mask:
                mask.resize(size, Image.Resampling.NEAREST).save(masks_out / path.name)
        scribbles = source / "Scribbles" / name
        if scribbles.is_dir():
            shutil.copytree(scribbles, target / "Scribbles" / name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manet.eval.resize", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="DAVIS-layout folder (JPEGImages/, Annotations/)")
    parser.add_argument("target", help="folder to write (must not hold the sequences yet)")
    parser.add_argument("--size", default="854x480", help="WIDTHxHEIGHT (default 854x480)")
    parser.add_argument("--sequences-file", default=None, help="sequence names, one a line (default: all)")
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
        sequences = None
        if args.sequences_file is not None:
            lines = Path(args.sequences_file).read_text(encoding="utf-8").splitlines()
            sequences = [line.strip() for line in lines if line.strip()]
        names = resize_folder(args.source, args.target, size, sequences)
    except (ValueError, OSError, ManetError) as error:
        print(f"python -m manet.eval.resize: error: {error}", file=sys.stderr)
        return 2
    print(f"{len(names)} sequences at {size[0]}x{size[1]} in {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
