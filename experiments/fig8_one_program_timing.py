"""Issue "Fit the ecosystem", item 2: what running Fig. 8's λ values as ONE compiled program saves,
and whether its per-value results equal one program per value.

Runs the four MAGE-TD3 conditions of `fig8_lambda_sweep.py` (λ ∈ {0.05, 0.1, 0.2, 1}, Pendulum,
`cpu` scale: the cpu preset, 1000 env steps, evaluation every 100, 3 seeds) twice, each with JAX's
persistent compilation cache off so that compile time is measured: once as one program
(values × seeds vmapped, the default) and once with `--one-program-per-condition`. Writes
`experiments/results/fig8_one_program/timing.json` and `.md`: compile, training and wall seconds
of each, and per value the largest difference of the evaluation returns between the two.

    python experiments/fig8_one_program_timing.py    # on an idle machine (~20 min on 2 cores)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "results" / "fig8_one_program"
RUNS = ROOT / "runs" / "fig8_one_program"
LAMS = ("0.05", "0.1", "0.2", "1")


def run(mode: str, extra: list[str]) -> dict:
    out = RUNS / mode
    t = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "experiments" / "fig8_lambda_sweep.py"), "--scale", "cpu",
                    "--only", "mage-lam", "--out", str(out), "--compile-cache", "off", "--rerun", "--quiet", *extra],
                   check=True)
    wall = time.perf_counter() - t
    summaries = {lam: json.loads((out / f"pendulum/mage-lam{lam}" / "summary.json").read_text()) for lam in LAMS}
    compile_s = sorted({round(s["compile_s"], 3) for s in summaries.values()})
    train_s = sorted({round(s["train_s"], 3) for s in summaries.values()})
    return {"process_wall_s": wall, "compile_s": compile_s, "train_s": train_s, "out": str(out),
            "compile_s_total": sum(compile_s), "train_s_total": sum(train_s)}


def returns(mode: str, lam: str) -> np.ndarray:
    rows = [json.loads(line) for line in (RUNS / mode / f"pendulum/mage-lam{lam}" / "metrics.jsonl").open()]
    return np.asarray([r["eval_return"] for r in rows], np.float64)


def main() -> int:
    load = os.getloadavg()[0]
    one = run("one_program", [])
    separate = run("one_program_per_value", ["--one-program-per-condition"])
    diffs = {}
    for lam in LAMS:
        a, b = returns("one_program", lam), returns("one_program_per_value", lam)
        diffs[lam] = {"max_abs_diff_eval_return": float(np.max(np.abs(a - b))),
                      "max_rel_diff_eval_return": float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-6))),
                      "first_row_differing": int(np.argmax(a != b)) if np.any(a != b) else None,
                      "final_mean_one_program": float(a[-3:].mean()), "final_mean_per_value": float(b[-3:].mean())}
    doc = {"load_1min_before": load, "one_program": one, "one_program_per_value": separate, "per_value": diffs,
           "setting": "fig8_lambda_sweep.py --scale cpu --only mage-lam (4 values x 3 seeds, 1000 env steps)"}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "timing.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["# Fig. 8's four λ values: one compiled program against one per value", "",
             f"Setting: {doc['setting']}; persistent compilation cache off; 1-min load before: {load:.2f}.", "",
             "| | programs | compile s | training s | process wall s |", "|---|---|---|---|---|",
             f"| one program | 1 | {one['compile_s_total']:.1f} | {one['train_s_total']:.1f} | {one['process_wall_s']:.1f} |",
             f"| one per value | 4 | {separate['compile_s_total']:.1f} ({', '.join(f'{x:.1f}' for x in separate['compile_s'])}) "
             f"| {separate['train_s_total']:.1f} | {separate['process_wall_s']:.1f} |", "",
             "| λ | max abs diff of eval returns | max rel diff | first differing row | final mean (one program) | final mean (per value) |",
             "|---|---|---|---|---|---|"]
    for lam, d in diffs.items():
        lines.append(f"| {lam} | {d['max_abs_diff_eval_return']:.3g} | {d['max_rel_diff_eval_return']:.3g} | "
                     f"{d['first_row_differing']} | {d['final_mean_one_program']:.1f} | {d['final_mean_per_value']:.1f} |")
    (OUT / "timing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
