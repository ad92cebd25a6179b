"""The annotator's protocol logic, apart from any widget so tests can drive it with fake messages.

:class:`AnnotatorController` turns front-end messages (see :mod:`manet_widget.protocol`) into
session calls and reports back through a :class:`Frontend`: binary replies with
``send_message`` and state with ``update_state`` (the widget's synced traits).

Threading: rounds, exports, autosaves and the optional embedding warm-up run on one worker
thread at a time (:class:`~manet_widget.jobs.Worker`), so the kernel's main thread stays free to
serve frames and to receive ``cancel``. Session calls that touch round state hold
``session_lock``; propagation takes it one frame at a time, so a request from the main thread
waits for at most one frame. Frames are read without the lock (the session's video source is
thread-safe). An autosave runs on the worker after the round it saves, without the lock: while it
runs, verbs that change rounds wait for it or queue behind it, so the session it reads is stable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from manet.errors import PropagationCancelled, SessionStateError, UnknownObjectError
from manet.inference.scribbles import MAX_OBJECT_ID, Box, Scribble, click_radius, make_annotation
from manet_widget import protocol
from manet_widget.exporting import run_export
from manet_widget.frame_cache import JpegCache
from manet_widget.jobs import CANCELLING, EXPORTING, IDLE, PREPARING, PROPAGATING, RUNNING, SAVING, Worker
from manet_widget.objects import ObjectList
from manet_widget.replies import map_reply, round_state

LOGGER = logging.getLogger("manet_widget")


class Frontend(Protocol):
    """Where the controller reports to: the widget, or a recorder in tests."""

    def send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None: ...

    def update_state(self, values: Mapping[str, Any]) -> None: ...


class Autosave(Protocol):
    """Where committed rounds are saved (see :class:`manet_widget.autosave.SessionAutosave`)."""

    folder: Path

    def save(self, objects: Sequence[Mapping[str, Any]]) -> Path: ...

    def save_objects(self, objects: Sequence[Mapping[str, Any]]) -> None: ...


class AnnotatorController:
    """Drives one session for one front end. Thread-safe; see the module docstring.

    Args:
        session: a ``manet.Session`` (or any object with the same methods).
        frontend: receives messages and state updates.
        jpeg_quality: quality of frames sent to the browser (1..100).
        frame_cache_mb: budget of the encoded-frame cache.
        logger: where failures are logged besides the widget (default: ``manet_widget``).
        autosave: saves the session after every committed round, undo and reset (None: off).
    """

    def __init__(self, session: Any, frontend: Frontend, *, jpeg_quality: int = 85,
                 frame_cache_mb: float = 64.0, logger: logging.Logger | None = None,
                 autosave: Autosave | None = None) -> None:
        self.session = session
        self.logger = logger or LOGGER
        self.frontend = frontend
        self.jpeg_quality = int(jpeg_quality)
        self.autosave = autosave
        self.session_lock = threading.RLock()
        self._state_lock = threading.RLock()
        self._frames = JpegCache(int(frame_cache_mb * 2**20))
        self._worker = Worker(self._state_lock, lambda status: self._update(status=status), self.report_error)
        self._version = 0
        self._objects = ObjectList(list(session.object_ids))
        self._committed: np.ndarray | None = np.array(session.masks) if session.rounds else None
        self._handlers: dict[type, Callable[[Any], object]] = {
            protocol.RequestFrame: self._on_request_frame,
            protocol.RequestMask: self._on_request_mask,
            protocol.RequestMap: self._on_request_map,
            protocol.RunRound: self._on_run,
            protocol.ApplyMask: lambda r: self.start_mask_round(r.mask, r.frame),
            protocol.Cancel: lambda r: self.cancel(),
            protocol.UndoRound: lambda r: self.undo_round(),
            protocol.Reset: lambda r: self.reset(),
            protocol.AddObject: lambda r: self.add_object(r.name),
            protocol.RenameObject: lambda r: self.rename_object(r.object_id, r.name),
            protocol.DeleteObject: lambda r: self.delete_object(r.object_id),
            protocol.Export: lambda r: self.start_export(r.format, r.path),
        }

    # ------------------------------------------------------------------ state
    def initial_state(self) -> dict[str, Any]:
        """Every controller-owned trait's current value (the widget sets these at creation)."""
        return {
            "num_frames": int(self.session.num_frames), "height": int(self.session.height),
            "width": int(self.session.width), "objects": self._objects.to_json(),
            "status": self._worker.kind if self.busy else IDLE, "progress": {"done": 0, "total": 0},
            "error": "", "mask_version": self._version,
            "click_radius": float(click_radius(int(self.session.height), int(self.session.width))),
            "autosave_path": "" if self.autosave is None else str(self.autosave.folder),
            "autosave_state": "off" if self.autosave is None else "ready", **self._round_state(),
        }

    def _round_state(self) -> dict[str, Any]:
        return round_state(self.session)

    def _update(self, **values: Any) -> None:
        with self._state_lock:
            self.frontend.update_state(values)

    def _send(self, content: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        with self._state_lock:
            self.frontend.send_message(content, list(buffers))

    @property
    def busy(self) -> bool:
        """True while a round, export, autosave or warm-up runs on the worker thread."""
        return self._worker.busy

    @property
    def masks(self) -> np.ndarray:
        """(T, H, W) uint8 ids of the last committed round; zeros before the first round."""
        with self.session_lock:
            if self._committed is None:
                return np.zeros((self.session.num_frames, self.session.height, self.session.width), np.uint8)
            return self._committed.copy()

    # ------------------------------------------------------------------ messages
    def handle_message(self, content: Any, buffers: Sequence[Any] | None = None) -> None:
        """Act on one front-end message. Never raises: failures are reported with :meth:`report_error`."""
        try:
            request = protocol.parse_message(content, buffers)
            self._handlers[type(request)](request)
        except Exception as error:  # noqa: BLE001 - every failure must reach the user, not vanish
            self.report_error(error)

    def report_error(self, error: BaseException) -> None:
        """Log ``error`` and show it in the widget (error trait and an ``error`` message)."""
        self.logger.error("annotator: %s", error, exc_info=error)
        message = f"{type(error).__name__}: {error}"
        self._update(error=message)
        self._send({"type": "error", "message": message})

    def _on_request_frame(self, request: protocol.RequestFrame) -> None:
        item = self._frames.get(request.index)
        if item is None:
            item = protocol.encode_frame(np.asarray(self.session.frame(request.index)), self.jpeg_quality)
            self._frames.put(request.index, item)
        header, data = item
        self._send({"type": "frame", "index": request.index, "header": header}, [data])

    def _on_request_mask(self, request: protocol.RequestMask) -> None:
        with self.session_lock:
            if not 0 <= request.index < self.session.num_frames:
                raise protocol.ProtocolError(f"mask index {request.index} is outside 0..{self.session.num_frames - 1}")
            mask = self._committed[request.index] if self._committed is not None else None
            version = self._version
        if mask is None:
            header: dict[str, Any] = {"dtype": "uint8", "shape": [self.session.height, self.session.width],
                                      "encoding": "empty"}
            buffers: list[bytes] = []
        else:
            header, buffers = protocol.encode_mask(mask)
        self._send({"type": "mask", "index": request.index, "version": version, "pending": False,
                    "header": header}, buffers)

    def _on_request_map(self, request: protocol.RequestMap) -> None:
        busy = self.busy and self._worker.kind not in (PREPARING, SAVING)
        with self.session_lock:
            reply, buffers = map_reply(self.session, request, self._version,
                                       "maps show once the running round is done" if busy else None)
        self._send(reply, buffers)

    def _on_run(self, request: protocol.RunRound) -> None:
        default = click_radius(int(self.session.height), int(self.session.width))
        clicks = [click.to_scribble(default) for click in request.clicks]
        self.start_round([*request.scribbles, *clicks, *request.boxes], request.frame)

    # ------------------------------------------------------------------ objects
    def _edit_objects(self, edit: Callable[[ObjectList], Any]) -> Any:
        with self._state_lock:
            result = edit(self._objects)
            self._update(objects=self._objects.to_json())
        if self.autosave is not None:
            self.autosave.save_objects(self._objects.to_json())
        return result

    def add_object(self, name: str | None = None) -> int:
        """List a new object (smallest free id) and return its id."""
        return int(self._edit_objects(lambda objects: objects.add(name).id))

    def rename_object(self, object_id: int, name: str) -> None:
        self._edit_objects(lambda objects: objects.rename(object_id, name))

    def delete_object(self, object_id: int) -> None:
        """Remove an object from the list; refused while committed rounds hold its masks."""
        if object_id in self.session.object_ids:
            raise SessionStateError(
                f"object {object_id} has masks in committed rounds: undo those rounds (or reset) to delete it")
        if object_id not in self._objects.ids:
            raise UnknownObjectError(f"object {object_id} is not in the list; listed ids: {self._objects.ids}")
        self._edit_objects(lambda objects: objects.delete(object_id))

    def restore_objects(self, entries: Sequence[tuple[int, str]]) -> None:
        """List saved ``(id, name)`` objects again (after resuming from an autosave)."""
        def restore(objects: ObjectList) -> None:
            for object_id, name in entries:
                if 1 <= object_id <= MAX_OBJECT_ID and name.strip():
                    objects.ensure(object_id)
                    objects.rename(object_id, name)
        self._edit_objects(restore)

    def _list_objects(self, object_ids: Sequence[int]) -> None:
        with self._state_lock:
            added = [self._objects.ensure(object_id) for object_id in object_ids]  # every id, no short cut
            if any(added):
                self._update(objects=self._objects.to_json())

    # ------------------------------------------------------------------ verbs
    def start_round(self, prompts: Sequence[Scribble | Box], frame: int) -> None:
        """Validate prompts (strokes, clicks, boxes) on ``frame`` and start interact + propagate on
        the worker thread.

        Raises at once (on the caller's thread) when busy or when the prompts are invalid.
        """
        annotation = make_annotation(frame, prompts, self.session.num_frames, self.session.width,
                                     self.session.height)
        given = [*annotation.scribbles, *annotation.boxes]
        self._list_objects(annotation.object_ids)
        self._start_job(RUNNING, lambda: self._round_job(lambda: self.session.interact(given, frame=annotation.frame),
                                                         annotation.frame))

    def start_mask_round(self, mask: np.ndarray, frame: int) -> None:
        """Start a round whose interactive frame is exactly ``mask`` ((H, W) ids), then propagate.

        Raises at once (``ScribbleError``) when the mask has another shape than the video's frames.
        """
        annotation = make_annotation(frame, [], self.session.num_frames, self.session.width,
                                     self.session.height, mask=mask)
        self._list_objects(annotation.object_ids)
        self._start_job(RUNNING, lambda: self._round_job(
            lambda: self.session.interact_mask(annotation.mask, annotation.frame), annotation.frame))

    def cancel(self) -> None:
        """Ask the running propagation to stop after the current frame (no-op when idle)."""
        with self._state_lock:
            if self.busy and self._worker.kind in (RUNNING, PROPAGATING):
                self._worker.cancel.set()
                self._update(status=CANCELLING)

    def undo_round(self) -> None:
        """Drop the last committed round (refused while a round runs)."""
        self._refuse_if_busy("undo a round")
        with self.session_lock:
            self.session.undo_round()
        self._after_rounds_changed()
        self._start_autosave()

    def reset(self) -> None:
        """Forget every round (refused while a round runs)."""
        self._refuse_if_busy("reset")
        with self.session_lock:
            self.session.reset()
        self._after_rounds_changed()
        self._start_autosave()

    def start_export(self, export_format: str, path: str) -> None:
        """Write the committed masks on the worker thread; replies ``exported`` when done."""
        if not self.session.rounds:
            raise SessionStateError("nothing to export yet: run a round first")
        masks = self.masks
        self._start_job(EXPORTING, lambda: self._export_job(export_format, path, masks))

    def start_prepare(self) -> None:
        """Compute every frame's embedding in the background so the first round starts fast."""
        prepare = getattr(self.session, "prepare", None)
        if prepare is not None:
            self._start_job(PREPARING, lambda: prepare(progress=self._progress))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is idle; True if it is."""
        return self._worker.wait(timeout)

    # ------------------------------------------------------------------ worker
    def _refuse_if_busy(self, action: str) -> None:
        self._worker.wait_for_save()
        if self.busy and self._worker.kind != PREPARING:
            raise SessionStateError(f"cannot {action} while {self._worker.kind}: wait, or press Cancel first")

    def _start_job(self, kind: str, work: Callable[[], None]) -> None:
        with self._state_lock:
            self._worker.start(kind, work)
            self._update(status=kind, error="", progress={"done": 0, "total": 0})

    def _progress(self, done: int, total: int) -> None:
        self._update(progress={"done": int(done), "total": int(total)})

    def _round_job(self, start: Callable[[], np.ndarray], frame: int) -> None:
        number = len(self.session.rounds) + 1
        total = int(self.session.num_frames)
        self._send({"type": "round_started", "round": number, "frame": frame})
        with self.session_lock:
            mask = start()
        self._send_pending_mask(frame, mask)
        self._worker.switch(PROPAGATING, CANCELLING if self._worker.cancel.is_set() else PROPAGATING)
        self._update(progress={"done": 1, "total": total})
        try:
            self._propagate(frame, total)
        except PropagationCancelled:
            self._discard_pending()
            self._send({"type": "round_cancelled", "round": number})
            return
        except BaseException:
            self._discard_pending()
            raise
        if self.autosave is not None:  # before round_finished: a Run sent on seeing it queues behind
            self._worker.switch(SAVING)
        self._after_rounds_changed(finished_round=number)
        self._save_now()

    def _propagate(self, frame: int, total: int) -> None:
        done = {frame}
        generator = self.session.propagate(cancel=self._worker.cancel.is_set)
        last_progress = 0.0
        try:
            while True:
                with self.session_lock:
                    item = next(generator, None)
                if item is None:
                    return
                index, mask = item
                done.add(int(index))
                self._send_pending_mask(int(index), mask)
                now = time.monotonic()
                if now - last_progress > 0.05 or len(done) >= total:
                    last_progress = now
                    self._update(progress={"done": min(len(done), total), "total": total})
        finally:
            with self.session_lock:
                generator.close()

    def _discard_pending(self) -> None:
        # The session drops the pending round when propagation stops early; sessions that also
        # offer discard_pending() get it called so no half-started round lingers.
        discard = getattr(self.session, "discard_pending", None)
        if discard is not None:
            with self.session_lock:
                discard()

    def _send_pending_mask(self, index: int, mask: np.ndarray) -> None:
        header, buffers = protocol.encode_mask(np.asarray(mask))
        self._send({"type": "mask", "index": index, "version": self._version, "pending": True,
                    "header": header}, buffers)

    def _after_rounds_changed(self, finished_round: int | None = None) -> None:
        with self.session_lock:
            self._committed = np.array(self.session.masks) if self.session.rounds else None
            state = self._round_state()
            for object_id in self.session.object_ids:
                self._objects.ensure(object_id)
        with self._state_lock:
            self._version += 1
            if finished_round is not None:
                self._send({"type": "round_finished", "round": finished_round, "version": self._version})
            self._update(mask_version=self._version, objects=self._objects.to_json(), **state)

    def _start_autosave(self) -> None:
        if self.autosave is not None:
            self._start_job(SAVING, self._save_now)

    def _save_now(self) -> None:
        """Autosave on the worker thread; a failure reaches the error banner, the round stays."""
        if self.autosave is None:
            return
        self._worker.switch(SAVING)
        self._update(autosave_state="saving")
        try:
            self.autosave.save(self._objects.to_json())
        except Exception as error:  # noqa: BLE001 - shown to the user; the session is unchanged
            self._update(autosave_state="error")
            self.report_error(error)
            return
        self._update(autosave_state="saved")

    def _export_job(self, export_format: str, path: str, masks: np.ndarray) -> None:
        names = {item["id"]: item["name"] for item in self._objects.to_json()}
        target = run_export(export_format, masks, path, self.session, names=names, progress=self._progress)
        self._send({"type": "exported", "format": export_format, "path": str(target)})
