"""One round on the worker thread: interact, stream the interactive mask, propagate frame by
frame over the round's range, then commit - or drop the pending round on cancel or failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np

from manet.errors import FrameIndexError, PropagationCancelled
from manet.inference.session import Session
from manet_widget import protocol
from manet_widget.jobs import CANCELLING, PROPAGATING, Worker

PROGRESS_INTERVAL = 0.05  # seconds between progress updates: the bar moves, the comm is not flooded


class RoundHost(Protocol):
    """What a round job needs from the controller that runs it."""

    session: Session
    session_lock: threading.RLock

    @property
    def worker(self) -> Worker: ...

    def send(self, reply: protocol.Reply) -> None: ...

    def send_pending_mask(self, index: int, mask: np.ndarray) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def round_committed(self, number: int) -> None: ...

    def save_unsaved(self) -> None: ...


@dataclass
class RoundTiming:
    """Where a round's propagation time went, per streamed frame (for benchmarks and tuning).

    ``session_seconds`` is the time inside the session's propagation (the model, the session's
    mask resampling, and any embedding round 1 computes); ``widget_seconds`` what the widget adds
    on the propagation thread around it: encoding and sending each mask, progress updates.
    """

    frames: int = 0
    session_seconds: float = 0.0
    widget_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Totals and per-frame milliseconds, JSON-ready."""
        count = max(1, self.frames)
        return {"frames": self.frames, "session_seconds": self.session_seconds,
                "widget_seconds": self.widget_seconds,
                "session_ms_per_frame": 1000 * self.session_seconds / count,
                "widget_ms_per_frame": 1000 * self.widget_seconds / count}


@dataclass(frozen=True)
class RoundJob:
    """A round on ``frame`` that recomputes frames ``start``..``stop`` going ``direction``."""

    controller: RoundHost
    frame: int
    start: int
    stop: int
    direction: protocol.wire.Direction
    timing: RoundTiming = field(default_factory=RoundTiming, compare=False)

    @classmethod
    def checked(cls, controller: RoundHost, frame: int, propagation: protocol.Propagation) -> RoundJob:
        """The job of a round on ``frame`` over ``propagation``'s range (``None`` bounds: the video's).

        Raises:
            FrameIndexError: a bound outside the video, or ``frame`` outside the range.
        """
        last = controller.session.num_frames - 1
        start = 0 if propagation.start is None else propagation.start
        stop = last if propagation.stop is None else propagation.stop
        if not 0 <= start <= stop <= last:
            raise FrameIndexError(f"propagation range {start}..{stop} is not inside the video's frames 0..{last}")
        if not start <= frame <= stop:
            raise FrameIndexError(f"the annotated frame {frame} is outside the propagation range {start}..{stop}: "
                                  "widen the range or annotate a frame inside it")
        if propagation.direction == "forward":
            start = frame
        elif propagation.direction == "backward":
            stop = frame
        return cls(controller, frame, start, stop, propagation.direction)

    @property
    def total(self) -> int:
        """Frames this round recomputes, the interactive one included."""
        return self.stop - self.start + 1

    def run(self, interact: Callable[[], np.ndarray]) -> None:
        """The job: ``interact()`` starts the round (under the session lock), then propagate."""
        c = self.controller
        number = len(c.session.rounds) + 1
        c.send(protocol.RoundStarted(number, self.frame, self.start, self.stop))
        try:
            with c.session_lock:
                mask = interact()
            c.send_pending_mask(self.frame, mask)
            c.worker.switch(PROPAGATING, CANCELLING if c.worker.cancel.is_set() else PROPAGATING)
            c.progress(1, self.total)
            self._propagate()
        except PropagationCancelled:
            self._discard_pending()
            c.send(protocol.RoundCancelled(number))
            c.save_unsaved()
            return
        except BaseException:
            self._discard_pending()
            c.save_unsaved()
            raise
        c.round_committed(number)

    def _propagate(self) -> None:
        c = self.controller
        done = {self.frame}
        # Session.propagate is a generator function: closing it early drops the pending round.
        generator = cast(Generator[tuple[int, np.ndarray], None, None],
                         c.session.propagate(cancel=c.worker.cancel.is_set, start=self.start, stop=self.stop,
                                             direction=self.direction))
        last_progress = 0.0
        try:
            while True:
                started = time.perf_counter()
                with c.session_lock:
                    item = next(generator, None)
                computed = time.perf_counter()
                self.timing.session_seconds += computed - started
                if item is None:
                    return
                index, mask = item
                done.add(int(index))
                c.send_pending_mask(int(index), mask)
                now = time.monotonic()
                if now - last_progress > PROGRESS_INTERVAL or len(done) >= self.total:
                    last_progress = now
                    c.progress(min(len(done), self.total), self.total)
                self.timing.frames += 1
                self.timing.widget_seconds += time.perf_counter() - computed
        finally:
            with c.session_lock:
                generator.close()

    def _discard_pending(self) -> None:
        # Closing the propagation drops the pending round; a failure between interact and the
        # first propagated frame leaves it pending, so it is dropped here too.
        with self.controller.session_lock:
            self.controller.session.discard_pending()

