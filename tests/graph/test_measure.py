"""The timing harness's interleaving: every sample once per round, the starting sample rotating."""
from coinfer.graph.costs.measure import measure_interleaved


def test_interleaved_rounds_rotate_the_order():
    calls = []

    def sample(name):
        def s():
            calls.append(name)
            return float(len(calls))
        return s

    timings = measure_interleaved([sample("a"), sample("b"), sample("c")], rounds=3, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [len(t.samples) for t in timings] == [3, 3, 3]
    assert timings[0].samples == (4.0, 9.0, 11.0)


def test_host_speed_keeps_its_reference():
    from coinfer.graph.costs.measure import SpeedReference

    s = SpeedReference(calls=1, reference_calls=3)
    ref = s.reference
    fs = [s.factor() for _ in range(3)]
    assert ref > 0 and s.reference == ref and all(f > 0 for f in fs)


def test_a_range_realised_with_a_speed_yardstick_still_computes_the_same():
    import numpy as np

    from coinfer.graph.costs.measure import SpeedReference
    from coinfer.graph.edge.parts import exit_ops, run_range
    from coinfer.graph.edgent.models import branchy_lenet
    from coinfer.hw import Processor
    from coinfer.kernels import buffer

    g = branchy_lenet()
    ops, out = exit_ops(g, 0)
    x = np.random.default_rng(0).standard_normal(g.shape(g.inputs[0]), dtype=np.float32)
    with Processor("device", "buffer", buffer, (0,)) as p:
        speed = p.call(SpeedReference, 1, 3).result(60)[0]
        envs = [{g.inputs[0]: x}, {g.inputs[0]: x}]
        t = run_range(p, g, ops, envs[0], scale=3.0, speed=speed)
        run_range(p, g, ops, envs[1])
    np.testing.assert_array_equal(envs[0][out], envs[1][out])
    assert t.host > 0 and t.busy > 0
