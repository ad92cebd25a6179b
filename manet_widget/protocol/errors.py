"""The error a malformed front-end message raises."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message from the front end is malformed; the message says which field is wrong."""
