"""What ``Session.interact`` accepts, turned into a validated :class:`Annotation`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from manet.errors import FrameIndexError, ScribbleError
from manet.inference.scribbles import Annotation, Box, Scribble, make_annotation, parse_davis

ScribbleInput = Mapping[str, Any] | Annotation | Sequence[Scribble | Box]


def to_annotation(scribbles: ScribbleInput, frame: int | None, num_frames: int, width: int,
                  height: int) -> Annotation:
    """A DAVIS scribble dict, an :class:`Annotation` or a prompt list (``frame`` required) as an
    annotation validated against a ``num_frames`` x ``height`` x ``width`` video."""
    if isinstance(scribbles, Annotation):
        return make_annotation(scribbles.frame, [*scribbles.scribbles, *scribbles.boxes], num_frames,
                               width, height, mask=scribbles.mask)
    if isinstance(scribbles, Mapping):
        return parse_davis(scribbles, num_frames, width, height)
    if frame is None:
        raise FrameIndexError("a list of Scribble objects needs frame=<index of the scribbled frame>")
    try:
        prompts = list(scribbles)
    except TypeError as error:
        raise ScribbleError(f"scribbles must be a DAVIS dict, an Annotation or a list of Scribble/Box prompts, "
                            f"got {type(scribbles).__name__}") from error
    return make_annotation(frame, prompts, num_frames, width, height)
