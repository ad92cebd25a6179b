"""The annotator's worker: one background job at a time (round, export, warm-up, autosave).

Jobs of a *queueable* kind (the embedding warm-up, an autosave) let a new job start at once: the
new job's thread waits for them before it runs, so pressing Run while the last round is being
saved, or while embeddings are computed, is not refused. A job queued behind another sets
:attr:`Worker.queued`: the warm-up polls it between batches and stops, so a round waits for one
batch of embeddings, not for the whole video (the controller resumes the warm-up when idle).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from manet.errors import SessionStateError

IDLE, PREPARING, RUNNING, PROPAGATING, CANCELLING, EXPORTING, SAVING = (
    "idle", "preparing", "running", "propagating", "cancelling", "exporting", "saving")
QUEUEABLE = (PREPARING, SAVING)


class Worker:
    """Runs jobs on daemon threads, one at a time.

    Args:
        lock: the controller's state lock; kind changes and status reports happen under it, so
            a status never contradicts the kind another thread reads.
        on_status: called (under ``lock``) with the status to show when a job starts, switches
            kind or ends (``"idle"``).
        on_error: called with any exception a job raises (jobs never die silently).
        on_idle: called (under ``lock``) when the last job has ended; it may start a new job.

    Invariant: ``kind`` is ``"idle"`` exactly when no job thread is alive or about to start.
    """

    def __init__(self, lock: threading.RLock, on_status: Callable[[str], None],
                 on_error: Callable[[BaseException], None], on_idle: Callable[[], None] | None = None) -> None:
        self._lock = lock
        self._on_status = on_status
        self._on_error = on_error
        self._on_idle = on_idle
        self._job: threading.Thread | None = None
        self.kind = IDLE
        self.cancel = threading.Event()
        self.queued = threading.Event()  # set while a job waits for the running one to end

    @property
    def busy(self) -> bool:
        """True while a job runs (or waits for a queueable one to end)."""
        return self._job is not None and self._job.is_alive()

    def start(self, kind: str, work: Callable[[], None]) -> None:
        """Run ``work`` on a new thread as a job of ``kind``.

        Raises:
            SessionStateError: a job that is not queueable is running.
        """
        with self._lock:
            if self.busy and self.kind not in (*QUEUEABLE, IDLE):  # IDLE while busy: the job is ending
                raise SessionStateError(f"busy ({self.kind}): wait for it to finish or press Cancel")
            previous = self._job
            if self.busy:
                self.queued.set()
            self.cancel.clear()
            self.kind = kind
            thread = threading.Thread(target=self._run, args=(kind, work, previous),
                                      name=f"manet-widget-{kind}", daemon=True)
            self._job = thread
            thread.start()

    def switch(self, kind: str, status: str | None = None) -> bool:
        """From inside the running job: become a job of ``kind`` (showing ``status``, default
        ``kind``). False, and nothing changes, when a newer job has been queued behind this one."""
        with self._lock:
            if self._job is not threading.current_thread():
                return False
            self.kind = kind
            self._on_status(status or kind)
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job runs, also none started as the last one ended (a resumed warm-up);
        True if idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._job
            if job is None:
                return True
            job.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if not self.busy or (deadline is not None and time.monotonic() >= deadline):
                return not self.busy

    def wait_for_save(self) -> None:
        """Block until a running autosave ends (it must not see the session change under it)."""
        with self._lock:
            job = self._job if self.kind == SAVING else None
        if job is not None and job is not threading.current_thread():
            job.join()

    def _run(self, kind: str, work: Callable[[], None], previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()
        with self._lock:
            if self._job is threading.current_thread():  # no newer job waits behind this one
                self.queued.clear()
        try:
            self.switch(kind)
            work()
        except Exception as error:  # noqa: BLE001 - reported to the user, never lost in a thread
            self._on_error(error)
        finally:
            with self._lock:
                if self._job is threading.current_thread():
                    self.kind = IDLE
                    self._on_status(IDLE)
                    self._idle()

    def _idle(self) -> None:
        if self._on_idle is None:
            return
        try:
            self._on_idle()
        except Exception as error:  # noqa: BLE001 - reported to the user, never lost in a thread
            self._on_error(error)
