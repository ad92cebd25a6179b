"""Errors of ``manet download``: each says what happened and what to do next."""

from __future__ import annotations

from manet.errors import ManetError


class DownloadError(ManetError, RuntimeError):
    """A download failed; nothing unchecked was moved into the cache."""


class NetworkError(DownloadError):
    """The server could not be reached (no network, DNS, refused, timed out)."""


class LinkError(DownloadError):
    """The link answered, but not with the file: HTTP error (404, ...), or a web page instead of the file."""


class IncompleteDownloadError(DownloadError):
    """The connection ended before the announced size; the bytes received are kept for resuming."""


class ChecksumError(DownloadError):
    """The file arrived whole but its sha256 is not the expected one; it was deleted."""


class ContentError(DownloadError):
    """The file arrived whole but is not what it should be (not a zip, not the checkpoint); it was deleted."""


class NotDownloadedError(ManetError, FileNotFoundError):
    """Something the cache should hold is missing; the message names the ``manet download`` command."""
