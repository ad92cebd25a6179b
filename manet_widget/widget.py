"""``Annotator``: the anywidget that shows a video, takes scribbles and runs MA-Net rounds.

The synced traits hold only state a view can rebuild from (see ``js/widget.ts``); frames and
masks travel as binary custom messages handled by :class:`~manet_widget.controller.AnnotatorController`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from manet.inference.scribbles import Box, Scribble
from manet_widget import autosave as autosaving
from manet_widget.controller import AnnotatorController
from manet_widget.protocol import DIRECTIONS, PROTOCOL_VERSION, Propagation
from manet_widget.protocol.wire import Direction

STATIC = Path(__file__).parent / "static"
_MISSING_BUNDLE = """
export default { render({ el }) {
  el.innerHTML = '<pre style="color:#c00">manet_widget: the front end is not built. ' +
    'Run `npm ci && npm run build` in the source tree (or reinstall the package).</pre>';
} };
"""
MAP_OVERLAYS = ("none", "global", "local", "augmented")
TOOLS = ("scribble", "click", "box", "paint", "erase")
AUTOSAVE_STATES = ("off", "ready", "saving", "saved", "error")


def _asset(name: str, fallback: str) -> Path | str:
    path = STATIC / name
    return path if path.exists() else fallback


class Annotator(anywidget.AnyWidget):
    """Annotate a video interactively; MA-Net propagates each round's prompts to every frame.

    Prompts of one frame mix in one round: scribbles, clicks (a disc of ``click_radius``
    pixels), boxes (one per object and round) - or a painted mask of the frame, applied as is.

    Args:
        session: a ``manet.Session`` holding the video and the model. The widget lists the
            session's objects (``session.objects``: ids, names, colours); renaming, adding and
            deleting them (masks included; Undo brings a deleted object back) go to the session.
        prepare: compute all frame embeddings in the background right away, so the first
            round starts fast.
        jpeg_quality: quality of the frames sent to the browser.
        autosave: a folder to save the session to after every round, undo, reset and object edit (on the
            worker thread); ``None`` saves nothing. To resume after a kernel restart, open the
            video with ``Annotator.from_video(video, autosave=folder)``. A folder holding another
            video's save, or saved rounds while ``session`` has none, is refused.

    Tools (toolbar or keys, with the widget focused): ``d`` scribble, ``k`` click (right click:
    background), ``r`` box (or Shift+drag with any prompt tool), ``n`` paint and ``e`` erase the
    frame's mask for the selected object (Enter or Apply sends it). Other keys: arrows step,
    ``p`` plays, 1-9 pick an object, ``0``/``b`` background, Enter runs a round, Escape cancels,
    ``[``/``]`` brush size, Ctrl+Z / Ctrl+Shift+Z undo and redo, ``c`` clears the frame's prompts,
    ``f`` fits the view, ``m`` cycles the matching-map overlay, ``o`` toggles fill/outline, ``s``
    jumps to the suggested frame, ``?`` lists them all. Wheel zooms; Space+drag or the middle
    button pans. Shift+drag on the timeline (or "from here" / "to here") sets the propagation
    range: the next round recomputes only those frames, in the chosen direction.
    """

    _esm = _asset("widget.js", _MISSING_BUNDLE)
    _css = _asset("widget.css", "")

    # Written by the kernel (the controller): what the session holds.
    num_frames = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    objects = traitlets.List(traitlets.Dict()).tag(sync=True)
    round_index = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)
    progress = traitlets.Dict({"done": 0, "total": 0}).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    suggested_frame = traitlets.Int(-1).tag(sync=True)
    annotated_frames = traitlets.List(traitlets.Int()).tag(sync=True)
    round_history = traitlets.List(traitlets.Dict()).tag(sync=True)
    mask_version = traitlets.Int(0).tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    # The front end refuses to run when its own protocol version differs (a stale bundle).
    protocol_version = traitlets.Int(PROTOCOL_VERSION, read_only=True).tag(sync=True)
    click_radius = traitlets.Float(1.0).tag(sync=True)
    autosave_path = traitlets.Unicode("").tag(sync=True)
    autosave_state = traitlets.Enum(AUTOSAVE_STATES, "off").tag(sync=True)

    # Written by the view (or from Python): how it looks.
    frame_index = traitlets.Int(0).tag(sync=True)
    active_object = traitlets.Int(1).tag(sync=True)
    overlay_opacity = traitlets.Float(0.5, min=0.0, max=1.0).tag(sync=True)
    overlay_mode = traitlets.Enum(("fill", "outline"), "fill").tag(sync=True)
    map_overlay = traitlets.Enum(MAP_OVERLAYS, "none").tag(sync=True)
    brush_radius = traitlets.Float(6.0, min=0.5, max=200.0).tag(sync=True)
    tool = traitlets.Enum(TOOLS, "scribble").tag(sync=True)
    play_fps = traitlets.Float(12.0, min=1.0, max=60.0).tag(sync=True)
    canvas_height = traitlets.Int(480).tag(sync=True)
    # The propagation range the view's Run uses: frames range_start..range_stop (-1: the video's
    # first / last frame), going propagation_direction from the annotated frame.
    range_start = traitlets.Int(-1).tag(sync=True)
    range_stop = traitlets.Int(-1).tag(sync=True)
    propagation_direction = traitlets.Enum(DIRECTIONS, "both").tag(sync=True)

    def __init__(self, session: Any, *, prepare: bool = True, jpeg_quality: int = 85,
                 autosave: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        saver = None
        if autosave is not None:
            autosaving.check_target(session, autosave)
            saver = autosaving.SessionAutosave(session, autosave)
        # self.log is the kernel's logger: errors land in the server log, not in a random cell.
        self._controller = AnnotatorController(session, self, jpeg_quality=jpeg_quality, logger=self.log,
                                               autosave=saver)
        with self.hold_sync():
            for name, value in self._controller.initial_state().items():
                setattr(self, name, value)
            self.brush_radius = float(max(2.0, round(min(session.height, session.width) / 60)))
        if autosave is not None and autosaving.holds_session(autosave):
            # Folders saved by older annotators keep object names beside the session.
            self._controller.adopt_names(autosaving.saved_objects(autosave))
        self.on_msg(self._on_custom_message)
        if prepare:
            self._controller.start_prepare()

    @classmethod
    def from_video(cls, video: Any, model: Any = None, *, session_config: Any = None,
                   autosave: str | Path | None = None, **kwargs: Any) -> Annotator:
        """Open ``video`` (path, folder of images or (T, H, W, 3) uint8 RGB array) in a session.

        ``model=None`` loads the shipped weights with ``manet.load_model()``. With ``autosave``
        a folder that holds a saved session of the same video (and model) is resumed - rounds,
        masks, memories and object names - and every later round is saved there again.

        Raises:
            manet.SessionFileError: the autosave folder holds a save that cannot be resumed
                (another video or model, or damaged files).
        """
        import manet

        if model is None:
            model = manet.load_model()
        if autosave is None:
            session = manet.Session(model, video, config=session_config)
        else:
            session = autosaving.open_session(video, model, autosave, session_config)
        return cls(session, autosave=autosave, **kwargs)

    # ------------------------------------------------------------------ Frontend protocol
    def send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        """Send one custom message to every view."""
        self.send(content, buffers)

    def update_state(self, values: Mapping[str, Any]) -> None:
        """Set synced traits together (one state message)."""
        with self.hold_sync():
            for name, value in values.items():
                setattr(self, name, value)

    def _on_custom_message(self, _widget: Any, content: Any, buffers: Sequence[Any]) -> None:
        self._controller.handle_message(content, buffers)

    # ------------------------------------------------------------------ Python API
    @property
    def session(self) -> Any:
        return self._controller.session

    @property
    def controller(self) -> AnnotatorController:
        return self._controller

    @property
    def masks(self) -> np.ndarray:
        """(T, H, W) uint8 object ids of the last committed round (0 = background)."""
        return self._controller.masks

    @property
    def busy(self) -> bool:
        return self._controller.busy

    def run(self, prompts: Sequence[Scribble | Box], frame: int, wait: bool = True,
            timeout: float | None = None, *, start: int | None = None, stop: int | None = None,
            direction: Direction = "both") -> None:
        """Run a round from Python, shown live in the widget; ``wait`` blocks until it ends.

        ``prompts`` mixes strokes, clicks (``Scribble.from_points``) and boxes (``manet.Box``).
        Only frames ``start``..``stop`` (inclusive; default the whole video) are recomputed, in
        ``direction`` ("both", "forward", "backward") from ``frame``; the others keep their masks.
        """
        self._controller.start_round(prompts, frame, Propagation(start, stop, direction))
        if wait:
            self.wait(timeout)

    def apply_mask(self, mask: np.ndarray, frame: int, wait: bool = True, timeout: float | None = None, *,
                   start: int | None = None, stop: int | None = None, direction: Direction = "both") -> None:
        """Run a round whose ``frame`` result is exactly ``mask`` ((H, W) ids), then propagate it
        over ``start``..``stop`` in ``direction`` (see :meth:`run`)."""
        self._controller.start_mask_round(mask, frame, Propagation(start, stop, direction))
        if wait:
            self.wait(timeout)

    def cancel(self) -> None:
        """Stop the running propagation between two frames; the previous round stays."""
        self._controller.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no round, export, autosave or warm-up runs; True if idle."""
        return self._controller.wait(timeout)

    def undo(self) -> None:
        """Undo the session's last step: a round, or an object deletion."""
        self._controller.undo()

    def undo_round(self) -> None:
        """Alias of :meth:`undo` (kept for notebooks written before object deletion was undoable)."""
        self._controller.undo()

    def reset(self) -> None:
        self._controller.reset()

    def add_object(self, name: str | None = None) -> int:
        """Add an object to the session; returns its id (the smallest free one)."""
        return self._controller.add_object(name)

    def rename_object(self, object_id: int, name: str) -> None:
        self._controller.rename_object(object_id, name)

    def delete_object(self, object_id: int) -> None:
        """Delete an object from the session, its masks in every round included (undo brings it back)."""
        self._controller.delete_object(object_id)

    def refresh(self) -> None:
        """Re-read rounds and masks after the session was changed directly from Python."""
        self._controller.refresh()

    def export_png(self, folder: str | Path) -> None:
        """One PNG id mask per frame into ``folder`` (runs in the background; see ``wait``)."""
        self._controller.start_export("png", str(folder))

    def export_npz(self, path: str | Path) -> None:
        self._controller.start_export("npz", str(path))

    def export_coco(self, path: str | Path) -> None:
        self._controller.start_export("coco", str(path))

    def export_video(self, path: str | Path) -> None:
        """The video with the masks drawn over it."""
        self._controller.start_export("video", str(path))

