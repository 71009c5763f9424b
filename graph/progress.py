"""A one-line progress indicator on stderr for long runs."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "kernels") as p: p.step("conv1")`` redraws one stderr line.

    On a terminal the line is rewritten in place; otherwise one line is printed per step.
    """

    def __init__(self, total: int, label: str, stream=None, enabled: bool = True):
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def step(self, what: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        msg = f"[{self.label}] {self.done + 1}/{self.total} {what}  ({elapsed:.1f}s)"
        if self.tty:
            self.stream.write("\r\x1b[K" + msg)
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()
        self.done += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled and self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        return False
