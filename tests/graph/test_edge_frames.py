"""The edge wire format: round trips, and each header rule refusing a frame before its payload is read."""
import io
import socket
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer.graph.edge import frames as fr
from coinfer.graph.edge.frames import FrameError, Kind, Reason

MAX = 1 << 20


class Stream:
    """An in-memory stream with recv_into/sendall that counts what was asked of it."""

    def __init__(self, data=b""):
        self.buf = io.BytesIO(bytes(data))
        self.out = bytearray()
        self.asked = 0

    def recv_into(self, view, n):
        self.asked += n
        chunk = self.buf.read(min(n, 7919))  # short reads, as a socket gives
        view[:len(chunk)] = chunk
        return len(chunk)

    def sendall(self, data):
        self.out += bytes(data)


def frame(kind=Kind.TENSOR, rid=7, payload=None, args=(0, 0, 0)):
    head, data = fr.encode(kind, rid, payload, args)
    return head + (bytes(data) if data is not None else b"")


@given(code=st.sampled_from(sorted(fr.DTYPES)), shape=st.lists(st.integers(1, 3), min_size=0, max_size=8),
       rid=st.integers(0, 2**32 - 1), index=st.integers(0, 2**32 - 1), seed=st.integers(0, 2**16))
def test_tensor_frames_round_trip(code, shape, rid, index, seed):
    dt = fr.DTYPES[code]
    raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * dt.itemsize, dtype=np.uint8)
    x = raw.view(dt).reshape(shape)  # any bit pattern, NaNs included
    s = Stream()
    n = fr.write_frame(s, Kind.TENSOR, rid, x, (index,))
    assert n == len(s.out) == fr.HEADER_SIZE + x.nbytes
    h, y = fr.read_frame(Stream(s.out), MAX)
    assert (h.kind, h.request_id, h.args, h.shape, h.dtype) == (Kind.TENSOR, rid, (index, 0, 0), tuple(shape), dt)
    assert y.tobytes() == x.tobytes() and y.shape == x.shape


@pytest.mark.parametrize("dtype", [">f4", ">i8", "<f8", "u1"])
def test_payload_goes_little_endian(dtype):
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    h, y = fr.read_frame(Stream(frame(payload=x)), MAX)
    assert y.dtype.byteorder in "<|=" and np.array_equal(y, x)
    assert bytes(frame(payload=x))[fr.HEADER_SIZE:] == x.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


def test_control_frames_and_text():
    for kind, args in ((Kind.RUN, (1, 2, 3)), (Kind.RESULT, (4, 5, 6)), (Kind.PONG, (9,)), (Kind.PING, ())):
        h, y = fr.read_frame(Stream(frame(kind, 3, None, args)), MAX)
        assert y is None and h.kind == kind and h.args[:len(args)] == tuple(args) and h.length == 0
    h, y = fr.read_frame(Stream(frame(Kind.OPEN, 1, fr.text_payload("branchy_lenet"))), MAX)
    assert fr.payload_text(y) == "branchy_lenet"


def test_sender_refuses_what_it_may_not_send():
    with pytest.raises(TypeError, match="complex"):
        fr.encode(Kind.TENSOR, 0, np.zeros(2, np.complex64))
    with pytest.raises(ValueError, match="rank"):
        fr.encode(Kind.TENSOR, 0, np.zeros((1,) * 9, np.float32))
    with pytest.raises(ValueError, match="dims"):
        fr.encode(Kind.TENSOR, 0, np.zeros((2, 0), np.float32))
    with pytest.raises(ValueError, match="maximum frame"):
        fr.encode(Kind.TENSOR, 0, np.zeros(100, np.float32), max_frame=399)
    with pytest.raises(ValueError, match="args"):
        fr.encode(Kind.RUN, 0, None, (-1,))


# -- each header rule, on its own --------------------------------------------------------

def good(**kw):
    """Fields of a valid TENSOR header for a float32 (2, 3) payload, overridden by ``kw``."""
    f = dict(kind=Kind.TENSOR, request_id=1, dtype_code=10, shape=(2, 3), length=24, crc=0, args=(0, 0, 0))
    f.update(kw)
    return f


def refused(reason, payload=b"", **kw):
    head = fr.pack_header(**good(**kw))
    s = Stream(head + payload)
    with pytest.raises(FrameError) as e:
        fr.read_frame(s, MAX)
    assert e.value.reason == reason, e.value
    return s


def test_rule_magic():
    refused(Reason.BAD_MAGIC, magic=b"CFEG")


def test_rule_version():
    refused(Reason.BAD_VERSION, version=2)


@pytest.mark.parametrize("kind", [0, 9, 255])
def test_rule_kind(kind):
    refused(Reason.BAD_KIND, kind=kind)


@pytest.mark.parametrize("code", [12, 200])
def test_rule_dtype(code):
    refused(Reason.BAD_DTYPE, dtype_code=code)


def test_rule_rank_at_most_8():
    refused(Reason.BAD_RANK, rank=9)


def test_rule_rank_zero_without_payload():
    refused(Reason.BAD_RANK, kind=Kind.RUN, dtype_code=0, shape=(2,), length=0)


def test_rule_dims_positive():
    refused(Reason.BAD_SHAPE, shape=(2, 0), length=0)


def test_rule_dims_zero_above_rank():
    refused(Reason.BAD_SHAPE, shape=(2, 3, 5), rank=2)


def test_rule_length_at_most_max_frame_before_any_payload_read():
    s = refused(Reason.TOO_LARGE, shape=(65535, 65535, 4), length=0xFFFFFFF0)
    assert s.asked == fr.HEADER_SIZE  # refused on the header alone


def test_rule_length_matches_shape_times_itemsize():
    s = refused(Reason.BAD_LENGTH, shape=(0xFFFFFFFF,) * 8, length=24)  # 2^256 elements: no overflow, no alloc
    assert s.asked == fr.HEADER_SIZE
    refused(Reason.BAD_LENGTH, length=23)
    refused(Reason.BAD_LENGTH, kind=Kind.RUN, dtype_code=0, shape=(), length=4)


def test_rule_unused_args_are_zero():
    refused(Reason.BAD_ARGS, args=(0, 1, 0))
    refused(Reason.BAD_ARGS, kind=Kind.OPEN, dtype_code=1, shape=(3,), length=3, args=(1, 0, 0))


def test_rule_payload_allowed_for_the_kind():
    refused(Reason.BAD_PAYLOAD, kind=Kind.OPEN)  # a model id is uint8 text, not float32
    refused(Reason.BAD_PAYLOAD, kind=Kind.OPEN, dtype_code=1, shape=(fr.MAX_TEXT + 1,), length=fr.MAX_TEXT + 1)
    refused(Reason.BAD_PAYLOAD, kind=Kind.RUN)
    refused(Reason.BAD_PAYLOAD, kind=Kind.TENSOR, dtype_code=0, shape=(), length=0)


def test_rule_crc():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = x.tobytes()
    refused(Reason.BAD_CRC, payload=data, crc=zlib.crc32(data) ^ 1)
    refused(Reason.BAD_CRC, kind=Kind.RUN, dtype_code=0, shape=(), length=0, crc=5)
    good_frame = fr.pack_header(**good(crc=zlib.crc32(data))) + data
    assert fr.read_frame(Stream(good_frame), MAX)[1].tolist() == x.tolist()


def test_truncated_header_and_payload():
    whole = frame(payload=np.ones((2, 3), np.float32))
    with pytest.raises(fr.Closed):
        fr.read_frame(Stream(b""), MAX)
    for cut in (1, 63, 64, len(whole) - 1):
        with pytest.raises(FrameError) as e:
            fr.read_frame(Stream(whole[:cut]), MAX)
        assert e.value.reason == Reason.TRUNCATED


def test_check_runs_before_the_payload_is_read():
    s = Stream(frame(payload=np.ones((100, 100), np.float32)))

    def check(h):
        raise FrameError(Reason.UNEXPECTED, "no")

    with pytest.raises(FrameError):
        fr.read_frame(s, MAX, check)
    assert s.asked == fr.HEADER_SIZE


def test_header_layout_is_the_documented_one():
    head = fr.pack_header(Kind.RESULT, 0x01020304, 0, (), 0, 0, (5, 6, 7))
    assert len(head) == 64 and head[:4] == b"CFEF" and head[4] == 1 and head[5] == Kind.RESULT
    assert struct.unpack_from("<I", head, 8)[0] == 0x01020304 and struct.unpack_from("<3I", head, 20) == (5, 6, 7)


def test_frames_over_a_socket_pair():
    a, b = socket.socketpair()
    with a, b:
        x = np.random.default_rng(0).standard_normal((1, 8, 5, 5)).astype(np.float32)
        fr.write_frame(a, Kind.TENSOR, 11, x, (2,))
        h, y = fr.read_frame(b, MAX)
        assert h.request_id == 11 and np.array_equal(x, y)


def test_the_format_module_names_no_python_object_loader():
    import inspect

    src = inspect.getsource(fr)
    for word in ("import pickle", "eval(", "exec(", "allow_pickle=True", "marshal"):
        assert word not in src
