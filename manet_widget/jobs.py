"""The annotator's worker: one background job at a time (round, export, warm-up, autosave).

Jobs of a *queueable* kind (the embedding warm-up, an autosave) let a new job start at once: the
new job's thread waits for them before it runs, so pressing Run while the last round is being
saved, or while embeddings are computed, is not refused.
"""

from __future__ import annotations

import threading
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

    Invariant: ``kind`` is ``"idle"`` exactly when no job thread is alive or about to start.
    """

    def __init__(self, lock: threading.RLock, on_status: Callable[[str], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self._lock = lock
        self._on_status = on_status
        self._on_error = on_error
        self._job: threading.Thread | None = None
        self.kind = IDLE
        self.cancel = threading.Event()

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
            if self.busy and self.kind not in QUEUEABLE:
                raise SessionStateError(f"busy ({self.kind}): wait for it to finish or press Cancel")
            previous = self._job
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
        """Block until no job runs; True if idle."""
        job = self._job
        if job is not None:
            job.join(timeout)
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
