"""Sample efficiency on Pendulum: MAGE-TD3 vs Dyna-TD3 vs TD3 vs TD3-UTD (paper's Pendulum settings).

Runs `magejax train` once per algorithm (seeds vmapped inside each run), then writes a combined
plot `curves.png` and a table `table.md` (final return and area under the curve, mean and 95% CI
over seeds) into the output directory. Algorithms whose run directory already holds a finished
run (`summary.json`) are not run again, so an interrupted sweep resumes where it stopped.

    python experiments/pendulum_learning.py --seeds 5 --steps 10000          # the issue's measurement
    python experiments/pendulum_learning.py --seeds 3 --steps 3000 --eval-every 250
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from magejax import configs, metrics_io, plotting


def run_algo(algo: str, args, out: Path) -> Path:
    run_dir = out / algo
    if (run_dir / "summary.json").exists():
        print(f"{algo}: already finished in {run_dir}", flush=True)
        return run_dir
    cmd = [sys.executable, "-m", "magejax.cli", "train", "--env", "pendulum", "--algo", algo,
           "--seeds", str(args.seeds), "--seed", str(args.seed), "--steps", str(args.steps),
           "--eval-every", str(args.eval_every), "--out", str(run_dir), "--overwrite"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return run_dir


def summarize(run_dirs: dict[str, Path], out: Path, up_to: int | None = None) -> str:
    """Plot and table of the runs' evaluations up to env step `up_to` (all if None).

    A run stopped early (no summary.json) is summarised over the evaluations it wrote.
    """
    curves, lines = {}, []
    lines.append("| algorithm | seeds | env steps | final eval return (95% CI) | mean return over curve (95% CI) | env steps/s per seed |")
    lines.append("|---|---|---|---|---|---|")
    for algo, run_dir in run_dirs.items():
        steps, returns = metrics_io.curves_from_metrics(metrics_io.read_metrics(run_dir))
        if up_to is not None:
            keep = steps <= up_to
            steps, returns = steps[keep], returns[:, keep]
        curves[algo] = (steps, returns)
        final, final_lo, final_hi = (float(x[-1]) for x in plotting.confidence_band(returns))
        # Area under the curve, normalised by its length: the mean evaluation return over training.
        auc = np.trapezoid(returns, steps, axis=1) / (steps[-1] - steps[0])
        auc_mean, auc_lo, auc_hi = (float(x[0]) for x in plotting.confidence_band(auc[:, None]))
        summary_file = run_dir / "summary.json"
        rate = json.loads(summary_file.read_text())["env_steps_per_s_per_seed"] if summary_file.exists() else None
        lines.append(f"| {algo} | {returns.shape[0]} | {int(steps[-1])} | {final:.1f} ({final_lo:.1f} .. {final_hi:.1f}) "
                     f"| {auc_mean:.1f} ({auc_lo:.1f} .. {auc_hi:.1f}) | {'n/a' if rate is None else f'{rate:.2f}'} |")
    plotting.plot_learning_curves(curves, out / "curves.png", title="Pendulum: evaluation return (mean, 95% CI)")
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=list(configs.ALGOS), choices=configs.ALGOS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/pendulum_learning"))
    parser.add_argument("--summarize-only", action="store_true",
                        help="do not train: summarise the run directories already under --out")
    parser.add_argument("--up-to", type=int, default=None, help="summarise evaluations up to this env step")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summarize_only:
        run_dirs = {algo: args.out / algo for algo in args.algos if (args.out / algo / "metrics.jsonl").exists()}
    else:
        run_dirs = {algo: run_algo(algo, args, args.out) for algo in args.algos}
    print(summarize(run_dirs, args.out, args.up_to))


if __name__ == "__main__":
    main()
