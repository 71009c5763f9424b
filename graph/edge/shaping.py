"""Rate shaping: a token bucket that makes a loopback socket behave like a :class:`~coinfer.hw.Link`.

Loopback moves bytes in microseconds; an emulated link of ``B`` bit/s and
round-trip time ``RTT`` must take ``RTT/2 + 8n/B`` seconds for a tensor of
``n`` bytes (:meth:`coinfer.hw.Link.transfer_time`).  :class:`TokenBucket` is
a token bucket in its virtual-scheduling form (the GCRA of ITU-T I.371): it
keeps the theoretical time ``tat`` at which the link has finished sending
everything given so far.  Taking ``c`` bytes sets
``tat = max(tat, now) + d(c)``, where ``d(c)`` is the link's time for ``8c``
bits starting at ``tat`` (``8c/B``, or integrated over a
:class:`~coinfer.hw.BandwidthTrace` from the trace time of ``tat``), and
the bytes may go at ``tat`` minus the bucket's depth in time (depth 0 by
default: no burst, so ``n`` bytes really take ``8n/B``).  ``propagate()``
adds ``RTT/2`` once, for a tensor that crosses the link.  Between
``begin()`` and ``end()`` (one message: a request, or a reply) the link is
never idle: each chunk follows on from ``tat`` even if the sender woke up
late, so the host's scheduling delays do not add up over a message's chunks
(a late chunk goes at once, and the message still ends at its ideal time).

:class:`ShapedSocket` puts one bucket on each direction of a connected
socket: ``sendall`` sends each chunk when its bucket releases it; ``recv_into``
hands received bytes to the caller when the downlink's bucket releases them.
Shaping the downlink at the receiver means one clock, the client's, replays a
bandwidth trace for both directions; a reply's bytes count from when they
arrive, as they would on a real link from when the server sent them.  Every
byte crossing is shaped, frame headers included: a real link carries them
too.

A trace plays from ``origin`` (a ``time.perf_counter()`` value; default:
when the bucket was made) at trace time ``at``; ``speedup`` > 1 plays it
faster (a time-lapse: the trace's states change ``speedup`` times sooner,
while a transfer still moves bits at the trace's rate per wall second).
"""
from __future__ import annotations

import math
import time

__all__ = ["TokenBucket", "ShapedSocket", "sleep_until", "chunk_bytes"]


def sleep_until(deadline: float, clock=time.perf_counter, sleep=time.sleep) -> None:
    """Return at or just after ``clock() >= deadline`` (the last 0.2 ms are spun with 0 s sleeps)."""
    while True:
        left = deadline - clock()
        if left <= 0:
            return
        sleep(left - 2e-4 if left > 4e-4 else 0)


def chunk_bytes(bps: float) -> int:
    """Bytes per shaped chunk: about 2 ms of the link, between 256 B and 64 KiB."""
    return int(min(65536, max(256, bps / 8 * 2e-3)))


class TokenBucket:
    """``TokenBucket(link, *, at=0.0, origin=None, speedup=1.0, depth_bytes=0, clock=time.perf_counter,
    sleep=time.sleep)``.

    ``link``: a :class:`~coinfer.hw.Link` (fixed bandwidth or a bandwidth trace,
    and its RTT).  See the module docstring.
    """

    def __init__(self, link, *, at: float = 0.0, origin: float | None = None, speedup: float = 1.0,
                 depth_bytes: int = 0, clock=time.perf_counter, sleep=time.sleep):
        if not (math.isfinite(speedup) and speedup > 0):
            raise ValueError(f"TokenBucket: speedup must be > 0, got {speedup!r}")
        if depth_bytes < 0:
            raise ValueError(f"TokenBucket: depth_bytes must be >= 0, got {depth_bytes!r}")
        self.link, self.clock, self.sleep = link, clock, sleep
        self.at, self.speedup, self.depth = float(at), float(speedup), int(depth_bytes)
        self.origin = clock() if origin is None else float(origin)
        self.tat = -math.inf
        self.busy = False

    def trace_time(self, t: float) -> float:
        """Trace seconds at ``clock()`` value ``t``."""
        return self.at + max(0.0, t - self.origin) * self.speedup

    def bandwidth(self, t: float | None = None) -> float:
        """Bit/s in force at ``clock()`` value ``t`` (default now)."""
        return self.link.bandwidth(self.trace_time(self.clock() if t is None else t))

    def link_time(self, t: float, nbytes: int) -> float:
        """Wall seconds the link needs for ``nbytes`` starting at ``clock()`` value ``t`` (no RTT)."""
        bits = 8.0 * nbytes
        if self.link.trace is None:
            return bits / self.link.bandwidth_bps
        return self.link.trace.transfer_time(self.trace_time(t), bits * self.speedup) / self.speedup

    def _start(self) -> float:
        return self.tat if self.busy else max(self.tat, self.clock())

    def begin(self) -> None:
        """A message starts now: the link was idle until now, and is busy until :meth:`end`."""
        self.tat = max(self.tat, self.clock())
        self.busy = True

    def end(self) -> None:
        self.busy = False

    def propagate(self) -> float:
        """``RTT/2`` of propagation before a tensor's first byte lands; returns ``tat``."""
        self.tat = self._start() + self.link.rtt_s / 2
        return self.tat

    def take(self, nbytes: int) -> float:
        """Account ``nbytes`` and return the ``clock()`` time at which they may go."""
        start = self._start()
        self.tat = start + self.link_time(start, nbytes)
        if self.depth:
            return self.tat - 8.0 * self.depth / max(self.bandwidth(start), 1.0)
        return self.tat

    def wait(self, nbytes: int) -> None:
        """Block until ``nbytes`` may go."""
        sleep_until(self.take(nbytes), self.clock, self.sleep)


class ShapedSocket:
    """A connected socket seen through an uplink and a downlink :class:`TokenBucket`
    (either may be None: unshaped).  ``sent`` and ``received`` count bytes."""

    def __init__(self, sock, up: TokenBucket | None = None, down: TokenBucket | None = None):
        self.sock, self.up, self.down = sock, up, down
        self.sent = self.received = 0

    def sendall(self, data) -> None:
        view = memoryview(data).cast("B")
        if self.up is None:
            self.sock.sendall(view)
        else:
            step = chunk_bytes(self.up.bandwidth())
            for i in range(0, len(view), step):
                piece = view[i:i + step]
                self.up.wait(len(piece))
                self.sock.sendall(piece)
        self.sent += len(view)

    def recv_into(self, buf, nbytes: int = 0) -> int:
        n = len(buf) if not nbytes else nbytes
        if self.down is not None:
            n = min(n, chunk_bytes(self.down.bandwidth()))
        k = self.sock.recv_into(buf, n)
        if k and self.down is not None:
            self.down.wait(k)
        self.received += k
        return k
