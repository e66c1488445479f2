"""benchmarks/accelerator_check.py --quick: every step of the GPU check runs here on the CPU and
lands in one JSON file; accelerator_wheels.py keeps what the machine already has."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import accelerator_wheels  # noqa: E402


def test_quick_check_runs_every_step_into_one_json(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accelerator_check.py"), "--quick",
                           "--out", str(tmp_path), "--budget-s", "3000"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "accelerator_check.json").read_text())
    steps = report["steps"]
    assert set(steps) == {"device", "gradient_tests", "update_step", "seed_scaling_pendulum",
                          "seed_scaling_halfcheetah", "fig2_pendulum"}
    assert steps.pop("seed_scaling_halfcheetah") == {"skipped": "--quick (the Pendulum step runs the same code)"}
    assert all("result" in v for v in steps.values()), {k: v.get("error") for k, v in steps.items()}
    assert steps["device"]["result"]["backend"] == "cpu"
    tests = steps["gradient_tests"]["result"]
    assert tests["passed"] and "2 passed" in tests["summary"], tests["summary"]
    for size in ("pendulum", "halfcheetah"):
        update = steps["update_step"]["result"][size]
        assert set(update["precisions"]) == {"f32", "tf32", "bf16"}
        assert update["f32_over_bf16"] > 0
        assert all(v["ms_per_update"]["median"] > 0 for v in update["precisions"].values())
    scaling = steps["seed_scaling_pendulum"]["result"]["seeds"]
    assert set(scaling) == {"2"} and math.isfinite(scaling["2"]["env_steps_per_s_total"])
    assert scaling["2"]["env_steps_per_s_total"] > 0
    fig2 = steps["fig2_pendulum"]["result"]
    assert set(fig2) == {"mage", "td3"}
    for algo, r in fig2.items():
        assert r["env_steps"] == 200 and not r["stopped_by_budget"], algo
        assert r["eval_steps"] == [0, 100, 200] and len(r["eval_return_per_seed"]) == 5
        assert (tmp_path / "fig2_pendulum" / algo / "metrics.jsonl").is_file()


def test_a_spent_budget_skips_the_remaining_steps_and_still_writes_the_report(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accelerator_check.py"),
                           "--out", str(tmp_path), "--budget-s", "0"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads((tmp_path / "accelerator_check.json").read_text())["steps"]
    assert all(v == {"skipped": "budget spent"} for v in steps.values())


def test_wheels_cover_locked_versions_and_installed_packages_are_kept(tmp_path, capsys):
    versions = accelerator_wheels.locked_versions()
    assert all(p in versions for p in accelerator_wheels.PACKAGES)
    # A wheel of a distribution this interpreter has is left alone (the machine's own stays).
    (tmp_path / f"tqdm-{versions['tqdm']}-py3-none-any.whl").write_bytes(b"")
    accelerator_wheels.install(tmp_path, tmp_path / "site")
    out = capsys.readouterr().out
    assert f"kept: tqdm {versions['tqdm']}" in out and "installed into" in out and out.rstrip().endswith("nothing")
    assert not (tmp_path / "site").exists()
