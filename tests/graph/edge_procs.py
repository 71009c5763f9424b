"""Test helpers for the edge server: a server subprocess on 127.0.0.1 port 0, its /proc figures, and a fuzzer."""
from __future__ import annotations

import socket
import time
import zlib

import numpy as np

from coinfer.graph.edge import frames as fr
from coinfer.graph.edge.frames import Kind
from coinfer.graph.studies.edge import ServerProcess


class ServerProc(ServerProcess):
    """The edge server subprocess, with its /proc figures."""

    def status(self) -> dict:
        """Threads and VmRSS (kB) from /proc."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Threads", "VmRSS"):
                    out[k] = int(v.split()[0])
        return out

    def settle_threads(self, at_most: int, timeout: float = 10.0) -> int:
        """Wait (bounded) until the server has at most ``at_most`` threads; the last count."""
        deadline = time.monotonic() + timeout
        n = self.status()["Threads"]
        while n > at_most and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.status()["Threads"]
        return n


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Connect, send ``data``, half-close, read until the server closes.  (reply bytes,
    whether our read timed out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server refused early and reset: fine
            pass
        got = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                k = s.recv(65536)
            except socket.timeout:
                return bytes(got), True
            except OSError:
                break
            if not k:
                break
            got += k
        else:
            return bytes(got), True
        return bytes(got), False


def first_reply(data: bytes):
    """The first frame of a reply: (Header, payload) or None."""
    if len(data) < fr.HEADER_SIZE:
        return None
    h = fr.decode_header(data[:fr.HEADER_SIZE], 1 << 30)
    p = data[fr.HEADER_SIZE:fr.HEADER_SIZE + h.length]
    return h, (np.frombuffer(p, h.dtype).reshape(h.shape) if h.dtype is not None else None)


def _frame(kind, rid=1, payload=None, args=(0, 0, 0)) -> bytes:
    head, data = fr.encode(kind, rid, payload, args)
    return head + (bytes(data) if data is not None else b"")


def valid_frames(rng) -> list:
    """Valid conversations (bytes) the mutations start from."""
    x = rng.standard_normal((1, 1, 28, 28)).astype(np.float32)
    op = _frame(Kind.OPEN, 1, fr.text_payload("branchy_lenet"))
    return [op, _frame(Kind.PING, 2, np.zeros(rng.integers(1, 300), np.uint8)), _frame(Kind.PING, 3),
            op + _frame(Kind.RUN, 4, None, (2, 0, 9)) + _frame(Kind.TENSOR, 4, x, (0,)),
            op + _frame(Kind.RUN, 5, None, (0, 0, 2)) + _frame(Kind.TENSOR, 5, x, (0,)),
            _frame(Kind.OPEN, 6, fr.text_payload("alexnet_nope")), _frame(Kind.RUN, 7, None, (0, 0, 1))]


_EDGES = [0, 1, 2, 7, 8, 9, 255, 256, 65535, 2**31, 2**32 - 1]


def fuzz_cases(n: int, seed: int = 0):
    """``n`` byte strings: random bytes, header fields at their edges, and valid
    conversations with flipped, replaced, cut or added bytes."""
    rng = np.random.default_rng(seed)
    base = valid_frames(rng)
    for i in range(n):
        k = i % 5
        if k == 0:
            yield rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        elif k == 1:  # a header with fields drawn from their edges, then a short random body
            rank = int(rng.choice([0, 1, 2, 4, 8, 9, 255]))
            dims = [int(rng.choice(_EDGES)) for _ in range(min(rank, 8))]
            body = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
            head = fr.pack_header(int(rng.integers(0, 10)), int(rng.integers(0, 2**32)), int(rng.integers(0, 13)),
                                  dims, int(rng.choice(_EDGES + [len(body)])), zlib.crc32(body) if rng.random() < 0.5
                                  else int(rng.integers(0, 2**32)), [int(rng.choice(_EDGES)) for _ in range(3)],
                                  rank=rank, version=1 if rng.random() < 0.9 else int(rng.integers(0, 256)))
            yield head + body
        else:
            b = bytearray(base[int(rng.integers(len(base)))])
            if k == 2:  # flip bits
                for _ in range(int(rng.integers(1, 5))):
                    j = int(rng.integers(len(b)))
                    b[j] ^= 1 << int(rng.integers(8))
            elif k == 3:  # cut
                b = b[:int(rng.integers(0, len(b)))]
            else:  # replace a header byte and add garbage
                j = int(rng.integers(min(len(b), fr.HEADER_SIZE)))
                b[j] = int(rng.integers(256))
                b += rng.integers(0, 256, int(rng.integers(0, 100)), dtype=np.uint8).tobytes()
            yield bytes(b)


def run_fuzz(port: int, n: int, seed: int = 0) -> dict:
    """Send ``n`` fuzz cases, each on its own connection; count what came back."""
    stats = {"cases": 0, "errors": 0, "replies": 0, "timeouts": 0, "refused": 0}
    for data in fuzz_cases(n, seed):
        try:
            got, timed_out = exchange(port, data)
        except ConnectionRefusedError:
            stats["refused"] += 1
            continue
        stats["cases"] += 1
        stats["timeouts"] += timed_out
        r = first_reply(got)
        if r is not None:
            stats["errors" if r[0].kind == Kind.ERROR else "replies"] += 1
    return stats
