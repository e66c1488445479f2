"""benchmarks/env_bench.py: one real combination measured, an unsupported one listed as skipped,
and the JSON report complete and consistent with its rows."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "env_bench.py"


def _env_bench():
    spec = importlib.util.spec_from_file_location("env_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_bench_measures_and_skips(tmp_path, capsys):
    env_bench = _env_bench()
    common = ["--batches", "2", "--steps", "5", "--reps", "2"]
    assert env_bench.main(["--envs", "inverted_pendulum", "--backends", "generalized", *common,
                           "--out", str(tmp_path / "measured")]) == 0
    assert env_bench.main(["--envs", "swimmer", "--backends", "mjx", *common, "--out", str(tmp_path / "skipped")]) == 0
    assert "written:" in capsys.readouterr().out
    (measured,) = (tmp_path / "measured").glob("env-bench-*.json")
    (skipped,) = (tmp_path / "skipped").glob("env-bench-*.json")
    measured, skipped = json.loads(measured.read_text()), json.loads(skipped.read_text())
    assert measured["header"]["complete"] is True and skipped["header"]["complete"] is True
    (s,) = skipped["results"]
    assert "does not run on mjx" in s["skipped"]
    (r,) = measured["results"]
    assert (r["env"], r["backend"], r["batch"], r["steps"], r["reps"]) == ("inverted_pendulum", "generalized", 2, 5, 2)
    assert r["compile_s"] > 0 and r["p10_s"] <= r["median_s"] <= r["p90_s"]
    assert abs(r["steps_per_s"] - 2 * 5 / r["median_s"]) < 1e-6 * r["steps_per_s"]


def test_env_bench_keeps_finished_rows_when_the_sweep_is_interrupted(tmp_path, monkeypatch):
    # The JSON is rewritten after every combination: a sweep killed midway keeps what it measured.
    env_bench = _env_bench()
    calls = []

    def fake_measure(name, backend, batch, steps, reps):
        calls.append(batch)
        if len(calls) == 2:
            raise KeyboardInterrupt  # not an Exception: the sweep stops, as when it is killed
        return dict(env=name, backend=backend, batch=batch, steps=steps, lower_s=0.1, compile_s=0.2,
                    median_s=1.0, p10_s=1.0, p90_s=1.0, reps=reps, steps_per_s=batch * steps)

    monkeypatch.setattr(env_bench, "measure", fake_measure)
    try:
        env_bench.main(["--envs", "hopper", "--backends", "generalized", "--batches", "1", "256",
                        "--out", str(tmp_path)])
    except KeyboardInterrupt:
        pass
    (path,) = tmp_path.glob("env-bench-*.json")
    report = json.loads(path.read_text())
    assert report["header"]["complete"] is False
    assert [r["batch"] for r in report["results"]] == [1]
