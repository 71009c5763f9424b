"""The edge server as a subprocess on 127.0.0.1: co-inference equals the local run, bad frames are
refused one connection at a time, a fuzz, dead or stalled servers, dying clients, 8 clients at once."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from coinfer.graph import interpret
from coinfer.graph.edge import frames as fr
from coinfer.graph.edge.catalog import graph_digest, load
from coinfer.graph.edge.client import EdgeClient, EdgeError, RemoteRunner
from coinfer.graph.edge.frames import Kind, Reason
from coinfer.graph.edge.parts import exit_ops, range_io
from coinfer.graph.edgent.models import branchy_lenet
from coinfer.hw import Link, Processor, Trace
from coinfer.kernels import buffer
from tests.graph.edge_procs import ServerProc, exchange, first_reply, run_fuzz
from tests.tolerance import assert_close

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; signals")

LENET = branchy_lenet()
MAX_MB = 4
FUZZ_CI, FUZZ_LONG = 2_000, 20_000
RSS_BOUND_KB = 40 * 1024  # growth allowed after a fuzz or a stream of max-size frames
THREAD_SLACK = 1  # threads allowed above the warm baseline once connections have closed


def tiny_onnx(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    fcw = numpy_helper.from_array(rng.standard_normal((5, 4 * 6 * 6)).astype(np.float32), "fcw")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "fcw"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, fcw])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("edge") / "tiny_net.onnx")


@pytest.fixture(scope="module")
def server(onnx_file):
    s = ServerProc("--workers", 2, "--max-frame-mb", MAX_MB, "--model", onnx_file, "--stall-timeout", 5)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def device():
    p = Processor("device", "buffer", buffer, (0,), trace=Trace())
    yield p
    p.close()


def local(graph, x, exit):
    """The local single-process answer of an exit: its ops in order, buffer kernels."""
    ops, out = exit_ops(graph, exit)
    env = {graph.inputs[0]: x}
    for n in ops:
        op = graph.op(n)
        env[op.output] = interpret.run_op(graph, op, [env[t] for t in op.inputs], buffer)
    return env


def x_for(graph, seed=0):
    return np.random.default_rng(seed).standard_normal(graph.shape(graph.inputs[0]), dtype=np.float32)


def warm_baseline(s):
    """A valid request, then the server's thread and RSS figures at rest."""
    with EdgeClient("127.0.0.1", s.port) as c:
        c.open("branchy_lenet")
        c.run(2, 0, 9, [x_for(LENET)], [(1, 10)])
        c.ping(1000)
    time.sleep(0.3)
    return s.status()


def still_serves(s, seed=1):
    x = x_for(LENET, seed)
    with EdgeClient("127.0.0.1", s.port, timeout=10) as c:
        c.open("branchy_lenet", graph_digest(LENET))
        r = c.run(2, 0, 9, [x], [(1, 10)])
    assert_close(r.outputs[0], local(LENET, x, 2)[exit_ops(LENET, 2)[1]])


# -- co-inference equals the local run ----------------------------------------------------------

def test_binds_loopback_and_prints_the_port(server):
    assert server.host == "127.0.0.1" and server.port > 0 and "desktop_edge" in server.banner


@pytest.mark.parametrize("plan", [(2, 0, "edge-first"), (2, 3, "edge-first"), (2, 3, "device-first"),
                                  (1, 2, "device-first"), (0, 4, "edge-first"), (2, 9, "edge-first"),
                                  (2, 9, "device-first"), (2, 8, "device-first")])
def test_split_lenet_equals_the_local_run(server, device, plan):
    c = EdgeClient("127.0.0.1", server.port, timeout=10)
    r = RemoteRunner(LENET, device, 1.0, c)
    try:
        x = x_for(LENET, 5)
        got = r.run(x, plan)
    finally:
        r.close()
    assert got.fallback is None and got.plan == plan
    want = local(LENET, x, plan[0])[exit_ops(LENET, plan[0])[1]]
    assert_close(got.output, want)
    assert np.array_equal(got.output, want)  # same kernels, same order: bit for bit


def test_plain_zoo_model_with_several_tensors_crossing(server, device):
    g = load("squeezenet")
    ops, out = exit_ops(g, 0)
    cut = next(p for p in range(1, len(ops)) if len(range_io(g, 0, 0, p)[1]) >= 2)
    x = x_for(g, 2)
    c = EdgeClient("127.0.0.1", server.port, timeout=60)
    r = RemoteRunner(g, device, 1.0, c, model_id="squeezenet")
    try:
        for plan in ((0, cut, "edge-first"), (0, cut, "device-first")):
            got = r.run(x, plan)
            assert got.fallback is None
            assert_close(got.output, local(g, x, 0)[out])
    finally:
        r.close()


def test_onnx_file_by_name_and_by_content_hash(server, device, onnx_file):
    import hashlib

    g = load(onnx_file)
    file_hash = hashlib.sha256(open(onnx_file, "rb").read()).hexdigest()
    x = x_for(g, 4)
    want = local(g, x, 0)[exit_ops(g, 0)[1]]
    for model_id in ("tiny_net", "sha256:" + file_hash, "sha256:" + graph_digest(g)):
        c = EdgeClient("127.0.0.1", server.port)
        r = RemoteRunner(g, device, 1.0, c, model_id=model_id)
        try:
            got = r.run(x, (0, 2, "device-first"))
        finally:
            r.close()
        assert got.fallback is None and np.array_equal(got.output, want)


def test_a_client_with_other_weights_is_told(server):
    with EdgeClient("127.0.0.1", server.port) as c, pytest.raises(EdgeError, match="differ"):
        c.open("branchy_lenet", graph_digest(branchy_lenet(trained=False)))


def test_throughput_is_shaped_and_measured(server):
    with EdgeClient("127.0.0.1", server.port) as c:
        c.open("branchy_lenet")
        c.shape(Link(2e6, rtt_s=0.004))
        r = c.run(2, 0, 9, [x_for(LENET)], [(1, 10)])
        # The shaper never lets bytes go faster than the link; a loaded host only makes them slower,
        # so the bound holds whatever else runs (the rate itself is checked on a fake clock in
        # test_edge_shaping.py).
        assert r.samples and all(0 < s < 2.2e6 for s in r.samples)
        assert 0 < c.ping(5000) < 2.2e6


# -- refusals: an ERROR frame with its reason, that connection closed, the rest served ------------

def _f(kind, rid=9, payload=None, args=(0, 0, 0)):
    head, data = fr.encode(kind, rid, payload, args)
    return head + (bytes(data) if data is not None else b"")


BAD = {
    "magic": (fr.pack_header(Kind.PING, magic=b"XXXX"), Reason.BAD_MAGIC),
    "too_large": (fr.pack_header(Kind.PING, 1, 1, (MAX_MB << 20 | 1,), MAX_MB << 20 | 1), Reason.TOO_LARGE),
    "crc": (fr.pack_header(Kind.PING, 1, 1, (4,), 4, 123) + b"abcd", Reason.BAD_CRC),
    "unknown_model": (_f(Kind.OPEN, 3, fr.text_payload("no_such_model")), Reason.UNKNOWN_MODEL),
    "run_before_open": (_f(Kind.RUN, 4, None, (0, 0, 1)), Reason.UNEXPECTED),
    "server_kind": (_f(Kind.RESULT, 5), Reason.UNEXPECTED),
    "exit_out_of_range": (_f(Kind.OPEN, 6, fr.text_payload("branchy_lenet")) + _f(Kind.RUN, 6, None, (3, 0, 1)),
                          Reason.BAD_REQUEST),
    "wrong_shape": (_f(Kind.OPEN, 7, fr.text_payload("branchy_lenet")) + _f(Kind.RUN, 7, None, (2, 0, 9))
                    + _f(Kind.TENSOR, 7, np.zeros((1, 1, 28, 27), np.float32), (0,)), Reason.BAD_REQUEST),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_frame_gets_an_error_frame_and_only_its_connection_closes(server, case):
    data, reason = BAD[case]
    with EdgeClient("127.0.0.1", server.port) as bystander:  # another client, mid-session
        bystander.open("branchy_lenet")
        got, timed_out = exchange(server.port, data)
        assert not timed_out
        frames = []
        while got:
            h = fr.decode_header(got[:fr.HEADER_SIZE], 1 << 30)
            frames.append(h)
            got = got[fr.HEADER_SIZE + h.length:]
        assert frames[-1].kind == Kind.ERROR and frames[-1].args[0] == reason  # the last frame, then closed
        assert bystander.ping(10) >= 0  # the other connection is unaffected


# -- fuzz ------------------------------------------------------------------------------------------

def _fuzz(server, n, seed):
    base = warm_baseline(server)
    stats = run_fuzz(server.port, n, seed)
    assert stats["cases"] == n and stats["timeouts"] == 0 and stats["refused"] == 0, stats
    assert stats["errors"] > n // 2, stats  # most cases are refused with a reason
    still_serves(server)
    threads = server.settle_threads(base["Threads"] + THREAD_SLACK)
    rss = server.status()["VmRSS"]
    assert threads <= base["Threads"] + THREAD_SLACK, (threads, base)
    assert rss - base["VmRSS"] < RSS_BOUND_KB, (rss, base)
    return stats


def test_fuzz(server):
    _fuzz(server, FUZZ_CI, seed=0)


@pytest.mark.long
def test_fuzz_long(server):
    _fuzz(server, FUZZ_LONG, seed=1)


def test_memory_stays_bounded_under_maximum_size_frames(server):
    base = warm_baseline(server)
    n = MAX_MB << 20
    with EdgeClient("127.0.0.1", server.port, timeout=30) as c:
        for _ in range(40):  # 160 MiB through the server, one maximum-size payload at a time
            c.ping(n)
        with pytest.raises(EdgeError, match="TOO_LARGE"):
            c.ping(n + 1)
    still_serves(server)
    assert server.status()["VmRSS"] - base["VmRSS"] < RSS_BOUND_KB


# -- dying clients, many clients ------------------------------------------------------------------------

def test_client_disconnects_mid_frame(server):
    base = warm_baseline(server)
    x = x_for(LENET)
    run = _f(Kind.OPEN, 1, fr.text_payload("branchy_lenet")) + _f(Kind.RUN, 2, None, (2, 0, 9))
    for partial in (_f(Kind.PING, 3, np.zeros(100000, np.uint8))[:5000],
                    run + _f(Kind.TENSOR, 2, x, (0,))[:1000], run[:70]):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(partial)
        # closed mid-frame, without a half-close first
    still_serves(server)
    assert server.settle_threads(base["Threads"] + THREAD_SLACK) <= base["Threads"] + THREAD_SLACK


CLIENT = """
import socket, sys, time
import numpy as np
from coinfer.graph.edge import frames as fr
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
fr.write_frame(s, fr.Kind.OPEN, 1, fr.text_payload("branchy_lenet"))
fr.read_frame(s, 1 << 20)
fr.write_frame(s, fr.Kind.RUN, 2, None, (2, 0, 9))
head, data = fr.encode(fr.Kind.TENSOR, 2, np.ones((1, 1, 28, 28), np.float32), (0,))
s.sendall(head + bytes(data)[:1000])
print("mid-request", flush=True)
time.sleep(60)
"""


def test_client_killed_mid_request(server):
    base = warm_baseline(server)
    p = subprocess.Popen([sys.executable, "-c", CLIENT, str(server.port)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "mid-request"
        p.kill()
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        p.stdout.close()
    still_serves(server)
    assert server.settle_threads(base["Threads"] + THREAD_SLACK) <= base["Threads"] + THREAD_SLACK


def test_eight_concurrent_clients_each_served_correctly(server):
    results, errors = {}, []

    def client(k):
        try:
            with EdgeClient("127.0.0.1", server.port, timeout=30) as c:
                c.open("branchy_lenet", graph_digest(LENET))
                got = []
                for j in range(3):
                    x = x_for(LENET, 100 * k + j)
                    e, a, b = [(2, 0, 9), (2, 0, 4), (1, 0, 5)][(k + j) % 3]
                    ins, outs = range_io(LENET, e, a, b)
                    env = local(LENET, x, e)
                    r = c.run(e, a, b, [env[t] for t in ins], [LENET.shape(t) for t in outs])
                    got.append(all(np.array_equal(o, env[t]) for o, t in zip(r.outputs, outs)))
                results[k] = got
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert results == {k: [True, True, True] for k in range(8)}


# -- a server that stalls or dies: the client times out and falls back ----------------------------------------

def test_stalled_then_killed_server_frames_fall_back_to_device_only(device):
    s = ServerProc()
    c = EdgeClient("127.0.0.1", s.port, timeout=0.5)
    r = RemoteRunner(LENET, device, 1.0, c, retry_s=0.0)
    x = x_for(LENET, 7)
    device_only = local(LENET, x, 2)[exit_ops(LENET, 2)[1]]
    try:
        assert r.run(x, (1, 2, "device-first")).fallback is None
        os.kill(s.pid, signal.SIGSTOP)  # stalls mid-conversation
        t0 = time.perf_counter()
        got = r.run(x, (1, 2, "device-first"))
        assert got.fallback and "timed out" in got.fallback or "no reply" in got.fallback
        assert got.plan == (2, 0, "edge-first") and got.planned == (1, 2, "device-first")
        assert np.array_equal(got.output, device_only)
        assert time.perf_counter() - t0 < 10  # bounded by the timeout, not by the server
        os.kill(s.pid, signal.SIGCONT)
        assert r.run(x, (1, 2, "device-first")).fallback is None  # reconnects once the server is back
        c.shape(Link(30e3))  # the upload of 3 KiB takes about a second
        threading.Timer(0.3, lambda: os.kill(s.pid, signal.SIGKILL)).start()
        got = r.run(x, (2, 9, "edge-first"))
        assert got.fallback and got.fallback.startswith("edge failed")
        assert np.array_equal(got.output, device_only)
        later = r.run(x, (2, 9, "edge-first"))  # nobody listens now: refused at once, still answered
        assert later.fallback and np.array_equal(later.output, device_only)
    finally:
        r.close()
        s.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stops_cleanly_on_a_signal(sig):
    s = ServerProc()
    with EdgeClient("127.0.0.1", s.port) as c:  # an open connection does not hold it up
        c.open("branchy_lenet")
        status = s.stop(sig)
    assert status == 0


# -- the command line ------------------------------------------------------------------------------------------

def test_cli_edgent_through_the_edge_server(server, capsys):
    from coinfer.graph.studies import cli

    code = cli.main(["edgent", "branchy_lenet", "--edge", server.address, "--bandwidth", "50Mbps", "--rtt", "0ms",
                     "--target", "2ms", "--repeat", "2", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["edge"] == server.address
    plan = out["plan"]
    for k in ("measured_ms", "transfer_ms", "device_ms", "edge_ms", "max_abs_err", "predicted_ms"):
        assert k in plan and plan[k] >= 0
    # RemoteStudy.measure's online prediction: the a-priori one refined by speed factors from earlier frames
    assert plan["online_predicted_ms"] > 0 and plan["interleaved_predicted_ms"] > 0
    assert plan["max_abs_err"] <= 1e-6 and plan["frames"] == 2 and plan["fallbacks"] == 0
    assert plan["cut"] > 0 or plan["direction"] == "device-first"  # the edge did some of the work


def test_cli_edge_address_errors_are_one_line(capsys):
    from coinfer.graph.studies import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    assert cli.main(["edgent", "branchy_lenet", "--edge", f"127.0.0.1:{port}", "--quiet"]) == 2
    assert cli.main(["edgent", "branchy_lenet", "--edge", "nonsense", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("coinfer edgent:") for line in err)


# -- live: plans switch as a trace plays ----------------------------------------------------------------------

def test_live_episode_switches_plans_from_measured_throughput(server, device):
    from coinfer.graph.costs.sides import TableSideCosts
    from coinfer.graph.edge.live import play
    from coinfer.graph.edgent.dynamic import BandwidthStates, ConfigurationMap
    from coinfer.graph.edgent.static import StaticPlanner
    from coinfer.hw import BandwidthTrace

    costs = TableSideCosts({op.name: {"device": 4e-3, "edge": 5e-5} for op in LENET.ops})
    planner = StaticPlanner(LENET, costs)
    # 100 kbit/s, then 4 Mbit/s: slow enough that the shaper's waits, not the host's scheduling,
    # set the measured throughput of LeNet's small tensors even on a loaded machine.
    states = BandwidthStates(np.array([1e5, 4e6]), [np.full(5, 1e5), np.full(5, 4e6)])
    cmap = ConfigurationMap(planner, states, target_s=0.06, frame_s=0.25)
    trace = BandwidthTrace([0.0, 1.5], [0.1, 4.0])  # 100 kbit/s for 1.5 s, then 4 Mbit/s
    c = EdgeClient("127.0.0.1", server.port, timeout=10)
    r = RemoteRunner(LENET, device, 1.0, c)
    x = x_for(LENET, 9)
    for warm in ((2, 0, "edge-first"), (2, len(exit_ops(LENET, 2)[0]), "edge-first")):  # device-only, edge-only
        r.run(x, warm)  # compile both sides' kernels and open the model before the clock starts
    try:
        frames = play(r, planner, trace, target_s=0.06, frame_s=0.25, frames=12, config_map=cmap, inputs=[x],
                      reference=lambda x, e: local(LENET, x, e)[exit_ops(LENET, e)[1]])
    finally:
        r.close()
    assert all(f.fallback is None and f.max_abs_err == 0.0 for f in frames)
    slow = [f for f in frames if f.t_s < 1.4]
    fast = [f for f in frames if f.t_s > 2.3]
    assert all(f.estimate_bps < 2e5 for f in slow) and all(f.estimate_bps > 1e6 for f in fast)
    assert not any(edge_range_len(f.plan) for f in slow) and all(edge_range_len(f.plan) for f in fast)
    assert sum(a.plan != b.plan for a, b in zip(frames, frames[1:])) >= 1


def edge_range_len(plan):
    from coinfer.graph.edge.parts import edge_range

    a, b = edge_range(len(exit_ops(LENET, plan[0])[0]), plan[1], plan[2])
    return b - a
