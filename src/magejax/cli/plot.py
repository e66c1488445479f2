"""`magejax plot RUN_DIR... --out PNG`: overlay the learning curves of several run directories."""
from __future__ import annotations

from pathlib import Path

from magejax.cli.args import UsageError
from magejax.runs import metrics_io, plotting


def plot(args) -> int:
    curves, envs = {}, []
    for run_dir in map(Path, args.run_dirs):
        try:
            config = metrics_io.read_config(run_dir)
            rows = metrics_io.read_metrics(run_dir)
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"{run_dir}: not a readable run directory: {e}") from None
        if not rows:
            raise UsageError(f"{run_dir}: {metrics_io.METRICS_FILE} has no rows")
        if args.metric not in rows[0]:
            raise UsageError(f"--metric: {run_dir} has no metric {args.metric!r}")
        label = config.algo
        if label in curves:  # two runs of one algorithm: tell them apart by directory
            label = f"{config.algo} ({run_dir.name})"
        curves[label] = metrics_io.curves_from_metrics(rows, args.metric)
        envs.append(config.env)
    title = args.title or ", ".join(dict.fromkeys(envs))
    ylabel = "evaluation return" if args.metric == "eval_return" else args.metric
    try:
        path = plotting.plot_learning_curves(curves, args.out, title=title, ylabel=ylabel)
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot write: {e.strerror or e}") from None
    print(f"plot: {path}")
    return 0
