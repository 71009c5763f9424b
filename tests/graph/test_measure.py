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

