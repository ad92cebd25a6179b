"""What ``manet download`` can fetch: where from, under which name, and how each file is checked.

Sources (checked against the publishers' own pages; see each entry):

* ``paper-weights``: the authors' trained MA-Net checkpoint, published on Google Drive in the
  "Evaluation" section of the README of their repository (``lightas/CVPR2020_MANet``). No hash is
  published: the first download is checked key by key and shape by shape against the paper
  architecture, and the sha256 it saw is recorded in the cache's manifest; later downloads must match it.
* ``backbone``: the COCO-pretrained DeepLabv3+ the authors start training from ("Pretrained model"
  in the same README). No hash is published either: the first download must be a plain tensor
  state dict, and its sha256 is recorded. Nothing in this package loads it yet; it is fetched for
  users who retrain with the authors' initialisation.
* ``davis2017`` and ``davis2017-scribbles``: DAVIS-2017 trainval at 480p and the DAVIS-Interactive
  human scribbles, from the DAVIS site (the URLs the authors' README links to). Their sha256 are the
  ones the DAVIS-Interactive toolkit publishes for the same URLs; a mismatch therefore means a broken
  download or a changed upstream file.

Every URL and hash can be replaced without editing code, for mirrors and for tests:
``MANET_URL_<NAME>`` and ``MANET_SHA256_<NAME>`` with the name upper-cased and ``-`` written ``_``
(``MANET_URL_PAPER_WEIGHTS``); ``MANET_SHA256_<NAME>=none`` drops a published hash.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["official-checkpoint", "state-dict", "zip"]
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    Attributes:
        name: the ``manet download`` argument.
        url: where it is fetched from (Google Drive links go through Drive's confirmation step).
        filename: its name in the cache.
        folder: the cache subfolder holding the file (``weights``) or the archive (``archives``).
        kind: how a download is checked before it is moved into place: the authors' checkpoint
            (every key and shape), any tensor state dict, or a zip archive.
        sha256: the expected hash, or None when none is published (the first download's is recorded).
        sha256_source: where ``sha256`` comes from, shown in errors.
        extract_to: for archives, the cache folder the DAVIS layout is extracted into.
        page: a page a person can open in a browser when the direct link fails.
    """

    name: str
    description: str
    url: str
    filename: str
    folder: str
    kind: Kind
    sha256: str | None
    sha256_source: str
    extract_to: str | None = None
    page: str = ""

    def env_key(self, what: str) -> str:
        """``MANET_<WHAT>_<NAME>``, e.g. ``MANET_URL_PAPER_WEIGHTS``."""
        return f"MANET_{what}_{self.name.upper().replace('-', '_')}"


_AUTHORS_REPO = "https://github.com/lightas/CVPR2020_MANet"
_DAVIS_PAGE = "https://davischallenge.org/davis2017/code.html"
_TOOLKIT_HASH = "published by the DAVIS-Interactive toolkit (davisinteractive.dataset.Davis) for this URL"

RESOURCES: dict[str, Resource] = {
    resource.name: resource
    for resource in (
        Resource(
            name="paper-weights",
            description="the authors' trained MA-Net checkpoint (ResNet-101 DeepLabv3+, DAVIS-2017)",
            url="https://drive.google.com/uc?id=1JjYNha40rtEYKKKFtDv06myvpxagl5dW",
            filename="manet_official.pth",
            folder="weights",
            kind="official-checkpoint",
            sha256=None,
            sha256_source="recorded by the first download in this cache",
            page=_AUTHORS_REPO,
        ),
        Resource(
            name="backbone",
            description="the authors' COCO-pretrained DeepLabv3+ (initialisation for training)",
            url="https://drive.google.com/uc?id=15temSaxnKmGPvNxrKPN6W2lSsyGfCtTB",
            filename="deeplabv3plus_coco.pth",
            folder="weights",
            kind="state-dict",
            sha256=None,
            sha256_source="recorded by the first download in this cache",
            page=_AUTHORS_REPO,
        ),
        Resource(
            name="davis2017",
            description="DAVIS-2017 trainval, 480p: frames, multi-object annotations, train/val lists",
            url="https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip",
            filename="DAVIS-2017-trainval-480p.zip",
            folder="archives",
            kind="zip",
            sha256="e3d0b5b77c3d031b000a19e0e25e3e2cac65d183755601bc2cf066df1a2aa492",
            sha256_source=_TOOLKIT_HASH,
            extract_to="davis2017",
            page=_DAVIS_PAGE,
        ),
        Resource(
            name="davis2017-scribbles",
            description="DAVIS-Interactive human scribbles for DAVIS-2017 trainval (round 1 of the benchmark)",
            url="https://data.vision.ee.ethz.ch/csergi/share/DAVIS-Interactive/DAVIS-2017-scribbles-trainval.zip",
            filename="DAVIS-2017-scribbles-trainval.zip",
            folder="archives",
            kind="zip",
            sha256="6c6811c67ef757091212a98b68b841305f92b57f6cd2938e0fa94ae8591c3226",
            sha256_source=_TOOLKIT_HASH,
            extract_to="davis2017",
            page="https://interactive.davischallenge.org/",
        ),
    )
}


class UnknownResourceError(KeyError):
    """A name that is not in :data:`RESOURCES`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_resource(name: str) -> Resource:
    """The resource called ``name`` with the ``MANET_URL_*`` / ``MANET_SHA256_*`` overrides applied.

    Raises:
        UnknownResourceError: no such resource.
        ValueError: a ``MANET_SHA256_*`` value is not 64 hex digits (or ``none``).
    """
    if name not in RESOURCES:
        raise UnknownResourceError(f"unknown download {name!r}: choose from {', '.join(RESOURCES)}")
    resource = RESOURCES[name]
    url = os.environ.get(resource.env_key("URL"), "").strip()
    if url:
        resource = dataclasses.replace(resource, url=url)
    sha256 = os.environ.get(resource.env_key("SHA256"), "").strip().lower()
    if sha256 == "none":
        resource = dataclasses.replace(resource, sha256=None, sha256_source="recorded by the first download "
                                       f"(the published hash was dropped by {resource.env_key('SHA256')})")
    elif sha256:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"{resource.env_key('SHA256')}={sha256!r} is not a sha256 (64 hex digits) or 'none'")
        resource = dataclasses.replace(resource, sha256=sha256, sha256_source=f"set by {resource.env_key('SHA256')}")
    return resource
