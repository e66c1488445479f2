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
