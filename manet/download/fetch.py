"""Fetch one file into the cache: gdown moves the bytes, pooch checks the hash and renames into place.

* gdown does the transfer for every URL: Google Drive's "can't scan this file for viruses"
  confirmation step for Drive links, and, for any link, resuming from the bytes an interrupted
  attempt left in ``partial/`` (an HTTP ``Range`` request, with ``If-Range`` so a changed file is
  never spliced onto old bytes) and detecting a body shorter than its ``Content-Length``.
* pooch owns the cache entry: the finished bytes are handed to it as a temporary file next to the
  final one; it compares the sha256 (when one is known) and renames into place, deleting the
  temporary file when anything fails.
* Before pooch sees the bytes they must be the right kind of file (not a web page, a zip, or for
  the authors' checkpoint every key and shape of the paper architecture); a file failing a check is
  deleted rather than kept for resuming.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from manet.download.cache import INSTALL_HINT, file_path, recorded_sha256
from manet.download.errors import (
    ChecksumError,
    ContentError,
    DownloadError,
    IncompleteDownloadError,
    LinkError,
    NetworkError,
)
from manet.download.resources import Resource
from manet.errors import CheckpointError

PARTIAL = "partial"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_GOT_HASH = re.compile(r"got[: ]+([0-9a-f]{64})")  # pooch's mismatch message names the hash it computed
_DRIVE_REASON = re.compile(r"retrieve file url:\s*(.*?)\s*You may still", re.DOTALL)  # gdown's wording
_RECEIVED = re.compile(r"received (\d+) bytes but the server announced (\d+)")  # gdown's incomplete message


@dataclass(frozen=True)
class Fetched:
    """A checked file in the cache, with its sha256 and where the expected hash came from."""

    path: Path
    sha256: str
    size: int
    sha256_source: str


def fetch(resource: Resource, root: Path, *, progress: bool = False, retries: int = 2,
          timeout: float = 60.0) -> Fetched:
    """Make sure ``resource``'s file is in ``root``, complete and checked; download what is missing.

    A file already in place is kept when it matches the expected sha256 (or when none is known).

    Raises:
        NetworkError, LinkError, IncompleteDownloadError, ChecksumError, ContentError: see
            :mod:`manet.download.errors`; every message says what to do.
    """
    pooch = _require("pooch")
    target = file_path(resource, root)
    known = resource.sha256 or recorded_sha256(root, resource.name)
    source = resource.sha256_source if resource.sha256 else "recorded by the first download in this cache"
    transfer = _Transfer(resource, root / PARTIAL, progress=progress, retries=retries, timeout=timeout)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # the CLI reports what happens; pooch's own lines would repeat it
    try:
        pooch.retrieve(resource.url, known_hash=f"sha256:{known}" if known else None, fname=target.name,
                       path=target.parent, downloader=transfer, progressbar=False)
    except DownloadError:
        raise
    except Exception as error:  # translate the libraries' errors into ones that say what to do
        raise _translate(error, resource, root, known, source) from error
    finally:
        logger.setLevel(level)
    sha256 = known or pooch.file_hash(str(target), alg="sha256")
    return Fetched(target, sha256, target.stat().st_size, source)


class _Transfer:
    """A pooch downloader: gdown into ``partial/<filename>`` (resumable), check, then hand to pooch."""

    def __init__(self, resource: Resource, partial: Path, *, progress: bool, retries: int, timeout: float) -> None:
        self.resource, self.partial = resource, partial
        self.progress, self.retries, self.timeout = progress, retries, timeout

    def __call__(self, url: str, output_file: str, pooch: Any) -> None:
        stage = self.partial / self.resource.filename
        self.partial.mkdir(parents=True, exist_ok=True)
        try:
            self._gdown(url, stage)
        except Exception as error:
            if "did not honor the requested byte range" not in str(error):
                raise
            # The server cannot resume: the kept bytes are useless, so start over once.
            for leftover in self.partial.glob(f"{self.resource.filename}*.part"):
                leftover.unlink()
            self._gdown(url, stage)
        try:
            check_content(stage, self.resource, url)
        except DownloadError:
            stage.unlink(missing_ok=True)  # complete but wrong: resuming it would only repeat the error
            raise
        os.replace(stage, output_file)

    def _gdown(self, url: str, stage: Path) -> None:
        gdown = _require("gdown")
        gdown.download(url=url, output=str(stage), quiet=not self.progress, resume=True, use_cookies=False,
                       retries=self.retries, timeout=self.timeout)


def check_content(path: Path, resource: Resource, url: str) -> None:
    """Raise unless ``path`` is the kind of file ``resource`` names (never a web page or empty).

    Raises:
        LinkError: the file is empty or a web page (the link no longer gives the file).
        ContentError: not a zip archive, or not the checkpoint the resource promises.
    """
    with path.open("rb") as handle:
        head = handle.read(1024)
    if not head:
        raise LinkError(f"{url} sent an empty file instead of {resource.filename}: {_moved_advice(resource)}")
    if head.lstrip().lower().startswith(_HTML_STARTS):
        raise LinkError(f"{url} sent a web page instead of {resource.filename}: {_moved_advice(resource)}")
    if resource.kind == "zip" and not zipfile.is_zipfile(path):
        raise ContentError(f"the file from {url} ({path.stat().st_size} bytes) is not a zip archive: the download "
                           f"is damaged or the link changed; it was deleted; rerun `manet download {resource.name}`")
    if resource.kind in ("official-checkpoint", "state-dict"):
        _check_checkpoint(path, resource, url)


def _check_checkpoint(path: Path, resource: Resource, url: str) -> None:
    from manet.model.official import load_official_checkpoint, read_official_state

    try:
        if resource.kind == "official-checkpoint":
            load_official_checkpoint(path)  # every key and shape of the paper architecture, both embedding copies
        else:
            read_official_state(path)  # a plain tensor state dict, unpickled with weights_only=True
    except CheckpointError as error:
        raise ContentError(f"the file from {url} is not {resource.description}: {error}. It was deleted; if the "
                           f"link now serves another file, see {resource.page}") from None


def _moved_advice(resource: Resource) -> str:
    drive = "drive.google.com" in resource.url
    reason = ("Google Drive did not hand out the file (moved, deleted, or over its daily download quota: "
              "then it works again later)" if drive else "the link has probably moved")
    by_hand = ("; or download it in a browser and pass load_model('paper', checkpoint=PATH)"
               if resource.kind == "official-checkpoint" else "")
    return (f"{reason}. Nothing was kept. Find the current link on {resource.page}, set "
            f"{resource.env_key('URL')} to it and rerun `manet download {resource.name}`{by_hand}")


def _translate(error: Exception, resource: Resource, root: Path, known: str | None, source: str) -> DownloadError:
    import requests

    gdown = _require("gdown")
    host = urlsplit(resource.url).hostname or resource.url
    again = f"rerun `manet download {resource.name}`"
    cause = error.__cause__ if isinstance(error, gdown.exceptions.DownloadError) and error.__cause__ else error
    if isinstance(error, ValueError) and known and known in str(error):
        got = _GOT_HASH.search(str(error))
        seen = f"sha256 {got.group(1)}" if got else "another sha256"
        return ChecksumError(f"{resource.filename} arrived with {seen}, not the expected {known} ({source}). It "
                             f"was deleted. A broken transfer is the usual cause: {again}. If it happens again the "
                             f"file changed at {host}: check {resource.page}")
    if isinstance(error, gdown.exceptions.FileURLRetrievalError):
        found = _DRIVE_REASON.search(str(error))
        reason = " ".join((found.group(1) if found else str(error)).split()).rstrip(".")
        return LinkError(f"{resource.url} answered with a page, not the file: \"{reason}\". "
                         f"{_moved_advice(resource)}")
    if isinstance(cause, requests.HTTPError) and cause.response is not None:
        status = f"HTTP {cause.response.status_code} {cause.response.reason}"
        return LinkError(f"{resource.url} answered {status} instead of {resource.filename}: "
                         f"{_moved_advice(resource)}")
    if "incomplete" in str(error).lower() or isinstance(cause, requests.exceptions.ChunkedEncodingError):
        counts = _RECEIVED.search(str(error))
        after = f" after {counts.group(1)} of {counts.group(2)} bytes" if counts else ""
        return IncompleteDownloadError(f"the connection to {host} ended{after} of {resource.filename}. The bytes "
                                       f"received are kept in {root / PARTIAL}: {again} to resume where it "
                                       "stopped (or delete that folder to start over)")
    if isinstance(cause, (requests.ConnectionError, requests.Timeout)):
        return NetworkError(f"cannot reach {host} ({type(cause).__name__}): check the internet connection (and a "
                            f"proxy: HTTPS_PROXY), then {again}; it resumes from what was received. "
                            f"Or copy a cache from a machine with internet: MANET_CACHE_DIR={root}")
    return DownloadError(f"downloading {resource.name} from {resource.url} failed: {type(error).__name__}: "
                         f"{error}. {again}; bytes received so far are kept in {root / PARTIAL}")


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DownloadError(f"`manet download` needs {module}: {INSTALL_HINT}") from None
