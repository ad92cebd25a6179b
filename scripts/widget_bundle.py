"""Build the annotator's JavaScript bundle when it is missing or older than its sources; check a bundle's stamp.

The bundle (``manet_widget/static/widget.js`` + ``widget.css``) is stamped with a SHA-256 of the sources it
was built from (``js/`` without its tests, ``package.json``, ``package-lock.json``, ``tsconfig.json``), in
``manet_widget/static/SOURCES.sha256``. A bundle whose stamp differs from the current sources is stale and is
rebuilt; so no wheel or editable install can ship a bundle older than ``js/``.

Used by ``hatch_build.py`` (every wheel, sdist and editable build) and by ``scripts/setup.sh``. Standard
library only: it runs inside pip's isolated build environment.

    python scripts/widget_bundle.py           # build if stale, then stamp
    python scripts/widget_bundle.py --check   # exit 1 (saying what to run) if the bundle is stale
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

BUNDLE_FILES = ("widget.js", "widget.css")
STAMP_NAME = "SOURCES.sha256"
STATIC = Path("manet_widget") / "static"
ROOT_SOURCES = ("package.json", "package-lock.json", "tsconfig.json")


class BundleError(RuntimeError):
    """The bundle cannot be built or is stale; the message says what to do."""


def source_files(root: Path) -> list[Path]:
    """The files the bundle is built from, in a fixed order (js/tests/ only tests them, so it is left out)."""
    js = root / "js"
    files = [path for path in js.rglob("*") if path.is_file() and "tests" not in path.relative_to(js).parts]
    files += [root / name for name in ROOT_SOURCES if (root / name).is_file()]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def sources_digest(root: Path) -> str:
    """SHA-256 over each source's relative path and bytes (a rename changes it too)."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def stamped_digest(static: Path) -> str | None:
    """The digest a bundle folder was stamped with, or None when it has no stamp or misses a bundle file."""
    stamp = static / STAMP_NAME
    if not stamp.is_file() or not all((static / name).is_file() for name in BUNDLE_FILES):
        return None
    return stamp.read_text().strip() or None


def is_fresh(root: Path) -> bool:
    """Whether the bundle under ``root`` was built from the current sources (no js/: whether a bundle is there)."""
    stamped = stamped_digest(root / STATIC)
    if not (root / "js").is_dir():  # an unpacked sdist without sources ships its bundle as is
        return stamped is not None
    return stamped == sources_digest(root)


def _npm(root: Path, *args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError("npm is required to build the widget's JavaScript (manet_widget/static is missing or "
                          "older than js/): install Node.js 18+ with npm, then run the build again")
    result = subprocess.run([npm, *args], cwd=root, check=False)
    if result.returncode != 0:
        raise BundleError(f"`npm {' '.join(args)}` failed (exit {result.returncode}) in {root}")


def ensure_bundle(root: Path) -> bool:
    """Build and stamp the bundle unless it is fresh; True when it was built. Raises :class:`BundleError`."""
    if is_fresh(root):
        return False
    if not (root / "js").is_dir():
        raise BundleError(f"no widget bundle in {root / STATIC} and no js/ sources to build it from")
    digest = sources_digest(root)  # before building: a source edited during the build leaves the stamp stale
    lock, installed = root / "package-lock.json", root / "node_modules" / ".package-lock.json"
    if not installed.is_file() or (lock.is_file() and lock.stat().st_mtime > installed.stat().st_mtime):
        _npm(root, "ci", "--no-audit", "--no-fund", "--loglevel=error")
    _npm(root, "run", "--silent", "build")
    static = root / STATIC
    missing = [name for name in BUNDLE_FILES if not (static / name).is_file()]
    if missing:
        raise BundleError(f"`npm run build` did not write {', '.join(missing)} into {static}")
    (static / STAMP_NAME).write_text(digest + "\n")
    return True


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    try:
        if "--check" in argv:
            if not is_fresh(root):
                print("the widget bundle in manet_widget/static is missing or older than js/: "
                      "run `python scripts/widget_bundle.py` (or `bash scripts/setup.sh`)", file=sys.stderr)
                return 1
            return 0
        ensure_bundle(root)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
