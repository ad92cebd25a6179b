"""``download(name)``: fetch, check, extract and record one resource in the cache."""

from __future__ import annotations

import datetime
from pathlib import Path

from manet.download.cache import cache_root, read_manifest, update_manifest
from manet.download.extract import extract_davis
from manet.download.fetch import fetch
from manet.download.resources import get_resource

# For each archive: the folders it must produce, and whether its other top-level files are kept.
ARCHIVE_LAYOUTS = {
    "davis2017": (("JPEGImages", "Annotations"), True),
    "davis2017-scribbles": (("Scribbles",), False),
}


def download(name: str, root: str | Path | None = None, *, progress: bool = False, keep_archive: bool = False,
             retries: int = 2, timeout: float = 60.0) -> Path:
    """Fetch resource ``name`` (see :data:`manet.download.resources.RESOURCES`) into the cache.

    Idempotent: what is already complete and checked is not fetched again, an interrupted
    download resumes. Checkpoints end up as a file, archives as the extracted DAVIS folder.

    Args:
        root: the cache folder (default: ``$MANET_CACHE_DIR`` or the per-user cache folder).
        progress: show progress bars (the CLI does).
        keep_archive: keep a zip after extracting it (default: delete it, it is only a copy).
        retries: extra attempts, each resuming, when the connection drops mid-transfer.
        timeout: seconds to wait for the server before giving up on an attempt.

    Returns:
        The checkpoint file, or the dataset folder.

    Raises:
        manet.download.errors.DownloadError: see its subclasses; nothing unchecked enters the cache.
    """
    resource = get_resource(name)
    folder = cache_root(root)
    if resource.extract_to is not None:
        destination = folder / resource.extract_to
        if _extracted(folder, name, destination):
            return destination
    fetched = fetch(resource, folder, progress=progress, retries=retries, timeout=timeout)
    entry: dict[str, object] = {
        "url": resource.url,
        "file": str(fetched.path.relative_to(folder)),
        "size": fetched.size,
        "sha256": fetched.sha256,
        "sha256_source": fetched.sha256_source,
        "completed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if resource.extract_to is None:
        update_manifest(folder, name, entry)
        return fetched.path
    required, install_all = ARCHIVE_LAYOUTS[name]
    entry["extracted"] = extract_davis(fetched.path, destination, required, install_all, progress)
    entry["archive_kept"] = keep_archive
    # The manifest is written before the archive goes, so a crash in between costs a re-download at most.
    update_manifest(folder, name, entry)
    if not keep_archive:
        fetched.path.unlink(missing_ok=True)
    return destination


def _extracted(folder: Path, name: str, destination: Path) -> bool:
    entry = read_manifest(folder).get(name, {})
    parts = entry.get("extracted")
    return isinstance(parts, list) and bool(parts) and all((destination / str(part)).exists() for part in parts)


def status(root: str | Path | None = None) -> dict[str, str]:
    """For each resource name, where it is in the cache or ``"not downloaded"``."""
    from manet.download.cache import file_path
    from manet.download.resources import RESOURCES

    folder = cache_root(root)
    result = {}
    for name, resource in RESOURCES.items():
        if resource.extract_to is not None:
            place = folder / resource.extract_to
            result[name] = str(place) if _extracted(folder, name, place) else "not downloaded"
        else:
            path = file_path(resource, folder)
            result[name] = str(path) if path.is_file() else "not downloaded"
    return result
