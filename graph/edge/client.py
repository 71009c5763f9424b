"""The device side of real co-inference: a client of the edge server, and a runner that splits a model.

:class:`EdgeClient` speaks the frames of :mod:`coinfer.graph.edge.frames`
over one TCP connection: ``open(model_id)``, ``run(exit, first, end,
inputs)``, ``ping(nbytes)``.  ``shape(link)`` puts a token bucket
(:mod:`coinfer.graph.edge.shaping`) on each direction, so each crossing
tensor takes ``RTT/2 + 8n/B`` as on the :class:`~coinfer.hw.Link`.  Every
blocking call is bounded by ``timeout`` s (``open_timeout`` for OPEN, which
may load a model); a server that stalls or dies raises :class:`EdgeError`.

:class:`RemoteRunner` runs one frame of a plan (exit, cut, direction): the
device's ops on a local :class:`~coinfer.hw.Processor`, the edge's on the
server.  **How the emulated device's time is realised**: the device part runs
with coinfer's kernels on the host, and the device's thread stays busy for
``scale x`` its host compute time, ``scale`` being the device profile's
(``raspberry_pi``: a Pi runs about 114 times slower than this host), waiting
out what the kernels did not take, as an :class:`~coinfer.hw.SoC` realises
modelled costs by waiting.  The host time scaled is that of a warm pass
(:func:`~coinfer.graph.edge.parts.run_range`: two untimed passes first, inside
the realised time), since a core that idled while the frame waited for the
link runs the next ops up to 40% slower than the loop its costs were
measured in.
The edge server does the same under its own profile (see
:mod:`coinfer.graph.edge.server`).  The wall time of a frame is then
comparable to the planner's prediction, which scales the same measured
per-op costs by the same profiles and adds the link's transfers.

When the server cannot be reached, times out, or answers with an error, the
frame falls back to the device-only plan (the whole model on the device; its
time counts from the frame's start, so the time lost waiting is in it) and
its record says why (``fallback``).  For ``retry_s`` s after a failure the
runner does not try the server again.
"""
from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field

import numpy as np

from . import frames as fr
from .catalog import graph_digest
from .frames import FrameError, Kind, Reason
from .parts import edge_range, exit_ops, n_exits, range_io, run_range
from .shaping import ShapedSocket, TokenBucket

__all__ = ["EdgeError", "EdgeClient", "ModelInfo", "Reply", "RemoteRunner", "FrameResult", "parse_address"]


class EdgeError(RuntimeError):
    """The edge server failed a request: ``reason`` (a :class:`Reason`, or None for a
    timeout or a lost connection), ``timed_out``."""

    def __init__(self, message: str, reason: Reason | None = None, timed_out: bool = False):
        super().__init__(message)
        self.reason, self.timed_out = reason, timed_out


def parse_address(text: str, default_port: int = 7700, *, require_port: bool = False) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[v6]:PORT"``) or ``"HOST"`` (``default_port``) -> (host, port)."""
    s = str(text).strip()
    host, sep, port = s.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):
        if require_port:
            raise ValueError(f"--edge must be a cost profile name or HOST:PORT of an edge server, got {text!r}")
        host, port = s, str(default_port)
    host = host.strip("[]")
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"--edge must look like HOST:PORT, got {text!r}") from None
    if not host or not 0 < p < 65536:
        raise ValueError(f"--edge must look like HOST:PORT with a port in 1..65535, got {text!r}")
    return host, p


@dataclass
class ModelInfo:
    digest: str
    exits: int
    ops: int
    edge_scale: float


@dataclass
class Reply:
    """What one RUN returned and how long each part took (seconds)."""

    outputs: list
    up_s: float  # sending the request and its tensors, shaped
    wait_s: float  # from the last byte sent to the reply's first byte
    down_s: float  # receiving the reply, shaped
    compute_s: float  # the server's time for the range, as realised under its profile
    host_s: float  # the server's kernels' host time
    queue_s: float  # the request's wait for a worker
    samples: list = field(default_factory=list)  # measured bit/s of each tensor crossing


class EdgeClient:
    """``EdgeClient(host, port, *, timeout=5.0, open_timeout=60.0, max_frame=1 GiB)``."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0, open_timeout: float = 60.0,
                 max_frame: int = 1 << 30):
        if not timeout > 0 or not open_timeout > 0:
            raise ValueError(f"EdgeClient: timeouts must be > 0 s, got {timeout}, {open_timeout}")
        self.host, self.port = host, int(port)
        self.timeout, self.open_timeout, self.max_frame = float(timeout), float(open_timeout), int(max_frame)
        self.sock = None
        self.up = self.down = None
        self.rtt_s = 0.0
        self._rid = 0

    # -- connection -----------------------------------------------------------------
    def connect(self) -> "EdgeClient":
        self.close()
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except socket.timeout:
            raise EdgeError(f"edge {self.host}:{self.port}: no connection within {self.timeout:g} s",
                            timed_out=True) from None
        except OSError as e:
            raise EdgeError(f"edge {self.host}:{self.port}: cannot connect: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def shape(self, link=None, *, at: float = 0.0, origin: float | None = None, speedup: float = 1.0) -> None:
        """Shape both directions as ``link`` (a :class:`~coinfer.hw.Link`; None: unshaped)."""
        if link is None:
            self.up = self.down = None
            self.rtt_s = 0.0
            return
        kw = dict(at=at, origin=origin, speedup=speedup)
        self.up, self.down = TokenBucket(link, **kw), TokenBucket(link, **kw)
        self.rtt_s = link.rtt_s

    def _stream(self) -> ShapedSocket:
        if self.sock is None:
            raise EdgeError("edge: not connected")
        return ShapedSocket(self.sock, self.up, self.down)

    def _next_id(self) -> int:
        self._rid = (self._rid + 1) & 0xFFFFFFFF
        return self._rid

    @staticmethod
    def _begin(bucket) -> None:
        if bucket is not None:
            bucket.begin()

    @staticmethod
    def _end(bucket) -> None:
        if bucket is not None:
            bucket.end()

    def _wait_reply(self, timeout: float) -> None:
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise EdgeError(f"edge {self.host}:{self.port}: no reply within {timeout:g} s", timed_out=True)

    def _reply_header(self, stream, rid: int, kind: Kind):
        try:
            h = fr.read_header(stream, self.max_frame)
        except fr.Closed:
            raise EdgeError(f"edge {self.host}:{self.port}: the server closed the connection") from None
        if h.kind == Kind.ERROR:
            text = fr.payload_text(fr.read_payload(stream, h))
            reason = Reason(h.args[0]) if h.args[0] in Reason._value2member_map_ else None
            raise EdgeError(f"edge {self.host}:{self.port}: {reason.name if reason else h.args[0]}: {text}", reason)
        if h.kind != kind or h.request_id != rid:
            raise EdgeError(f"edge {self.host}:{self.port}: expected {kind.name} for request {rid}, got "
                            f"{h.kind.name} for request {h.request_id}")
        return h

    def _guard(self, fn, timeout: float):
        """Run ``fn()`` with the socket timeout; map socket failures to EdgeError."""
        self.sock.settimeout(timeout)
        try:
            return fn()
        except socket.timeout:
            raise EdgeError(f"edge {self.host}:{self.port}: timed out after {timeout:g} s", timed_out=True) from None
        except FrameError as e:
            raise EdgeError(f"edge {self.host}:{self.port}: bad frame from the server: {e}", e.reason) from None
        except OSError as e:
            raise EdgeError(f"edge {self.host}:{self.port}: {type(e).__name__}: {e}") from None
        finally:
            self._end(self.up)
            self._end(self.down)

    # -- requests -----------------------------------------------------------------------
    def open(self, model_id: str, expect_digest: str | None = None) -> ModelInfo:
        """OPEN a model; checks the server's digest against ``expect_digest`` if given."""
        if self.sock is None:
            self.connect()
        rid = self._next_id()

        def go():
            fr.write_frame(self.sock, Kind.OPEN, rid, fr.text_payload(model_id))
            self._wait_reply(self.open_timeout)
            h = self._reply_header(self.sock, rid, Kind.READY)
            digest = bytes(fr.read_payload(self.sock, h)).hex()
            return ModelInfo(digest, h.args[0], h.args[1], h.args[2] / 1e6)

        info = self._guard(go, self.open_timeout)
        if expect_digest is not None and info.digest != expect_digest:
            raise EdgeError(f"edge {self.host}:{self.port}: model {model_id!r} there has digest "
                            f"{info.digest[:16]}.., ours {expect_digest[:16]}..: the two sides differ")
        return info

    def run(self, exit: int, first: int, end: int, inputs: list, out_shapes: list) -> Reply:
        """RUN ops ``[first, end)`` of ``exit`` on ``inputs`` (float32, in :func:`range_io`
        order); ``out_shapes`` the outputs' shapes, checked before they are read."""
        rid = self._next_id()
        stream = self._stream()

        def go():
            samples = []
            t0 = time.perf_counter()
            self._begin(self.up)
            fr.write_frame(stream, Kind.RUN, rid, None, (exit, first, end))
            for i, x in enumerate(inputs):
                ts = self.up.propagate() if self.up else time.perf_counter()
                n = fr.write_frame(stream, Kind.TENSOR, rid, np.ascontiguousarray(x, np.float32), (i,))
                samples.append((n, time.perf_counter() - ts))  # ts: after RTT/2, at the first byte
            self._end(self.up)
            t_up = time.perf_counter()
            self._wait_reply(self.timeout)
            t_arr = time.perf_counter()
            self._begin(self.down)
            h = self._reply_header(stream, rid, Kind.RESULT)
            outs = []
            for i, shape in enumerate(out_shapes):
                th = self._reply_header(stream, rid, Kind.TENSOR)
                if th.args[0] != i or th.dtype != fr.DTYPES[10] or th.shape != tuple(shape):
                    raise EdgeError(f"edge {self.host}:{self.port}: output {i} must be float32 {tuple(shape)}, "
                                    f"got {th.dtype} {th.shape} as output {th.args[0]}")
                ts = self.down.propagate() if self.down else time.perf_counter()
                outs.append(fr.read_payload(stream, th))
                samples.append((th.length, time.perf_counter() - ts))  # the payload, after its RTT/2
            t_end = time.perf_counter()
            self._end(self.down)
            bps = [8.0 * n / d for n, d in samples if d >= 1e-3]
            return Reply(outs, t_up - t0, t_arr - t_up, t_end - t_arr, h.args[0] / 1e6, h.args[1] / 1e6,
                         h.args[2] / 1e6, bps)

        return self._guard(go, self.timeout)

    def ping(self, nbytes: int = 0) -> float:
        """Send a PING of ``nbytes`` (shaped) and wait for PONG; the measured uplink
        throughput in bit/s (0 without payload)."""
        rid = self._next_id()
        stream = self._stream()

        def go():
            self._begin(self.up)
            ts = self.up.propagate() if self.up else time.perf_counter()
            n = fr.write_frame(stream, Kind.PING, rid, np.zeros(nbytes, np.uint8) if nbytes else None)
            d = time.perf_counter() - ts
            self._end(self.up)
            self._wait_reply(self.timeout)
            h = self._reply_header(stream, rid, Kind.PONG)
            if h.args[0] != max(0, nbytes):
                raise EdgeError(f"edge: PONG says {h.args[0]} bytes arrived, {nbytes} were sent")
            return 8.0 * n / d if nbytes and d > 0 else 0.0

        return self._guard(go, self.timeout)


@dataclass
class FrameResult:
    """One frame run across device and edge (seconds; wall time on this host)."""

    output: np.ndarray
    planned: tuple  # (exit, cut, direction) asked for
    plan: tuple  # what ran: ``planned``, or the device-only plan after a fallback
    total_s: float
    device_s: float  # device compute as realised under the device profile
    transfer_s: float  # uplink + downlink, shaped
    edge_s: float  # the server's compute for its range, as realised
    wait_s: float = 0.0  # reply's first byte minus the request's last, less edge_s: server and loopback overhead
    fallback: str | None = None
    samples: list = field(default_factory=list)  # measured bit/s of each crossing

    @property
    def exit(self) -> int:
        return self.plan[0]


class RemoteRunner:
    """``RemoteRunner(graph, device_proc, device_scale, client, model_id=None, retry_s=2.0)``.

    ``device_proc``: the :class:`~coinfer.hw.Processor` that runs the device's ops
    (its trace is cleared by every part); ``device_scale``: the device profile's
    time scale; ``client``: an :class:`EdgeClient` (connected on first use).
    ``model_id`` defaults to the graph's name; the server's digest must equal
    this graph's.
    """

    def __init__(self, graph, device_proc, device_scale: float, client: EdgeClient, *, model_id: str | None = None,
                 retry_s: float = 2.0):
        self.graph, self.proc, self.scale, self.client = graph, device_proc, float(device_scale), client
        self.model_id = model_id or graph.name
        self.digest = graph_digest(graph)
        self.retry_s = float(retry_s)
        self.info = None
        self._down_until = -1.0
        self._last_failure = ""
        self.last = n_exits(graph) - 1

    def close(self) -> None:
        self.client.close()

    def ensure_open(self) -> ModelInfo:
        if not self.client.connected or self.info is None:
            self.client.connect()
            self.info = self.client.open(self.model_id, self.digest)
        return self.info

    def device_part(self, names, env) -> float:
        """Run ``names`` on the device and realise the device profile's time
        (:func:`~coinfer.graph.edge.parts.run_range`); wall seconds."""
        if not names:
            return 0.0
        t0 = time.perf_counter()
        run_range(self.proc, self.graph, names, env, scale=self.scale)
        return time.perf_counter() - t0

    def run(self, x: np.ndarray, plan) -> FrameResult:
        """One frame of ``plan`` = (exit, cut, direction) on input ``x``."""
        e, p, d = (plan.exit, plan.cut, plan.direction) if hasattr(plan, "exit") else plan
        g = self.graph
        ops, out = exit_ops(g, e)
        first, end = edge_range(len(ops), p, d)
        if first == end or time.perf_counter() < self._down_until:
            t0 = time.perf_counter()
            if first == end:
                return self._local(x, (e, p, d), (e, p, d), t0)
            return self._local(x, (e, p, d), (self.last, 0, "edge-first"), t0,
                               f"edge unavailable (last failure: {self._last_failure})")
        env = {g.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}
        inputs, outputs = range_io(g, e, first, end)
        t0 = None
        t_open = time.perf_counter()  # a failed (re)connection's time counts in the frame
        try:
            self.ensure_open()
            t0 = time.perf_counter()
            dev = self.device_part(ops[:first], env)
            reply = self.client.run(e, first, end, [env[t] for t in inputs], [g.shape(t) for t in outputs])
            env.update(zip(outputs, reply.outputs))
            dev += self.device_part(ops[end:], env)
        except EdgeError as err:
            t0 = t_open if t0 is None else t0
            self.client.close()
            self.info = None
            self._down_until = time.perf_counter() + self.retry_s
            self._last_failure = str(err)
            return self._local(x, (e, p, d), (self.last, 0, "edge-first"), t0, f"edge failed: {err}")
        total = time.perf_counter() - t0
        return FrameResult(env[out], (e, p, d), (e, p, d), total, dev, reply.up_s + reply.down_s, reply.compute_s,
                           max(0.0, reply.wait_s - reply.compute_s), None, reply.samples)

    def _local(self, x, planned, plan, t0, fallback=None) -> FrameResult:
        g = self.graph
        ops, out = exit_ops(g, plan[0])
        env = {g.inputs[0]: np.ascontiguousarray(x, dtype=np.float32)}
        dev = self.device_part(ops, env)
        return FrameResult(env[out], planned, plan, time.perf_counter() - t0, dev, 0.0, 0.0, 0.0, fallback, [])
