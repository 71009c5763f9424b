"""The edge wire format: one small, versioned, length-checked binary frame.

Every message between a device (client) and an edge server is one or more
frames.  A frame is a fixed 64-byte header, then ``length`` bytes of raw
little-endian payload (a C-order array).  Nothing in a frame names a Python
object: no pickle, no ``eval``; a payload is numbers of one of the dtypes
below, or ASCII text carried as ``uint8``.

Header (little-endian, ``struct`` format ``<4sBBBBIII3I8I``)
------------------------------------------------------------

======  ====  ======  ==========================================================
offset  size  type    field
======  ====  ======  ==========================================================
0       4     bytes   magic ``b"CFEF"``
4       1     u8      version (this module speaks :data:`VERSION` = 1)
5       1     u8      message kind (:class:`Kind`)
6       1     u8      dtype code (:data:`DTYPES`; 0 = no payload)
7       1     u8      rank, 0..8
8       4     u32     request id (the client's; echoed in every reply frame)
12      4     u32     payload length in bytes
16      4     u32     CRC32 (zlib/IEEE 802.3) of the payload; 0 when empty
20      12    3 x u32 args, whose meaning depends on the kind (table below);
                      args a kind does not use must be 0
32      32    8 x u32 shape: dims ``[0, rank)`` are > 0, dims ``[rank, 8)`` are 0
======  ====  ======  ==========================================================

dtype codes: 0 none, 1 uint8, 2 int8, 3 uint16, 4 int16, 5 uint32, 6 int32,
7 uint64, 8 int64, 9 float16, 10 float32, 11 float64.

Checks, in this order, each on the 64 header bytes alone, so a frame is
refused before any of its payload is allocated or read (:func:`decode_header`
raises :class:`FrameError` with the :class:`Reason`):

1. magic (``BAD_MAGIC``), 2. version (``BAD_VERSION``), 3. kind is known
(``BAD_KIND``), 4. dtype code is known (``BAD_DTYPE``), 5. rank <= 8, and 0
for a frame without payload (``BAD_RANK``), 6. dims > 0 below the rank and 0
above it (``BAD_SHAPE``), 7. length <= the receiver's maximum frame
(``TOO_LARGE``), 8. length == product(dims) x itemsize, 0 without payload
(``BAD_LENGTH``), 9. unused args are 0 (``BAD_ARGS``), 10. the kind's payload
rule (``BAD_PAYLOAD``).  Then the payload is read into a buffer of exactly
``length`` bytes and its CRC32 checked (``BAD_CRC``).

Message kinds
-------------

==  ========  =========  ========================  ==================================================
#   kind      direction  args                      payload
==  ========  =========  ========================  ==================================================
1   OPEN      c -> s     --                        uint8 [n], 1 <= n <= 256: the model id in ASCII, a
                                                   name (zoo, branchy, served ONNX file stem) or
                                                   ``sha256:`` + 64 hex digits (a content hash)
2   READY     s -> c     exits, ops, edge scale    uint8 [32]: the model's graph digest (SHA-256,
                         (ppm)                     :func:`coinfer.graph.edge.catalog.graph_digest`);
                                                   ops = ops of the deepest exit's sub-model
3   RUN       c -> s     exit, first, end          none.  Run ops ``[first, end)`` of exit ``exit``'s
                                                   sub-model; the range's k inputs follow as k TENSOR
                                                   frames (:func:`coinfer.graph.edge.parts.range_io`)
4   RESULT    s -> c     compute us, host us,      none.  Then one TENSOR frame per output of the
                         queue us                  range.  compute: the edge's time for the range
                                                   under its profile as realised; host: the kernels'
                                                   host time; queue: waiting for a worker
5   TENSOR    both       index                     any dtype: input (RUN) or output (RESULT) number
                                                   ``index`` of the range, same request id
6   PING      c -> s     --                        none, or uint8 [n] (a throughput probe)
7   PONG      s -> c     bytes received            none
8   ERROR     s -> c     reason                    none, or uint8 [n], n <= 1024: what went wrong
==  ========  =========  ========================  ==================================================

An ERROR frame is the last frame of its connection: the server sends it
(best effort) and closes that connection, and goes on serving every other.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = ["MAGIC", "VERSION", "HEADER_SIZE", "MAX_RANK", "MAX_TEXT", "MAX_ERROR_TEXT", "DTYPES", "Kind",
           "Reason", "Header", "FrameError", "Closed", "pack_header", "encode", "decode_header", "read_header",
           "read_payload", "read_frame", "write_frame", "text_payload", "payload_text", "dtype_code"]

MAGIC = b"CFEF"
VERSION = 1
_HEADER = struct.Struct("<4sBBBBIII3I8I")
HEADER_SIZE = _HEADER.size  # 64
MAX_RANK = 8
MAX_TEXT = 256  # an OPEN's model id
MAX_ERROR_TEXT = 1024
DIGEST_BYTES = 32
_U32 = 0xFFFFFFFF


class Kind(IntEnum):
    OPEN = 1
    READY = 2
    RUN = 3
    RESULT = 4
    TENSOR = 5
    PING = 6
    PONG = 7
    ERROR = 8


# How many of the three args each kind uses; the rest must be 0.
_ARGS_USED = {Kind.OPEN: 0, Kind.READY: 3, Kind.RUN: 3, Kind.RESULT: 3, Kind.TENSOR: 1, Kind.PING: 0,
              Kind.PONG: 1, Kind.ERROR: 1}


class Reason(IntEnum):
    """Why a frame or a request was refused (an ERROR frame's first arg)."""

    BAD_MAGIC = 1
    BAD_VERSION = 2
    BAD_KIND = 3
    BAD_DTYPE = 4
    BAD_RANK = 5
    BAD_SHAPE = 6
    TOO_LARGE = 7
    BAD_LENGTH = 8
    BAD_ARGS = 9
    BAD_PAYLOAD = 10
    BAD_CRC = 11
    TRUNCATED = 12  # the peer closed in the middle of a frame
    STALLED = 13  # no byte of a started frame arrived for too long
    UNEXPECTED = 14  # a valid frame, but not one this point of the conversation allows
    UNKNOWN_MODEL = 15
    BAD_REQUEST = 16  # exit or op range out of bounds, or a tensor that is not the one the range needs
    BUSY = 17  # too many connections, or no worker / memory within the queue timeout
    INTERNAL = 18
    SHUTTING_DOWN = 19


DTYPES = {1: np.dtype("u1"), 2: np.dtype("i1"), 3: np.dtype("<u2"), 4: np.dtype("<i2"), 5: np.dtype("<u4"),
          6: np.dtype("<i4"), 7: np.dtype("<u8"), 8: np.dtype("<i8"), 9: np.dtype("<f2"), 10: np.dtype("<f4"),
          11: np.dtype("<f8")}
_CODES = {dt: code for code, dt in DTYPES.items()}


class FrameError(ValueError):
    """A frame or request refused, with its :class:`Reason`."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(f"{Reason(reason).name}: {message}")
        self.reason = Reason(reason)
        self.detail = message


class Closed(EOFError):
    """The peer closed the connection between two frames."""


@dataclass(frozen=True)
class Header:
    kind: Kind
    request_id: int
    dtype: np.dtype | None  # None: no payload
    shape: tuple
    length: int
    crc: int
    args: tuple

    @property
    def has_payload(self) -> bool:
        return self.dtype is not None


def dtype_code(dtype) -> int:
    """The wire code of a numpy dtype (any byte order); TypeError if it has none."""
    dt = np.dtype(dtype).newbyteorder("<")
    if dt not in _CODES:
        raise TypeError(f"frames: dtype {np.dtype(dtype)} cannot be sent; supported: "
                        f"{', '.join(str(d) for d in DTYPES.values())}")
    return _CODES[dt]


def pack_header(kind: int, request_id: int = 0, dtype_code: int = 0, shape=(), length: int = 0, crc: int = 0,
                args=(0, 0, 0), *, rank: int | None = None, magic: bytes = MAGIC, version: int = VERSION) -> bytes:
    """64 header bytes from raw field values, unchecked (beyond what ``struct`` can hold).

    ``shape`` is padded with zeros to 8 dims; ``rank`` defaults to ``len(shape)``.
    Tests build malformed headers with it; senders use :func:`encode`."""
    dims = list(shape) + [0] * (MAX_RANK - len(shape))
    args = list(args) + [0] * (3 - len(args))
    return _HEADER.pack(magic, version, int(kind), dtype_code, len(shape) if rank is None else rank,
                        request_id & _U32, length, crc, *args, *dims)


def _payload_array(payload) -> np.ndarray:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(payload), np.uint8)
    a = np.asarray(payload)
    code = dtype_code(a.dtype)
    return a.astype(DTYPES[code], order="C", copy=False)  # (ascontiguousarray would make a 0-d array 1-d)


def encode(kind: Kind, request_id: int = 0, payload=None, args=(0, 0, 0), *, max_frame: int | None = None):
    """``(header bytes, payload bytes view or None)`` of one frame.

    ``payload``: None, a numpy array (any supported dtype, any byte order:
    it goes little-endian) or bytes (sent as uint8 [n]).  Raises ValueError
    when an arg does not fit a u32, the rank is above 8, a dim is 0, or the
    payload is longer than ``max_frame``."""
    kind = Kind(kind)
    if len(args) > 3 or not all(isinstance(a, (int, np.integer)) and 0 <= a <= _U32 for a in args):
        raise ValueError(f"frames: {kind.name} args must be up to 3 ints in [0, 2^32), got {args!r}")
    if payload is None:
        return pack_header(kind, request_id, 0, (), 0, 0, args), None
    a = _payload_array(payload)
    if a.ndim > MAX_RANK or any(d == 0 for d in a.shape) or any(d > _U32 for d in a.shape):
        raise ValueError(f"frames: a {kind.name} payload needs rank <= {MAX_RANK} and dims in [1, 2^32), "
                         f"got shape {a.shape}")
    data = a.reshape(-1).view(np.uint8)
    if data.nbytes > _U32 or (max_frame is not None and data.nbytes > max_frame):
        raise ValueError(f"frames: a {kind.name} payload of {data.nbytes} bytes is over the maximum frame "
                         f"({max_frame if max_frame is not None else _U32} bytes)")
    crc = zlib.crc32(data)
    return pack_header(kind, request_id, dtype_code(a.dtype), a.shape, data.nbytes, crc, args), memoryview(data)


def text_payload(text: str) -> np.ndarray:
    """ASCII text as a uint8 payload."""
    return np.frombuffer(text.encode("ascii", errors="replace"), np.uint8)


def payload_text(payload) -> str:
    """A uint8 payload back to text (non-ASCII bytes become U+FFFD)."""
    if payload is None:
        return ""
    return bytes(np.asarray(payload, np.uint8)).decode("ascii", errors="replace")


def _payload_rule(kind: Kind, dtype, shape) -> str | None:
    """Why a payload is not allowed for ``kind``, or None."""
    text = dtype is not None and dtype == DTYPES[1] and len(shape) == 1
    if kind == Kind.OPEN and not (text and shape[0] <= MAX_TEXT):
        return f"an OPEN carries the model id as uint8 [1..{MAX_TEXT}]"
    if kind == Kind.READY and not (text and shape[0] == DIGEST_BYTES):
        return f"a READY carries the digest as uint8 [{DIGEST_BYTES}]"
    if kind in (Kind.RUN, Kind.RESULT, Kind.PONG) and dtype is not None:
        return f"a {kind.name} has no payload"
    if kind == Kind.TENSOR and dtype is None:
        return "a TENSOR needs a payload"
    if kind == Kind.PING and dtype is not None and not text:
        return "a PING carries no payload or uint8 [n]"
    if kind == Kind.ERROR and dtype is not None and not (text and shape[0] <= MAX_ERROR_TEXT):
        return f"an ERROR carries no payload or uint8 [1..{MAX_ERROR_TEXT}]"
    return None


def decode_header(buf, max_frame: int) -> Header:
    """Check 64 header bytes against every rule (module docstring) and return the
    :class:`Header`; raises :class:`FrameError`.  Reads nothing else."""
    if len(buf) != HEADER_SIZE:
        raise FrameError(Reason.TRUNCATED, f"a header is {HEADER_SIZE} bytes, got {len(buf)}")
    magic, version, kind, code, rank, rid, length, crc, a0, a1, a2, *dims = _HEADER.unpack(buf)
    if magic != MAGIC:
        raise FrameError(Reason.BAD_MAGIC, f"magic must be {MAGIC!r}, got {magic!r}")
    if version != VERSION:
        raise FrameError(Reason.BAD_VERSION, f"version must be {VERSION}, got {version}")
    if kind not in Kind._value2member_map_:
        raise FrameError(Reason.BAD_KIND, f"unknown message kind {kind}")
    kind = Kind(kind)
    if code != 0 and code not in DTYPES:
        raise FrameError(Reason.BAD_DTYPE, f"unknown dtype code {code}")
    if rank > MAX_RANK or (code == 0 and rank != 0):
        raise FrameError(Reason.BAD_RANK, f"rank must be <= {MAX_RANK} (0 without payload), got {rank} "
                         f"with dtype code {code}")
    if any(d == 0 for d in dims[:rank]) or any(d != 0 for d in dims[rank:]):
        raise FrameError(Reason.BAD_SHAPE, f"dims below the rank must be > 0 and above it 0, got rank {rank}, "
                         f"dims {dims}")
    if length > max_frame:
        raise FrameError(Reason.TOO_LARGE, f"payload of {length} bytes is over the maximum frame of {max_frame}")
    dtype = DTYPES.get(code)
    want = 0 if dtype is None else int(np.prod(dims[:rank], dtype=object)) * dtype.itemsize
    if length != want:
        raise FrameError(Reason.BAD_LENGTH, f"length must be {want} bytes for dtype code {code} and shape "
                         f"{tuple(dims[:rank])}, got {length}")
    args = (a0, a1, a2)
    if any(args[_ARGS_USED[kind]:]):
        raise FrameError(Reason.BAD_ARGS, f"a {kind.name} uses {_ARGS_USED[kind]} args; the others must be 0, "
                         f"got {args}")
    shape = tuple(dims[:rank])
    why = _payload_rule(kind, dtype, shape)
    if why is not None:
        raise FrameError(Reason.BAD_PAYLOAD, f"{why}, got dtype code {code} shape {shape}")
    if dtype is None and crc != 0:
        raise FrameError(Reason.BAD_CRC, f"a frame without payload has CRC 0, got {crc:#010x}")
    return Header(kind, rid, dtype, shape, length, crc, args)


def _read_into(stream, view: memoryview) -> int:
    """Fill ``view`` from ``stream.recv_into``; the count read (short only at end of stream)."""
    got = 0
    n = len(view)
    while got < n:
        k = stream.recv_into(view[got:], n - got)
        if k == 0:
            break
        got += k
    return got


def read_header(stream, max_frame: int) -> Header:
    """Read and check one header.  Raises :class:`Closed` if the stream ends before its
    first byte, :class:`FrameError` (``TRUNCATED``) if it ends inside it."""
    buf = bytearray(HEADER_SIZE)
    got = _read_into(stream, memoryview(buf))
    if got == 0:
        raise Closed("connection closed")
    if got < HEADER_SIZE:
        raise FrameError(Reason.TRUNCATED, f"the stream ended after {got} of {HEADER_SIZE} header bytes")
    return decode_header(bytes(buf), max_frame)


def read_payload(stream, header: Header) -> np.ndarray | None:
    """Read ``header``'s payload into a new array of exactly its length and check its CRC."""
    if header.dtype is None:
        return None
    out = np.empty(header.shape, header.dtype)
    got = _read_into(stream, memoryview(out.reshape(-1).view(np.uint8)))
    if got < header.length:
        raise FrameError(Reason.TRUNCATED, f"the stream ended after {got} of {header.length} payload bytes")
    crc = zlib.crc32(out.reshape(-1).view(np.uint8))
    if crc != header.crc:
        raise FrameError(Reason.BAD_CRC, f"payload CRC32 is {crc:#010x}, the header says {header.crc:#010x}")
    return out


def read_frame(stream, max_frame: int, check=None):
    """One frame: ``(Header, payload array or None)``.  ``check(header)`` runs after the
    header's own checks and before the payload is allocated (raise FrameError to refuse)."""
    h = read_header(stream, max_frame)
    if check is not None:
        check(h)
    return h, read_payload(stream, h)


def write_frame(stream, kind: Kind, request_id: int = 0, payload=None, args=(0, 0, 0), *,
                max_frame: int | None = None) -> int:
    """Send one frame with ``stream.sendall``; returns the bytes sent."""
    head, data = encode(kind, request_id, payload, args, max_frame=max_frame)
    stream.sendall(head)
    if data is not None:
        stream.sendall(data)
        return HEADER_SIZE + len(data)
    return HEADER_SIZE
