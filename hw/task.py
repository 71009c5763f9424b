"""Task handles and task errors.

A :class:`Task` is what a :class:`~coinfer.hw.processor.Processor` hands back
for submitted work: it completes when every tile has run, carries the trace
ids of those tiles (dependents record them as their deps), and re-raises a
failure in the caller with the processor and op named.
"""
from __future__ import annotations

import threading

from .memory import new_flag

__all__ = ["Task", "TaskError", "SyncTimeout"]


class TaskError(RuntimeError):
    """A task failed (or was not run because a dependency failed).

    The message names the processor and the op; ``__cause__`` is the original
    exception.
    """

    def __init__(self, message: str, processor: str = "", op: str = ""):
        super().__init__(message)
        self.processor = processor
        self.op = op


class SyncTimeout(TimeoutError):
    """A task's wait for its dependencies ran past its timeout."""

    def __init__(self, message: str, processor: str = "", op: str = ""):
        super().__init__(message)
        self.processor = processor
        self.op = op



class Task:
    """Handle for work submitted to a :class:`Processor` (future-like).

    ``result(timeout)`` returns one value per tile, or raises :class:`TaskError`
    / :class:`SyncTimeout` naming the processor and op; ``TimeoutError`` if
    the task is still not done after ``timeout`` seconds.
    """

    def __init__(self, pool, op: str, kind: str, ntiles: int, deps: tuple):
        self._pool = pool
        self.processor = pool.name
        self.op = op
        self.kind = kind
        self.deps = deps
        self.meta: dict = {}  # recorded with the task: {"layout": ..., "op_class": ...}
        self._lock = threading.Lock()
        self._pending = max(ntiles, 1)
        self._results = [None] * ntiles
        self._ids: list[int] = []
        self._failure = None  # (exception class, message, cause)
        self._event = threading.Event()
        # Set (after the event) when done: a waiter on another core may watch it
        # without the interpreter lock instead of sleeping on the event.
        self._flag = new_flag()

    def _finish(self, index: int, result, rec_id, failure, ids=()) -> None:
        with self._lock:
            if index >= 0:
                self._results[index] = result
            if rec_id is not None:
                self._ids.append(rec_id)
            self._ids.extend(ids)
            if failure is not None and self._failure is None:
                self._failure = failure
            self._pending -= 1
            done = self._pending == 0
        if done:
            self._event.set()
            self._flag[0] = 1

    @property
    def ids(self) -> tuple:
        """Trace ids of this task's tiles (of its dependencies, for an empty task)."""
        with self._lock:
            return tuple(sorted(self._ids))

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done or ``timeout``; True when done.  Never raises the task's error."""
        return self._event.wait(timeout)

    def _error(self) -> BaseException | None:
        if self._failure is None:
            return None
        cls, message, cause = self._failure
        err = cls(message, self.processor, self.op)
        err.__cause__ = cause
        return err

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait_or_raise(timeout)
        return self._error()

    def result(self, timeout: float | None = None) -> list:
        self._wait_or_raise(timeout)
        err = self._error()
        if err is not None:
            raise err
        return list(self._results)

    def _wait_or_raise(self, timeout) -> None:
        if not self._event.wait(timeout):
            raise TimeoutError(f"{self.processor}: {self.kind} '{self.op}' not done within {timeout} s")

    def __repr__(self) -> str:
        state = "failed" if self._failure else ("done" if self.done() else "pending")
        return f"<Task {self.processor}:{self.kind} {self.op!r} {state}>"
