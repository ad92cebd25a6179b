"""The annotator's protocol logic, apart from any widget so tests can drive it with fake messages.

:class:`AnnotatorController` turns front-end messages (see :mod:`manet_widget.protocol`) into
session calls and reports back through a :class:`Frontend`: typed replies with ``send_message``
and state with ``update_state`` (the widget's synced traits). The session owns every piece of
annotation state - rounds, masks and the object list; the controller only mirrors it.

Threading: rounds, exports, autosaves and the optional embedding warm-up run on one worker
thread at a time (:class:`~manet_widget.jobs.Worker`), so the kernel's main thread stays free to
serve frames and to receive ``cancel``. The warm-up gives way: a job started while it runs waits
for one frame's embedding, not the whole video's, and the warm-up resumes when the worker is idle.
Session calls that touch session state hold ``session_lock``; propagation takes it one frame at
a time, so a request from the main thread waits for at most one frame. Frames are read without
the lock (the session's video source is thread-safe). An autosave runs on the worker after the
change it saves, without the lock: while it runs, verbs that change the session wait for it or
queue behind it, so the session it reads is stable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from manet.errors import SessionStateError
from manet.inference.scribbles import Box, Scribble, click_radius, make_annotation
from manet.inference.session import Session
from manet_widget import protocol
from manet_widget.exporting import run_export
from manet_widget.frame_cache import JpegCache
from manet_widget.jobs import CANCELLING, EXPORTING, IDLE, PREPARING, PROPAGATING, QUEUEABLE, RUNNING, SAVING, Worker
from manet_widget.round_job import RoundJob
from manet_widget.session_view import map_reply, object_list, round_state

LOGGER = logging.getLogger("manet_widget")


class Frontend(Protocol):
    """Where the controller reports to: the widget, or a recorder in tests."""

    def send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None: ...

    def update_state(self, values: Mapping[str, Any]) -> None: ...


class Autosave(Protocol):
    """Where the session is saved after every change (see :class:`manet_widget.autosave.SessionAutosave`)."""

    folder: Path

    def save(self) -> Path: ...


class AnnotatorController:
    """Drives one session for one front end. Thread-safe; see the module docstring.

    Args:
        session: the session to annotate; a session without objects gets one (``object 1``),
            so there is something to draw with.
        frontend: receives messages and state updates.
        jpeg_quality: quality of frames sent to the browser (1..100).
        frame_cache_mb: budget of the encoded-frame cache.
        logger: where failures are logged besides the widget (default: ``manet_widget``).
        autosave: saves the session after every committed round, undo, reset and object edit
            (None: off).
    """

    def __init__(self, session: Session, frontend: Frontend, *, jpeg_quality: int = 85,
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
        self._worker = Worker(self._state_lock, lambda status: self._update(status=status), self.report_error,
                              self._resume_prepare)
        self._prepare_unfinished = False  # the warm-up stopped for another job and resumes when idle
        # What the widget spends around the model: the last round's timing, the last autosave's
        # seconds, and the frames (JPEG) encoded for the browser (count, seconds).
        self.last_round: RoundJob | None = None
        self.last_autosave_seconds = 0.0
        self.frames_encoded, self.frame_encoding_seconds = 0, 0.0
        self._version = 0
        # Objects edited while a round or an export ran: saved when that job ends.
        self._unsaved = False
        if not session.objects:
            session.add_object()
        self._committed: np.ndarray | None = np.array(session.masks) if session.rounds else None
        self._handlers: dict[type, Callable[[Any], object]] = {
            protocol.RequestFrame: self._on_request_frame,
            protocol.RequestMask: self._on_request_mask,
            protocol.RequestMap: self._on_request_map,
            protocol.RunRound: self._on_run,
            protocol.ApplyMask: lambda r: self.start_mask_round(r.mask, r.frame, r.propagation),
            protocol.Cancel: lambda r: self.cancel(),
            protocol.Undo: lambda r: self.undo(),
            protocol.Reset: lambda r: self.reset(),
            protocol.AddObject: lambda r: self.add_object(r.name),
            protocol.RenameObject: lambda r: self.rename_object(r.object_id, r.name),
            protocol.DeleteObject: lambda r: self.delete_object(r.object_id),
            protocol.Export: lambda r: self.start_export(r.format, r.path),
        }

    # ------------------------------------------------------------------ state
    def initial_state(self) -> dict[str, Any]:
        """Every controller-owned trait's current value (the widget sets these at creation)."""
        with self.session_lock:
            session_state = self._session_state()
        return {
            "num_frames": int(self.session.num_frames), "height": int(self.session.height),
            "width": int(self.session.width), "status": self._worker.kind if self.busy else IDLE,
            "progress": {"done": 0, "total": 0}, "error": "", "mask_version": self._version,
            "click_radius": float(click_radius(int(self.session.height), int(self.session.width))),
            "autosave_path": "" if self.autosave is None else str(self.autosave.folder),
            "autosave_state": "off" if self.autosave is None else "ready", **session_state,
        }

    def _session_state(self) -> dict[str, Any]:
        """The traits mirrored from the session (caller holds ``session_lock``)."""
        return {**round_state(self.session), "objects": object_list(self.session),
                "can_undo": bool(self.session.can_undo)}

    def _update(self, **values: Any) -> None:
        with self._state_lock:
            self.frontend.update_state(values)

    def _send(self, reply: protocol.Reply, buffers: Sequence[bytes] = ()) -> None:
        with self._state_lock:
            self.frontend.send_message(reply.to_json(), list(buffers))

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
        self._send(protocol.ErrorReply(message))

    def _on_request_frame(self, request: protocol.RequestFrame) -> None:
        item = self._frames.get(request.index)
        if item is None:
            started = time.perf_counter()
            item = protocol.encode_frame(np.asarray(self.session.frame(request.index)), self.jpeg_quality)
            self._frames.put(request.index, item)
            self.frames_encoded += 1
            self.frame_encoding_seconds += time.perf_counter() - started
        header, data = item
        self._send(protocol.FrameReply(request.index, header), [data])

    def _on_request_mask(self, request: protocol.RequestMask) -> None:
        with self.session_lock:
            if not 0 <= request.index < self.session.num_frames:
                raise protocol.ProtocolError(f"mask index {request.index} is outside 0..{self.session.num_frames - 1}")
            mask = self._committed[request.index] if self._committed is not None else None
            version = self._version
        if mask is None:
            header, buffers = protocol.empty_mask_header(self.session.height, self.session.width), list[bytes]()
        else:
            header, buffers = protocol.encode_mask(mask)
        self._send(protocol.MaskReply(request.index, version, False, header), buffers)

    def _on_request_map(self, request: protocol.RequestMap) -> None:
        busy = self.busy and self._worker.kind not in (PREPARING, SAVING)
        with self.session_lock:
            reply, buffers = map_reply(self.session, request, self._version,
                                       "maps show once the running round is done" if busy else None)
        self._send(reply, buffers)

    def _on_run(self, request: protocol.RunRound) -> None:
        default = click_radius(int(self.session.height), int(self.session.width))
        clicks = [click.to_scribble(default) for click in request.clicks]
        self.start_round([*request.scribbles, *clicks, *request.boxes], request.frame, request.propagation)

    # ------------------------------------------------------------------ objects
    def add_object(self, name: str | None = None) -> int:
        """Add an object to the session (smallest free id) and return its id."""
        with self.session_lock:
            object_id = self.session.add_object(name).id
        self._after_objects_changed()
        return int(object_id)

    def rename_object(self, object_id: int, name: str) -> None:
        with self.session_lock:
            self.session.rename_object(object_id, name)
        self._after_objects_changed()

    def delete_object(self, object_id: int) -> None:
        """Delete an object from the session, its masks and memories included; :meth:`undo` brings
        it back. Refused while a round runs."""
        self._refuse_if_busy("delete an object")
        with self.session_lock:
            self.session.delete_object(object_id)
        self._after_rounds_changed()
        self._start_autosave()

    def adopt_names(self, entries: Sequence[tuple[int, str]]) -> None:
        """Give the session's objects the ``(id, name)`` entries' names, adding missing ids (names
        an older annotator kept beside its save, see :func:`manet_widget.autosave.saved_objects`)."""
        with self.session_lock:
            known = {item.id: item.name for item in self.session.objects}
            for object_id, name in entries:
                if object_id not in known:
                    self.session.add_object(name, object_id=object_id)
                elif known[object_id] != name:
                    self.session.rename_object(object_id, name)
            objects = object_list(self.session)
        self._update(objects=objects)

    def _after_objects_changed(self) -> None:
        with self.session_lock:
            objects = object_list(self.session)
        self._update(objects=objects)
        if self.autosave is None:
            return
        with self._state_lock:
            if self.busy and self._worker.kind not in QUEUEABLE:
                self._unsaved = True  # the running job saves when it ends
                return
        self._start_autosave()

    # ------------------------------------------------------------------ verbs
    def start_round(self, prompts: Sequence[Scribble | Box], frame: int,
                    propagation: protocol.Propagation = protocol.WHOLE_VIDEO) -> None:
        """Validate prompts (strokes, clicks, boxes) on ``frame`` and start interact + propagate on
        the worker thread; only the frames of ``propagation`` are recomputed.

        Raises at once (on the caller's thread) when busy, when the prompts are invalid or when
        ``frame`` lies outside the propagation range.
        """
        annotation = make_annotation(frame, prompts, self.session.num_frames, self.session.width,
                                     self.session.height)
        given: list[Scribble | Box] = [*annotation.scribbles, *annotation.boxes]
        job = RoundJob.checked(self, annotation.frame, propagation)
        self._start_job(RUNNING, lambda: job.run(lambda: self.session.interact(given, frame=annotation.frame)))
        self.last_round = job

    def start_mask_round(self, mask: np.ndarray, frame: int,
                         propagation: protocol.Propagation = protocol.WHOLE_VIDEO) -> None:
        """Start a round whose interactive frame is exactly ``mask`` ((H, W) ids), then propagate.

        Raises at once (``ScribbleError``) when the mask has another shape than the video's frames.
        """
        annotation = make_annotation(frame, [], self.session.num_frames, self.session.width,
                                     self.session.height, mask=mask)
        assert annotation.mask is not None  # make_annotation keeps the mask it was given
        ids = annotation.mask
        job = RoundJob.checked(self, annotation.frame, propagation)
        self._start_job(RUNNING, lambda: job.run(lambda: self.session.interact_mask(ids, annotation.frame)))
        self.last_round = job

    def cancel(self) -> None:
        """Ask the running propagation to stop after the current frame (no-op when idle)."""
        with self._state_lock:
            if self.busy and self._worker.kind in (RUNNING, PROPAGATING):
                self._worker.cancel.set()
                self._update(status=CANCELLING)

    def undo(self) -> None:
        """Undo the session's last step - a round or an object deletion (refused while a round runs)."""
        self._refuse_if_busy("undo")
        with self.session_lock:
            self.session.undo()
        self._after_rounds_changed()
        self._start_autosave()

    def reset(self) -> None:
        """Forget every round (refused while a round runs)."""
        self._refuse_if_busy("reset")
        with self.session_lock:
            self.session.reset()
        self._after_rounds_changed()
        self._start_autosave()

    def start_export(self, export_format: protocol.wire.ExportFormat, path: str) -> None:
        """Write the committed masks on the worker thread; replies ``exported`` when done."""
        if not self.session.rounds:
            raise SessionStateError("nothing to export yet: run a round first")
        masks = self.masks
        self._start_job(EXPORTING, lambda: self._export_job(export_format, path, masks))

    def start_prepare(self) -> None:
        """Compute every frame's embedding in the background so the first round starts fast.

        A round (or any job) started meanwhile does not wait for it: the warm-up stops after its
        current batch, the round embeds the frames it needs itself (the scribbled one first), and
        the warm-up resumes with the frames still missing once the worker is idle again.
        """
        self._start_job(PREPARING, self._prepare_job)

    def _prepare_job(self) -> None:
        complete = self.session.prepare(progress=self.progress, stop=self._worker.queued.is_set)
        self._prepare_unfinished = complete is False  # sessions whose prepare returns None are done

    def _resume_prepare(self) -> None:
        """The worker went idle: resume a warm-up another job interrupted."""
        if self._prepare_unfinished:
            self._prepare_unfinished = False
            self.start_prepare()

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

    def progress(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` on the progress bar."""
        self._update(progress={"done": int(done), "total": int(total)})

    # The round job (manet_widget.round_job) reports through these three.
    @property
    def worker(self) -> Worker:
        return self._worker

    def send(self, reply: protocol.Reply, buffers: Sequence[bytes] = ()) -> None:
        """Send ``reply`` to the front end."""
        self._send(reply, buffers)

    def send_pending_mask(self, index: int, mask: np.ndarray) -> None:
        """Stream the running round's mask of frame ``index``."""
        header, buffers = protocol.encode_mask(np.asarray(mask))
        self._send(protocol.MaskReply(index, self._version, True, header), buffers)

    def round_committed(self, number: int) -> None:
        """A round job committed round ``number``: refresh masks and traits, then autosave."""
        if self.autosave is not None:  # before round_finished: a Run sent on seeing it queues behind
            self._worker.switch(SAVING)
        self._after_rounds_changed(finished_round=number)
        self._save_now()

    def refresh(self) -> None:
        """Re-read rounds, masks and objects after the session was changed directly from Python."""
        self._after_rounds_changed()

    def _after_rounds_changed(self, finished_round: int | None = None) -> None:
        with self.session_lock:
            self._committed = np.array(self.session.masks) if self.session.rounds else None
            state = self._session_state()
        with self._state_lock:
            self._version += 1
            if finished_round is not None:
                self._send(protocol.RoundFinished(finished_round, self._version))
            self._update(mask_version=self._version, **state)

    def _start_autosave(self) -> None:
        if self.autosave is not None:
            self._start_job(SAVING, self._save_now)

    def save_unsaved(self) -> None:
        """From the end of a worker job: save object edits made while it ran."""
        if self._unsaved:
            self._save_now()

    def _save_now(self) -> None:
        """Autosave on the worker thread; a failure reaches the error banner, the session stays."""
        if self.autosave is None:
            return
        self._unsaved = False
        self._worker.switch(SAVING)
        self._update(autosave_state="saving")
        started = time.perf_counter()
        try:
            self.autosave.save()
            self.last_autosave_seconds = time.perf_counter() - started
        except Exception as error:  # noqa: BLE001 - shown to the user; the session is unchanged
            self._update(autosave_state="error")
            self.report_error(error)
            return
        self._update(autosave_state="saved")

    def _export_job(self, export_format: protocol.wire.ExportFormat, path: str, masks: np.ndarray) -> None:
        with self.session_lock:
            names = {item.id: item.name for item in self.session.objects}
        try:
            target = run_export(export_format, masks, path, self.session.video, names, progress=self.progress)
            self._send(protocol.Exported(export_format, str(target)))
        finally:
            self.save_unsaved()
