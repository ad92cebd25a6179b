"""The per-user download cache: where it is, what it holds, and its manifest.

Layout (the root is ``platformdirs.user_cache_dir("manet")``, e.g. ``~/.cache/manet`` on Linux,
or ``$MANET_CACHE_DIR`` when set)::

    manifest.json              what was downloaded: url, size, sha256 (and where the hash came from)
    weights/manet_official.pth the authors' checkpoint (paper-weights)
    weights/deeplabv3plus_coco.pth
    archives/                  zips, deleted once extracted unless --keep-archive
    partial/                   bytes of interrupted downloads, picked up by the next attempt
    davis2017/                 JPEGImages/<seq>/*.jpg, Annotations/<seq>/*.png, ImageSets/*.txt,
                               Scribbles/<seq>/NNN.json

A file appears under its final name only after every check passed (atomic rename), so presence
means "complete and checked". This module imports neither pooch nor gdown: ``load_model`` and the
CLIs' ``--data davis2017`` use it without the download extra.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manet.download.errors import DownloadError, NotDownloadedError
from manet.download.resources import RESOURCES, Resource
from manet.errors import CheckpointError

ENV_CACHE_DIR = "MANET_CACHE_DIR"
MANIFEST = "manifest.json"
INSTALL_HINT = "the download extra: pip install pooch gdown platformdirs"
DATASETS = {"davis2017": ("davis2017", "davis2017-scribbles")}  # --data name -> (images, scribbles) resources


def cache_root(root: str | Path | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$MANET_CACHE_DIR``, else the per-user cache folder.

    Raises:
        NotDownloadedError: platformdirs (part of the download extra) is missing, so the per-user
            folder is unknown, hence nothing can have been downloaded there.
    """
    if root is not None:
        return Path(root).expanduser().absolute()
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser().absolute()
    try:
        import platformdirs
    except ImportError:
        raise NotDownloadedError(f"the download cache needs platformdirs: {INSTALL_HINT}, then run "
                                 "`manet download ...` (or set MANET_CACHE_DIR to the cache folder)") from None
    return Path(platformdirs.user_cache_dir("manet", appauthor=False))


def file_path(resource: Resource, root: Path) -> Path:
    """Where ``resource``'s downloaded file lives in the cache ``root``."""
    return root / resource.folder / resource.filename


def _command(name: str, root: Path | None) -> str:
    return f"manet download {name}" + (f" --dir {root}" if root is not None else "")


def read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries by resource name; empty when there is no manifest yet.

    Raises:
        DownloadError: the manifest exists but is not the JSON this module writes.
    """
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        entries = data["resources"]
        if not isinstance(entries, dict):
            raise TypeError("'resources' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DownloadError(f"{path} is not a manet download manifest ({error}): delete it; the recorded "
                            "hashes of the checkpoints are then taken again from the next download") from None
    return entries


def update_manifest(root: Path, name: str, entry: dict[str, Any] | None) -> None:
    """Set (or, with None, remove) ``name``'s entry; the manifest is replaced atomically."""
    entries = read_manifest(root)
    if entry is None:
        entries.pop(name, None)
    else:
        entries[name] = entry
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=root, prefix=".manifest-", suffix=".json", delete=False) as handle:
        json.dump({"version": 1, "resources": entries}, handle, indent=2, sort_keys=True)
        temporary = Path(handle.name)
    os.replace(temporary, root / MANIFEST)


def recorded_sha256(root: Path, name: str) -> str | None:
    """The sha256 the manifest recorded for ``name``'s file, if any."""
    value = read_manifest(root).get(name, {}).get("sha256")
    return value if isinstance(value, str) else None


def paper_checkpoint(root: str | Path | None = None) -> Path:
    """The cached authors' checkpoint (``manet download paper-weights``); never downloads.

    Raises:
        CheckpointError: it is not in the cache; the message names the command that fetches it.
    """
    given = None if root is None else Path(root)
    try:
        folder = cache_root(given)
    except NotDownloadedError as error:
        raise CheckpointError(f"the authors' MA-Net checkpoint is not downloaded: {error}; or pass "
                              "load_model('paper', checkpoint=PATH) for a .pth you downloaded yourself") from None
    path = file_path(RESOURCES["paper-weights"], folder)
    if not path.is_file():
        raise CheckpointError(f"the authors' MA-Net checkpoint is not in the cache ({path}): run "
                              f"`{_command('paper-weights', given)}` once (about 240 MB; needs {INSTALL_HINT}), or "
                              "pass load_model('paper', checkpoint=PATH) for a .pth you downloaded yourself")
    return path


@dataclass(frozen=True)
class DataSource:
    """A dataset folder for ``manet eval`` / ``manet train``.

    Attributes:
        root: the DAVIS-layout folder.
        split_file: the named split's sequence list (``ImageSets/<split>.txt``) when ``root`` came
            from a dataset name and the file exists, else None.
        note: something the user should know (e.g. the official scribbles are missing), or "".
    """

    root: Path
    split_file: Path | None = None
    note: str = ""


def resolve_data(text: str | Path, split: str | None = None, cache: str | Path | None = None) -> DataSource:
    """``--data`` of the CLIs: an existing folder is used as is; ``davis2017`` is the cached extraction.

    Args:
        split: for a dataset name, which ``ImageSets/<split>.txt`` becomes ``split_file``.

    Raises:
        NotDownloadedError: a dataset name whose images are not in the cache (the message names
            the ``manet download`` command).
    """
    path = Path(text).expanduser()
    if path.is_dir() or str(text) not in DATASETS:
        return DataSource(path)
    images, scribbles = DATASETS[str(text)]
    given = None if cache is None else Path(cache)
    root = cache_root(given) / str(RESOURCES[images].extract_to)
    if not (root / "JPEGImages").is_dir() or not (root / "Annotations").is_dir():
        raise NotDownloadedError(f"{text} is not in the cache ({root} has no JPEGImages/ and Annotations/): run "
                                 f"`{_command(images, given)}` and `{_command(scribbles, given)}` once")
    split_file = root / "ImageSets" / f"{split}.txt" if split else None
    note = ""
    if not (root / "Scribbles").is_dir():
        note = (f"{root} has no official scribbles: the simulated user draws round 1; run "
                f"`{_command(scribbles, given)}` for the benchmark's human scribbles")
    return DataSource(root, split_file if split_file is not None and split_file.is_file() else None, note)
