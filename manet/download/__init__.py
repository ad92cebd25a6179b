"""Download the authors' weights and the DAVIS-2017 benchmark data into a per-user cache.

``manet download paper-weights | backbone | davis2017 | davis2017-scribbles [--dir DIR]`` on the
command line, :func:`download` from Python. Nothing here runs on its own: ``load_model("paper")``
and ``--data davis2017`` only look in the cache and name the command when something is missing.
Needs the ``download`` extra (pooch, gdown, platformdirs) to fetch; looking up the cache does not.
"""

from __future__ import annotations

from manet.download.api import download, status
from manet.download.cache import DataSource, cache_root, paper_checkpoint, resolve_data
from manet.download.errors import (
    ChecksumError,
    ContentError,
    DownloadError,
    IncompleteDownloadError,
    LinkError,
    NetworkError,
    NotDownloadedError,
)
from manet.download.resources import RESOURCES, Resource, get_resource

__all__ = [
    "RESOURCES",
    "ChecksumError",
    "ContentError",
    "DataSource",
    "DownloadError",
    "IncompleteDownloadError",
    "LinkError",
    "NetworkError",
    "NotDownloadedError",
    "Resource",
    "cache_root",
    "download",
    "get_resource",
    "paper_checkpoint",
    "resolve_data",
    "status",
]

