"""Exceptions raised on bad input or misuse. Every message says what to do next.

All derive from :class:`ManetError` and from the closest builtin (``ValueError``,
``IndexError``, ...) so callers can catch either.
"""

from __future__ import annotations


class ManetError(Exception):
    """Base class of every error this package raises on purpose."""


class VideoError(ManetError, ValueError):
    """A video or frame array cannot be used (unreadable, empty, wrong dtype/shape/channels)."""


class ScribbleError(ManetError, ValueError):
    """Scribbles are malformed: no points, coordinates outside [0, 1], bad object id, ..."""


class FrameIndexError(ManetError, IndexError):
    """A frame index lies outside the video."""


class UnknownObjectError(ManetError, KeyError):
    """An object id was asked for that no scribble or mask has introduced."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class SessionStateError(ManetError, RuntimeError):
    """A session verb was called in a state where it cannot run (e.g. propagate before interact)."""


class CheckpointError(ManetError, ValueError):
    """A checkpoint is missing, untrusted, or does not match the model (keys or shapes)."""


class SessionFileError(ManetError, ValueError):
    """A saved session folder is corrupt, of an unknown format version, or for another video/model."""


class PropagationCancelled(ManetError):
    """Raised inside a round when its cancel callback asked to stop; the session keeps the previous round."""
