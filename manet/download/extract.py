"""Extract a DAVIS zip into the layout ``manet eval`` and ``manet train`` read.

The DAVIS zips hold one top folder (``DAVIS/``) and nest the frames and annotations by resolution::

    DAVIS/JPEGImages/480p/<seq>/00000.jpg    ->  JPEGImages/<seq>/00000.jpg
    DAVIS/Annotations/480p/<seq>/00000.png   ->  Annotations/<seq>/00000.png   (palette PNGs, ids 1..K)
    DAVIS/ImageSets/2017/{train,val}.txt     ->  ImageSets/{train,val}.txt     (2016's lists stay in ImageSets/2016/)
    DAVIS/Scribbles/<seq>/001.json           ->  Scribbles/<seq>/001.json

Only 480p is kept: it is the resolution of the DAVIS interactive benchmark (and the only one in
the trainval-480p zip); entries of any other resolution folder are skipped. The archive is first
extracted next to the destination, then each top-level folder is renamed into place, so a folder
is either the old one or the complete new one, never half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from manet.download.errors import ContentError

RESOLUTION = "480p"
YEAR = "2017"
NESTED_BY_RESOLUTION = ("JPEGImages", "Annotations")
KNOWN_TOP = ("JPEGImages", "Annotations", "ImageSets", "Scribbles")
_SKIPPED = ("__MACOSX", ".DS_Store")


def layout_path(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """An archive path (top folder already removed) -> its path in our layout; None to skip it."""
    if parts[0] in NESTED_BY_RESOLUTION and len(parts) == 4:  # JPEGImages/<resolution>/<seq>/<file>
        return (parts[0], *parts[2:]) if parts[1] == RESOLUTION else None
    if parts[0] == "ImageSets" and len(parts) == 3 and parts[1] == YEAR:
        return ("ImageSets", parts[2])
    return parts


def _members(archive: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every file of the archive with its safe relative path parts, the common top folder removed."""
    files = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or any(part in _SKIPPED or part.startswith("._") for part in path.parts):
            continue
        if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
            raise ContentError(f"the archive holds an unsafe path {info.filename!r}; it was not extracted")
        files.append((info, path.parts))
    tops = {parts[0] for _, parts in files if len(parts) > 1}
    strip = len(tops) == 1 and all(len(parts) > 1 for _, parts in files) and not tops <= set(KNOWN_TOP)
    for info, parts in files:
        yield info, parts[1:] if strip else parts


def extract_davis(archive_path: Path, destination: Path, required: tuple[str, ...],
                  install_all: bool, progress: bool = False) -> list[str]:
    """Extract ``archive_path`` into ``destination`` in the DAVIS layout above.

    Args:
        required: top-level folders the archive must produce (e.g. ``JPEGImages``, ``Annotations``).
        install_all: also install the other top-level entries (the DAVIS licence files); else only
            ``required`` (the scribbles zip must not replace the images zip's files).

    Returns:
        The top-level names installed into ``destination``.

    Raises:
        ContentError: not the expected layout, or an unsafe path; nothing is installed then.
    """
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.extracting-", dir=destination.parent))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            _extract_all(archive, staging, progress)
        produced = sorted(entry.name for entry in staging.iterdir())
        missing = [name for name in required if not (staging / name).is_dir()]
        if missing:
            raise ContentError(f"{archive_path.name} is not in the DAVIS layout: no {', '.join(missing)} folder "
                               f"(found {produced or 'nothing'}); the archive was left in place, nothing installed")
        installed = produced if install_all else [name for name in produced if name in required]
        for name in installed:
            _swap_in(staging / name, destination / name)
        return installed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_all(archive: zipfile.ZipFile, staging: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    members = list(_members(archive))
    for info, parts in tqdm(members, desc="extracting", unit="file", disable=not progress, mininterval=1.0):
        mapped = layout_path(parts) if parts else None
        if not mapped:
            continue
        target = staging.joinpath(*mapped)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, length=1 << 20)


def _swap_in(new: Path, final: Path) -> None:
    """Put ``new`` at ``final`` by renames, so ``final`` is always either the old or the new complete entry."""
    if not final.exists():
        os.replace(new, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(final, old)
    os.replace(new, final)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
