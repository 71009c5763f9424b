"""Rate shaping on a fake clock, op ranges against Edgent's cut crossings, the catalog and its digest."""
import socket

import numpy as np
import pytest

from coinfer.graph import zoo
from coinfer.graph.edge import catalog
from coinfer.graph.edge.parts import edge_range, exit_ops, n_exits, range_io
from coinfer.graph.edge.shaping import ShapedSocket, TokenBucket, chunk_bytes
from coinfer.graph.edgent.cut import placement
from coinfer.graph.edgent.models import branchy_alexnet, branchy_lenet
from coinfer.hw import BandwidthTrace, Link


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def sleep(self, d):
        self.t += d if d > 0 else 1e-6


def bucket(link, clock, **kw):
    return TokenBucket(link, clock=clock, sleep=clock.sleep, origin=clock.t, **kw)


@pytest.mark.parametrize("nbytes", [1, 1000, 12288, 100_000])
def test_n_bytes_take_8n_over_bandwidth(nbytes):
    c = Clock()
    b = bucket(Link(500e3), c)
    t0 = c.t
    step = chunk_bytes(500e3)
    b.begin()
    for i in range(0, nbytes, step):
        b.wait(min(step, nbytes - i))
    assert c.t - t0 == pytest.approx(8 * nbytes / 500e3, abs=2e-6)


def test_rtt_half_per_tensor_and_idle_link_restarts():
    c = Clock()
    b = bucket(Link(1e6, rtt_s=0.02), c)
    t0 = c.t
    b.begin()
    b.propagate()
    b.wait(1000)
    b.end()
    assert c.t - t0 == pytest.approx(0.01 + 0.008, abs=2e-6)
    c.t += 5.0  # idle: the next message starts from now
    t1 = c.t
    b.begin()
    b.wait(125)
    assert c.t - t1 == pytest.approx(0.001, abs=2e-6)


def test_a_late_sender_does_not_stretch_a_message():
    c = Clock()
    b = bucket(Link(1e6), c)
    t0 = c.t
    b.begin()
    b.wait(1000)
    c.t += 0.003  # the sender woke up 3 ms late
    b.wait(1000)  # goes at once: the link was busy, the message keeps its ideal end
    b.wait(1000)
    assert c.t - t0 == pytest.approx(0.024, abs=2e-6)
    b.end()
    c.t += 0.003
    t1 = c.t
    b.wait(1000)  # outside a message a gap is idle time
    assert c.t - t1 == pytest.approx(0.008, abs=2e-6)


def test_trace_driven_bucket_integrates_the_trace():
    tr = BandwidthTrace([0, 1, 2], [1.0, 0.0, 2.0])  # 1 Mbit/s, a second of nothing, then 2 Mbit/s
    c = Clock()
    b = bucket(Link(trace=tr), c, at=0.5)
    t0 = c.t
    b.wait(125_000)  # 1 Mbit: 0.5 s at 1 Mbit/s, 1 s stalled, 0.25 s at 2 Mbit/s
    assert c.t - t0 == pytest.approx(tr.transfer_time(0.5, 1e6), abs=2e-6)
    assert tr.transfer_time(0.5, 1e6) == pytest.approx(1.75)
    fast = bucket(Link(trace=tr), c, speedup=4.0)  # the trace's states come 4x sooner
    t1 = c.t
    fast.wait(125_000)
    assert c.t - t1 == pytest.approx(tr.transfer_time(0.0, 4e6) / 4, abs=2e-6)


def test_shaped_socket_paces_both_directions():
    c = Clock()
    a, b = socket.socketpair()
    with a, b:
        up = ShapedSocket(a, up=bucket(Link(800e3), c))
        down = ShapedSocket(b, down=bucket(Link(400e3), c))
        data = bytes(range(256)) * 40
        t0 = c.t
        up.up.begin()
        up.sendall(data)
        assert c.t - t0 == pytest.approx(8 * len(data) / 800e3, abs=2e-6)
        got = bytearray(len(data))
        view = memoryview(got)
        t1, n = c.t, 0
        down.down.begin()
        while n < len(data):
            n += down.recv_into(view[n:], len(data) - n)
        assert bytes(got) == data and c.t - t1 == pytest.approx(8 * len(data) / 400e3, abs=2e-6)
        assert up.sent == down.received == len(data)


# -- op ranges ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [branchy_lenet, branchy_alexnet])
def test_range_io_are_the_cut_crossings(make):
    g = make(trained=False)
    for e in range(n_exits(g)):
        ops, out = exit_ops(g, e)
        for d in ("edge-first", "device-first"):
            for p in range(len(ops) + 1):
                first, end = edge_range(len(ops), p, d)
                pl = placement(g, e, p, d)
                if first == end:
                    assert not pl.crossings
                    continue
                ins, outs = range_io(g, e, first, end)
                assert [c.tensor for c in pl.crossings if c.dst == "edge"] == ins
                assert [c.tensor for c in pl.crossings if c.dst == "device"] == outs


def test_range_io_of_a_plain_model_with_branches():
    g = zoo.build("squeezenet", input_size=64, weights=False)
    ops, out = exit_ops(g, 0)
    assert n_exits(g) == 1 and out == g.outputs[0] and len(ops) == len(g.ops)
    widest = max(len(range_io(g, 0, 0, p)[1]) for p in range(1, len(ops) + 1))
    assert widest >= 2  # a cut inside a fire module hands back both of its branches
    with pytest.raises(ValueError, match="op range"):
        range_io(g, 0, 3, 3)
    with pytest.raises(ValueError, match="exit"):
        exit_ops(g, 1)


# -- catalog ---------------------------------------------------------------------------------

def test_digest_is_of_content_not_name():
    a, b = branchy_lenet(), branchy_lenet()
    assert catalog.graph_digest(a) == catalog.graph_digest(b)
    b.name = "renamed"
    assert catalog.graph_digest(a) == catalog.graph_digest(b)
    c = branchy_lenet(trained=False)
    assert catalog.graph_digest(c) != catalog.graph_digest(a)
    w = next(op for op in c.ops if op.params)
    d = branchy_lenet(trained=False)
    next(op for op in d.ops if op.params).params["w"].flat[0] += 1.0
    assert catalog.graph_digest(d) != catalog.graph_digest(c) and w.name


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "sha256:" + "0" * 63, "sha256:" + "G" * 64, "../etc"])
def test_model_ids_are_checked(bad):
    with pytest.raises(ValueError, match="model id"):
        catalog.check_model_id(bad)
    with pytest.raises(catalog.UnknownModel):
        catalog.Catalog().resolve("..")


def test_catalog_knows_zoo_branchy_and_hash_after_load():
    cat = catalog.Catalog(max_models=1)
    g, d, first = cat.get("branchy_lenet")
    assert first and cat.get("sha256:" + d)[1] == d and not cat.get("branchy_lenet")[2]
    with pytest.raises(catalog.UnknownModel):
        cat.get("sha256:" + "0" * 64)
    assert "alexnet" in cat.names and "branchy_alexnet" in cat.names
