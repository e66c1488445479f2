"""benchmarks/checkpoint_bench.py --quick (state part) writes a report with sane numbers. The
overhead part runs two `magejax train` runs; it is exercised by the benchmark itself, not here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "checkpoint_bench.py"


def test_quick_state_report(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--only", "state", "--out", str(tmp_path),
           "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = tmp_path.glob("checkpoint-*.json")
    report = json.loads(path.read_text())
    assert report["header"]["machine"]["hostname"] and report["header"]["settings"]["quick"] is True
    state = report["results"]["state"]
    assert state["config"]["obs_size"] == 18 and state["config"]["action_size"] == 6
    assert set(state["seeds"]) == {"1", "2"}
    one, two = state["seeds"]["1"], state["seeds"]["2"]
    assert two["state_bytes"] == 2 * one["state_bytes"]
    for m in (one, two):
        # On disk: the state plus metadata (orbax, the meta JSON); no compression of random data.
        assert m["state_bytes"] <= m["disk_bytes"] < 2 * m["state_bytes"] + 200_000
        assert m["save_s"]["median"] > 0 and m["restore_s"]["median"] > 0 and m["save_s"]["n"] == 2
    assert list((tmp_path / "work").iterdir()) == []  # checkpoints cleaned up
