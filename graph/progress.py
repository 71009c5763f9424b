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


class _Counter:
    """The fallback of :func:`bar`: a :class:`Progress` line every few percent."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.p = Progress(total, label, enabled=enabled)
        self.total, self.n, self.shown = total, 0, -1

    def update(self, k: int = 1) -> None:
        self.n += k
        pct = int(100 * self.n / max(1, self.total))
        if pct // 5 != self.shown // 5 or self.n == self.total:
            self.shown = pct
            self.p.done = self.n - 1
            self.p.step(f"{pct}%")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.p.__exit__(*exc)


def bar(total: int, label: str, *, enabled: bool = True):
    """A progress bar on stderr (``with bar(n, "measure") as b: b.update(1)``): tqdm's when
    it is installed (``pip install 'coinfer[progress]'``), else a :class:`Progress` line."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc=label, file=sys.stderr, unit="op", leave=False)
        except ImportError:
            pass
    return _Counter(total, label, enabled)
