"""The coinfer command line: kernels and run, with their files and errors."""
import json

import numpy as np
import pytest

from coinfer.graph.studies.cli import main


def test_kernels_json(capsys):
    assert main(["kernels", "--layers", "fc8", "--min-time", "0.01", "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["layers"]
    assert row["layer"] == "alexnet.fc8" and row["buffer_gflops"] > 0
    assert doc["isa"] in ("avx512", "avx2", "generic") and doc["peak"]["peak_gflops"] > 0
    assert row["buffer_peak"] == pytest.approx(row["buffer_gflops"] / doc["peak"]["peak_gflops"])


def test_kernels_unknown_layer(capsys):
    assert main(["kernels", "--layers", "nosuchlayer", "--quiet"]) == 2
    assert "no layer matches" in capsys.readouterr().err


def test_run_json_files_and_progress(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((1, 3, 35, 35), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["run", "squeezenet", "--input-size", "35", "--strategy", "codl", "--repeat", "1",
            "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
            "--trace", str(tmp_path / "t.json"), "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["model"] == "squeezenet" and doc["soc"] == "host"
    (s,) = doc["strategies"]
    assert {"name", "median_ms", "replay_ms", "max_abs_err", "speedup"} <= set(s)
    assert s["name"] == "codl" and s["max_abs_err"] < 1e-3
    assert np.load(tmp_path / "y.npy", allow_pickle=False).shape == (1, 1000)
    trace = json.loads((tmp_path / "t.json").read_text())
    assert any(e.get("ph") == "X" for e in trace["traceEvents"])
    assert "profile squeezenet" in err  # progress on stderr


def test_run_table(capsys):
    assert main(["run", "squeezenet", "--input-size", "35", "--strategy", "gpu", "--repeat", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "gpu" in out


@pytest.mark.parametrize("args, msg", [
    (["run", "nosuchmodel"], "unknown model"),
    (["run", "squeezenet", "--soc", "pixel9"], "unknown --soc"),
])
def test_run_errors(args, msg, capsys):
    assert main(args + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "coinfer run: coinfer run:" not in err


@pytest.mark.parametrize("args, msg", [
    (["run", "squeezenet", "--repeat", "0"], "--repeat must be >= 1"),
    (["run", "squeezenet", "--trace", "/nonexistent/dir/t.json"], "--trace: directory"),
    (["edgent", "branchy_lenet", "--trace", "/nonexistent/trace.txt"], "neither a shipped trace"),
])
def test_bad_options_are_refused_before_any_work(args, msg, capsys):
    assert main(args + ["--quiet"]) == 2
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("args", [["run", "squeezenet", "--bogus"], ["kernels", "--bogus"]])
def test_unknown_option_names_the_subcommand(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"coinfer {args[0]}: unrecognized arguments: --bogus") and err.count("\n") == 1


@pytest.mark.parametrize("args, msg", [
    (["run", "/nonexistent/m.onnx"], "model file '/nonexistent/m.onnx': no such file"),
    (["sweep", "/nonexistent/s.toml"], "sweep spec '/nonexistent/s.toml': cannot read it"),
])
def test_missing_files_are_named(args, msg, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_run_bad_input_file(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float64))
    assert main(["run", "squeezenet", "--input-size", "35", "--input", str(tmp_path / "x.npy"), "--quiet"]) == 2
    assert "--input must hold float32" in capsys.readouterr().err


def test_run_replays_every_timed_run(capsys):
    assert main(["run", "squeezenet", "--input-size", "35", "--strategy", "gpu", "--repeat", "3", "--json",
                 "--quiet"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["strategies"]
    assert len(s["replays_ms"]) == len(s["times_ms"]) == 3
    assert s["replay_ms"] == pytest.approx(float(np.median(s["replays_ms"])))
    ratios = [r / w for r, w in zip(s["replays_ms"], s["times_ms"])]
    assert s["replay_ratio"] == pytest.approx(float(np.median(ratios)))
    assert all(abs(r - 1.0) <= 0.05 for r in ratios)  # under host, replay reproduces each run
    assert s["fallback_ops"] == 0 and s["gpu_layouts"] == ["image"]


def test_run_error_is_one_line_naming_the_op(capsys, monkeypatch):
    from coinfer.graph.coexec import lower
    from coinfer.kernels.entry import NoEntry

    real = lower.call

    def broken(graph, op, *a, **k):
        if op.name == "fire3_expand3x3":
            raise ValueError("injected fault")
        return real(graph, op, *a, **k)

    def no_entry(graph, op, *a, **k):  # the Python path, whose calls this test breaks
        raise NoEntry(f"op {op.name!r}: the test breaks the Python call")

    monkeypatch.setattr(lower, "call", broken)
    monkeypatch.setattr(lower, "bind", no_entry)
    assert main(["run", "squeezenet", "--input-size", "35", "--strategy", "cpu", "--repeat", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fire3_expand3x3" in err and "injected fault" in err
    with pytest.raises(Exception, match="injected fault"):
        main(["run", "squeezenet", "--input-size", "35", "--strategy", "cpu", "--repeat", "1", "--quiet",
              "--debug"])


def test_kernels_errors_go_through_the_wrapper(capsys, monkeypatch):
    from coinfer.graph.studies import kernels as ks

    monkeypatch.setattr(ks, "make_inputs", lambda lay: (_ for _ in ()).throw(ValueError("no inputs")))
    assert main(["kernels", "--layers", "fc8", "--quiet", "--no-ort"]) == 2
    assert "coinfer kernels: no inputs" in capsys.readouterr().err


# -- a missing extra is named -------------------------------------------------------

def _without(monkeypatch, *modules):
    """Make ``import m`` fail for each module (and forget coinfer modules that imported it)."""
    import sys

    import coinfer.graph as cg

    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)
    for name in ("onnx", "onnx_export"):
        monkeypatch.delitem(sys.modules, f"coinfer.graph.{name}", raising=False)
        monkeypatch.delattr(cg, name, raising=False)


@pytest.mark.parametrize("block, args, extra", [
    (("onnx",), ["run", "model.onnx"], "coinfer[onnx]"),
    (("onnx",), ["edge-server", "--port", "0", "--model", "model.onnx"], "coinfer[onnx]"),
    (("simpy",), ["simulate"], "coinfer[sim]"),
    (("ruptures",), ["simulate"], "coinfer[sim]"),
    (("dask", "dask.distributed"), ["sweep", "SPEC", "--scheduler", "local-dask", "--out", "r.csv"], "coinfer[dist]"),
    (("pyarrow", "pyarrow.parquet"), ["sweep", "SPEC", "--out", "r.parquet"], "coinfer[dist]"),
    (("matplotlib",), ["edgent", "branchy_lenet", "--plot", "PLOTS"], "coinfer[plot]"),
])
def test_a_missing_extra_is_named(block, args, extra, tmp_path, monkeypatch, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[axes]\nmodels = ["branchy_lenet"]\nbandwidths = ["1Mbps"]\n')
    (tmp_path / "model.onnx").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    _without(monkeypatch, *block)
    args = [str(spec) if a == "SPEC" else str(tmp_path / "plots") if a == "PLOTS" else a for a in args]
    assert main(args + ([] if args[0] in ("sweep", "edge-server") else ["--quiet"])) == 2
    assert f"pip install '{extra}'" in capsys.readouterr().err
