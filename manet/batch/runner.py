"""Run independent tasks (one per video) and collect every result and every failure.

Three engines behind one call, :func:`run_tasks`:

* ``serial``: in this process, one task after another (``workers=1``, no address);
* ``dask``: a Dask distributed cluster: a local one with ``workers`` processes, or the
  scheduler at ``address`` (``tcp://host:8786``) whose workers must have this package installed;
* ``processes``: local worker processes from the standard library, when Dask is not installed.

A task that raises is reported as a :class:`TaskFailure`; the others run on and their results
are kept. Library code reports progress through a callback only.
"""

from __future__ import annotations

import logging
import os
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Generic, Literal, TypeVar

Result = TypeVar("Result")
Engine = Literal["auto", "serial", "dask", "processes"]


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised: its key, the exception as ``Type: message`` and the traceback text."""

    key: str
    error: str
    details: str = ""


@dataclass(frozen=True)
class TaskEvent:
    """Reported after every task: ``done`` of ``total`` finished; on success ``result`` is the
    task's return value and ``failure`` None."""

    key: str
    done: int
    total: int
    failure: TaskFailure | None = None
    result: Any = None


@dataclass
class TaskOutcome(Generic[Result]):
    """Results by task key (finished tasks only) and the failures, in completion order."""

    results: dict[str, Result] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)


EventCallback = Callable[[TaskEvent], None]


def dask_available() -> bool:
    """Whether the optional ``distributed`` package (the ``[cluster]`` extra) is installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(engine: Engine, workers: int, address: str | None) -> Literal["serial", "dask", "processes"]:
    """The engine ``auto`` stands for: serial for one local worker, else Dask when installed."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if address is not None:
        if engine not in ("auto", "dask"):
            raise ValueError(f"an address names a Dask scheduler: engine {engine!r} cannot use it")
        if not dask_available():
            raise ImportError("running on a cluster needs Dask distributed: pip install 'manet[cluster]'")
        return "dask"
    if engine == "auto":
        if workers == 1:
            return "serial"
        return "dask" if dask_available() else "processes"
    if engine == "dask" and not dask_available():
        raise ImportError("engine 'dask' needs Dask distributed: pip install 'manet[cluster]'")
    return engine


def run_tasks(function: Callable[..., Result], tasks: Mapping[str, Sequence[Any]], *, workers: int = 1,
              address: str | None = None, engine: Engine = "auto",
              on_event: EventCallback | None = None) -> TaskOutcome[Result]:
    """Call ``function(*tasks[key])`` for every key; never raises for a failing task.

    Args:
        function: a module-level function (worker processes import it by name).
        tasks: key -> positional arguments (picklable).
        workers: local worker processes (ignored with ``address``: the cluster has its own).
        address: a Dask scheduler address; None runs locally.
        engine: see the module doc; ``auto`` picks one.
        on_event: called in this process after every finished or failed task.
    """
    chosen = choose_engine(engine, workers, address)
    if chosen == "serial":
        return _run_serial(function, tasks, on_event)
    threads = max(1, (os.cpu_count() or 1) // workers)
    if chosen == "processes":
        return _run_processes(function, tasks, workers, threads, on_event)
    return _run_dask(function, tasks, workers, threads, address, on_event)


def call_with_threads(function: Callable[..., Result], threads: int | None, *args: Any) -> Result:
    """Run ``function(*args)`` with torch limited to ``threads`` intra-op threads (None: unchanged),
    so local workers sharing a machine do not oversubscribe its cores."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return function(*args)


def _failure(key: str, error: BaseException) -> TaskFailure:
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return TaskFailure(key, f"{type(error).__name__}: {error}", details)


def _record(outcome: TaskOutcome[Result], key: str, total: int, on_event: EventCallback | None,
            result: Any = None, error: BaseException | None = None) -> None:
    failure = None if error is None else _failure(key, error)
    if failure is None:
        outcome.results[key] = result
    else:
        outcome.failures.append(failure)
    if on_event is not None:
        on_event(TaskEvent(key, len(outcome.results) + len(outcome.failures), total, failure,
                           None if failure is not None else result))


def _run_serial(function: Callable[..., Result], tasks: Mapping[str, Sequence[Any]],
                on_event: EventCallback | None) -> TaskOutcome[Result]:
    outcome: TaskOutcome[Result] = TaskOutcome()
    for key, arguments in tasks.items():
        try:
            result = function(*arguments)
        except Exception as error:  # noqa: BLE001 - any failure of one task is reported, the rest run on
            _record(outcome, key, len(tasks), on_event, error=error)
        else:
            _record(outcome, key, len(tasks), on_event, result=result)
    return outcome


def _run_processes(function: Callable[..., Result], tasks: Mapping[str, Sequence[Any]], workers: int,
                   threads: int, on_event: EventCallback | None) -> TaskOutcome[Result]:
    outcome: TaskOutcome[Result] = TaskOutcome()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(call_with_threads, function, threads, *arguments): key
                   for key, arguments in tasks.items()}
        for future in as_completed(futures):
            error = future.exception()
            _record(outcome, futures[future], len(tasks), on_event,
                    result=None if error is not None else future.result(), error=error)
    return outcome


def _run_dask(function: Callable[..., Result], tasks: Mapping[str, Sequence[Any]], workers: int, threads: int,
              address: str | None, on_event: EventCallback | None) -> TaskOutcome[Result]:
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_as_completed

    outcome: TaskOutcome[Result] = TaskOutcome()
    cluster = None
    if address is None:
        # One single-threaded worker process per task slot; torch gets the machine's share.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        with Client(cluster if cluster is not None else address) as client:
            task_threads = threads if cluster is not None else None
            run = uuid.uuid4().hex[:8]  # keys unique per run: a shared scheduler may still hold older ones
            futures = {client.submit(call_with_threads, function, task_threads, *arguments,
                                     key=f"manet-{key}-{run}", pure=False, retries=0): key
                       for key, arguments in tasks.items()}
            for future in dask_as_completed(list(futures)):
                key = futures[future]
                if future.status == "error":
                    _record(outcome, key, len(tasks), on_event, error=future.exception())
                else:
                    _record(outcome, key, len(tasks), on_event, result=future.result())
    finally:
        if cluster is not None:
            cluster.close()
    return outcome
