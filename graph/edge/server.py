"""The edge server: runs op ranges of served models for devices, over TCP.

``EdgeServer(ServerConfig(...))``; ``start()`` binds (loopback unless
``host`` says otherwise; port 0 picks a free one, see :attr:`address`) and
serves on background threads until ``stop()``.  ``coinfer edge-server``
(:func:`main`) runs one until SIGINT or SIGTERM.

The conversation (frames in :mod:`coinfer.graph.edge.frames`): a client
sends OPEN with a model id and gets READY with the model's digest; then any
number of RUN requests (the exit and op range, then the range's input
tensors), each answered with RESULT and the range's output tensors; PING
gets PONG.  OPEN again switches model.  Any bad frame or request gets an
ERROR frame with its reason, and that connection is closed; the others go on.

How it serves
-------------
- One thread per connection, at most ``max_connections`` (more are refused
  with ``BUSY``).  It waits for a request's first byte up to
  ``idle_timeout`` s; once a frame has started, a gap of ``stall_timeout`` s
  without a byte ends the connection (``STALLED``).
- Memory: a payload is allocated only after its header passed every check
  and, for a tensor, matched the shape the range needs; all payloads in
  flight share a budget of ``budget_bytes`` (default four maximum frames).  A
  request that cannot get its bytes within ``queue_timeout`` s is refused
  with ``BUSY``.  So memory stays bounded by the budget, the loaded models
  (at most ``max_models``) and the ranges' activations.
- Compute: ``workers`` :class:`~coinfer.hw.Processor` s (one thread each,
  buffer kernels, pinned from the last allowed core down); each connection
  is given one, round robin, and its requests queue on that thread.  The
  range runs as one command list, as
  :class:`~coinfer.graph.edgent.runtime.CoRunner` runs a side
  (:func:`~coinfer.graph.edge.parts.run_range`).  Under the ``soc`` profile
  the edge's time for the range is host time x ``scale``; when
  ``scale > 1`` the worker realises it by waiting out the rest (as an SoC
  realises modelled costs), when ``scale < 1`` (a desktop edge faster than
  this host) it cannot, and RESULT reports the time it took (``compute``)
  next to the host time, so the client sees the difference.  While a RUN's
  inputs arrive, its worker runs the range once on dummy data
  (:func:`~coinfer.graph.edge.parts.warm_range`), so the timed run finds its
  core awake and its caches warm, as the per-op costs were measured.
- A model's first OPEN loads it (:class:`~coinfer.graph.edge.catalog.Catalog`)
  and runs every exit once, so no request times a kernel's first call.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ...hw import Processor, Trace
from ...hw.profile import get_profile
from ...kernels import buffer as buffer_kernels
from . import frames as fr
from .catalog import Catalog, UnknownModel
from .frames import FrameError, Kind, Reason
from .parts import exit_ops, n_exits, range_io, run_range, warm_range

__all__ = ["ServerConfig", "EdgeServer", "main", "add_parser"]

POLL_S = 0.25  # how often a blocked socket call looks at the stop flag
RUN_TIMEOUT_S = 3600.0  # bound on one request's compute (queued behind others on its worker)
_U32 = 0xFFFFFFFF


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7700
    soc: str = "desktop_edge"
    max_frame: int = 64 << 20
    workers: int = 1
    onnx: tuple = ()
    max_connections: int = 64
    max_models: int = 4
    idle_timeout: float = 300.0
    stall_timeout: float = 30.0
    queue_timeout: float = 30.0
    budget_bytes: int | None = None
    verbose: bool = False

    def check(self) -> "ServerConfig":
        if not 0 <= self.port <= 65535:
            raise ValueError(f"edge-server: --port must be in [0, 65535], got {self.port}")
        if not 1 <= self.max_frame <= _U32:
            raise ValueError(f"edge-server: the maximum frame must be 1 B .. 4 GiB, got {self.max_frame}")
        if self.workers < 1 or self.max_connections < 1:
            raise ValueError(f"edge-server: --workers and --max-connections must be >= 1, got "
                             f"{self.workers}, {self.max_connections}")
        for name in ("idle_timeout", "stall_timeout", "queue_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"edge-server: {name} must be > 0 s, got {getattr(self, name)}")
        if self.budget_bytes is not None and self.budget_bytes < self.max_frame:
            raise ValueError(f"edge-server: the memory budget ({self.budget_bytes} B) must hold one maximum "
                             f"frame ({self.max_frame} B)")
        get_profile(self.soc)
        return self


class _Stop(Exception):
    """The server is stopping."""


class _Budget:
    """Bytes of payload in flight, server-wide."""

    def __init__(self, total: int):
        self.total, self.used = int(total), 0
        self._cond = threading.Condition()

    def acquire(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.used + n > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_S))
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class _Conn:
    """A client socket read with the server's timeouts (what frames.read_* needs)."""

    def __init__(self, sock, server: "EdgeServer"):
        self.sock, self.server = sock, server
        sock.settimeout(POLL_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a reply is several small writes
        self.at_boundary = True
        self.request_id = 0

    def recv_into(self, view, nbytes: int) -> int:
        cfg = self.server.config
        since = time.monotonic()
        while True:
            if self.server.stopping:
                raise _Stop()
            try:
                k = self.sock.recv_into(view, nbytes)
            except socket.timeout:
                waited = time.monotonic() - since
                if self.at_boundary and waited > cfg.idle_timeout:
                    return 0
                if not self.at_boundary and waited > cfg.stall_timeout:
                    raise FrameError(Reason.STALLED, f"no byte for {cfg.stall_timeout:g} s inside a frame") from None
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                return 0
            if k:
                self.at_boundary = False
            return k

    def sendall(self, data) -> None:
        self.sock.settimeout(self.server.config.stall_timeout)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.settimeout(POLL_S)


class _Session:
    def __init__(self, worker):
        self.graph = None
        self.digest = None
        self.worker = worker  # the Processor this connection's requests run on


class EdgeServer:
    """See the module docstring.  ``with EdgeServer(cfg) as s:`` starts and stops it."""

    def __init__(self, config: ServerConfig | None = None):
        self.config = (config or ServerConfig()).check()
        cfg = self.config
        self.scale = get_profile(cfg.soc).scale("edge")
        self.catalog = Catalog(cfg.onnx, max_models=cfg.max_models)
        self.budget = _Budget(cfg.budget_bytes if cfg.budget_bytes is not None else 4 * cfg.max_frame)
        self.stopping = False
        self._listener = None
        self._accept_thread = None
        self._conns: dict = {}  # thread -> socket
        self._lock = threading.Lock()
        self._warm: set = set()
        self._procs: list = []
        self._next = 0  # the worker the next connection gets
        self.address = None

    # -- life cycle -------------------------------------------------------------
    def start(self) -> "EdgeServer":
        cfg = self.config
        try:
            cores = sorted(os.sched_getaffinity(0))
        except AttributeError:
            cores = [0]
        try:
            for k in range(cfg.workers):
                p = Processor(f"edge{k}", "buffer", buffer_kernels, (cores[-1 - k % len(cores)],), trace=Trace())
                self._procs.append(p)
            fam = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
            ls = socket.socket(fam, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((cfg.host, cfg.port))
            ls.listen(min(cfg.max_connections, 128))
            ls.settimeout(POLL_S)
        except BaseException:
            self._close_procs()
            raise
        self._listener = ls
        self.address = ls.getsockname()[:2]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="edge-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection (each within about POLL_S s of its
        current wait), close the workers."""
        self.stopping = True
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._conns)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._close_procs()

    def _close_procs(self) -> None:
        for p in self._procs:
            p.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self, msg: str) -> None:
        if self.config.verbose:
            print(f"coinfer edge-server: {msg}", file=sys.stderr, flush=True)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- connections --------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self.stopping:
            try:
                sock, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping:
                    return
                time.sleep(POLL_S)  # e.g. out of file descriptors: let connections end
                continue
            with self._lock:
                full = len(self._conns) >= self.config.max_connections
            if full:
                self.log(f"{peer}: refused, {self.config.max_connections} connections already")
                self._refuse(sock, 0, FrameError(Reason.BUSY, "too many connections"))
                continue
            t = threading.Thread(target=self._serve, args=(sock, peer), name=f"edge-conn-{peer[1]}", daemon=True)
            with self._lock:
                self._conns[t] = sock
            t.start()

    def _refuse(self, sock, request_id: int, err: FrameError) -> None:
        """Send an ERROR frame (best effort), then close: half-close, drain what the
        peer still sends (bounded) so the ERROR is not lost to a reset, close."""
        try:
            sock.settimeout(1.0)
            fr.write_frame(sock, Kind.ERROR, request_id, fr.text_payload(err.detail[:fr.MAX_ERROR_TEXT]),
                           (int(err.reason),))
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.2)
            buf = bytearray(65536)
            deadline = time.monotonic() + 0.5
            for _ in range(64):
                if time.monotonic() > deadline or not sock.recv_into(buf):
                    break
        except OSError:
            pass
        finally:
            sock.close()

    def _serve(self, sock, peer) -> None:
        conn = _Conn(sock, self)
        with self._lock:
            session = _Session(self._procs[self._next % len(self._procs)])
            self._next += 1
        err = None
        try:
            while True:
                conn.at_boundary = True
                h = fr.read_header(conn, self.config.max_frame)
                conn.request_id = h.request_id
                if h.kind == Kind.OPEN:
                    self._open(conn, h, session)
                elif h.kind == Kind.RUN:
                    self._run(conn, h, session)
                elif h.kind == Kind.PING:
                    self._ping(conn, h)
                else:
                    raise FrameError(Reason.UNEXPECTED, f"a client sends OPEN, RUN or PING here, not {h.kind.name}")
        except fr.Closed:
            pass
        except _Stop:
            err = FrameError(Reason.SHUTTING_DOWN, "the server is stopping")
        except FrameError as e:
            err = None if e.reason == Reason.TRUNCATED else e
            self.log(f"{peer}: {e}")
        except OSError as e:  # reset, broken pipe, send timeout: the client is gone
            self.log(f"{peer}: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - one connection's failure never takes the server down
            err = FrameError(Reason.INTERNAL, f"{type(e).__name__}: {e}")
            self.log(f"{peer}: internal error: {err}")
        finally:
            if err is not None:
                self._refuse(sock, conn.request_id, err)
            else:
                sock.close()
            with self._lock:
                self._conns.pop(threading.current_thread(), None)

    # -- requests ---------------------------------------------------------------------
    def _open(self, conn: _Conn, h, session: _Session) -> None:
        model_id = fr.payload_text(fr.read_payload(conn, h))
        try:
            graph, digest, _ = self.catalog.get(model_id)
        except UnknownModel as e:
            raise FrameError(Reason.UNKNOWN_MODEL, str(e)) from None
        except ValueError as e:
            raise FrameError(Reason.BAD_REQUEST, str(e)) from None
        if digest not in self._warm:  # first calls of the kernels in this process: not part of any request
            for e in range(n_exits(graph)):
                warm_range(session.worker, graph, exit_ops(graph, e)[0]).result(RUN_TIMEOUT_S)
            self._warm.add(digest)
        session.graph, session.digest = graph, digest
        n_ops = max(len(exit_ops(graph, e)[0]) for e in range(n_exits(graph)))
        fr.write_frame(conn, Kind.READY, h.request_id, np.frombuffer(bytes.fromhex(digest), np.uint8),
                       (n_exits(graph), n_ops, min(_U32, int(round(self.scale * 1e6)))))
        self.log(f"opened {model_id} ({graph.name}, digest {digest[:12]})")

    def _run(self, conn: _Conn, h, session: _Session) -> None:
        g = session.graph
        if g is None:
            raise FrameError(Reason.UNEXPECTED, "RUN before OPEN: open a model first")
        exit, first, end = h.args
        try:
            ops, _ = exit_ops(g, exit)
            inputs, outputs = range_io(g, exit, first, end)
        except ValueError as e:
            raise FrameError(Reason.BAD_REQUEST, str(e)) from None
        held = 0
        warm_range(session.worker, g, ops[first:end])  # while the inputs arrive (see parts.warm_range)
        try:
            env = {}
            for i, t in enumerate(inputs):
                conn.at_boundary = True
                th = fr.read_header(conn, self.config.max_frame)
                want = g.shape(t)
                if th.kind != Kind.TENSOR or th.request_id != h.request_id or th.args[0] != i:
                    raise FrameError(Reason.UNEXPECTED, f"RUN {h.request_id}: expected TENSOR {i} of the same "
                                     f"request, got {th.kind.name} {th.args[0]} of request {th.request_id}")
                if th.dtype != fr.DTYPES[10] or th.shape != want:
                    raise FrameError(Reason.BAD_REQUEST, f"input {i} ({t!r}) must be float32 {want}, got "
                                     f"{th.dtype} {th.shape}")
                if not self.budget.acquire(th.length, self.config.queue_timeout):
                    raise FrameError(Reason.BUSY, f"no memory for {th.length} B within "
                                     f"{self.config.queue_timeout:g} s")
                held += th.length
                env[t] = fr.read_payload(conn, th)
            try:
                rt = run_range(session.worker, g, ops[first:end], env, scale=self.scale, timeout=RUN_TIMEOUT_S)
            except TimeoutError:
                raise FrameError(Reason.BUSY, f"the worker did not run the request within {RUN_TIMEOUT_S:g} s") from None
            us = [min(_U32, int(round(v * 1e6))) for v in (rt.busy, rt.host, rt.queued)]
            fr.write_frame(conn, Kind.RESULT, h.request_id, None, us)
            for i, t in enumerate(outputs):
                fr.write_frame(conn, Kind.TENSOR, h.request_id, env[t], (i,))
        finally:
            if held:
                self.budget.release(held)

    def _ping(self, conn: _Conn, h) -> None:
        if h.length and not self.budget.acquire(h.length, self.config.queue_timeout):
            raise FrameError(Reason.BUSY, f"no memory for {h.length} B within {self.config.queue_timeout:g} s")
        try:
            fr.read_payload(conn, h)
        finally:
            if h.length:
                self.budget.release(h.length)
        fr.write_frame(conn, Kind.PONG, h.request_id, None, (h.length,))


# -- the command line ----------------------------------------------------------------

def add_parser(sub) -> None:
    s = sub.add_parser("edge-server", help="serve the edge part of device-edge co-inference over TCP")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    s.add_argument("--port", type=int, default=7700, help="TCP port (0: any free port; the bound one is printed)")
    s.add_argument("--soc", default="desktop_edge", help="the edge's cost profile (default desktop_edge)")
    s.add_argument("--max-frame-mb", type=float, default=64.0, help="largest payload accepted, MiB (default 64)")
    s.add_argument("--workers", type=int, default=1, help="compute workers, one pinned thread each (default 1)")
    s.add_argument("--model", action="append", default=[], metavar="FILE.onnx",
                   help="also serve this ONNX file (by its file stem or its SHA-256); repeatable")
    s.add_argument("--max-connections", type=int, default=64)
    s.add_argument("--idle-timeout", type=float, default=300.0, help="s a connection may wait between requests")
    s.add_argument("--stall-timeout", type=float, default=30.0, help="s without a byte inside a frame")
    s.add_argument("--queue-timeout", type=float, default=30.0, help="s a request may wait for a worker or memory")
    s.add_argument("--budget-mb", type=float, default=None, help="payload bytes in flight, MiB (default 4 frames)")
    s.add_argument("--verbose", action="store_true", help="log connections and refused frames on stderr")


def main(args) -> int:
    import signal

    cfg = ServerConfig(host=args.host, port=args.port, soc=args.soc, max_frame=int(args.max_frame_mb * (1 << 20)),
                       workers=args.workers, onnx=tuple(args.model), max_connections=args.max_connections,
                       idle_timeout=args.idle_timeout, stall_timeout=args.stall_timeout,
                       queue_timeout=args.queue_timeout,
                       budget_bytes=None if args.budget_mb is None else int(args.budget_mb * (1 << 20)),
                       verbose=args.verbose)
    try:
        server = EdgeServer(cfg)
    except (ValueError, ImportError) as e:
        msg = str(e)
        msg = msg[len("edge-server: "):] if msg.startswith("edge-server: ") else msg  # named once
        print(f"coinfer edge-server: {msg}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as e:
            print(f"coinfer edge-server: cannot listen on {cfg.host}:{cfg.port}: {e}", file=sys.stderr)
            return 2
        host, port = server.address
        cores = ", ".join(str(c) for p in server._procs for c in p.cores)
        print(f"coinfer edge-server: listening on {host}:{port} (soc {cfg.soc}, edge time x{server.scale:.3f} "
              f"of host, {cfg.workers} worker(s) on core(s) {cores}, max frame {cfg.max_frame} B)", flush=True)
        while not stop.wait(POLL_S):
            pass
        server.stop()
        print("coinfer edge-server: stopped", flush=True)
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
