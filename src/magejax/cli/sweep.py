"""`magejax sweep`: one algorithm for several values of its traced hyper-parameters
(`configs.hyperparams.TRACED`: λ, γ, τ, learning rates, noise scales), values × seeds vmapped in
ONE compiled program (`driver.run_sweep`).

    magejax sweep --env pendulum --algo mage --lam 0.05 0.1 0.2 1 --seeds 5 --out runs/lam

Every traced flag takes one or more values; the sweep runs their grid (every combination). The
sweep directory holds `sweep.json` (the settings, the values of every run), one normal run
directory per value (`lam0.05/`, ...: config.json, metrics, checkpoints, curve.png, summary.json,
usable with `eval`, `render`, `plot`), `curves.png` (every value's mean and band) and
`summary.json` (final returns and timings). `--resume DIR` continues a killed sweep. A value whose
training diverges is reported and the others go on; the command then exits 1.
"""
from __future__ import annotations

import itertools
import json
import math
import shutil
import sys
from pathlib import Path

from magejax import configs
from magejax.cli import train as train_cli
from magejax.cli.args import OVERRIDES, RUN_DEFAULTS, TRACED_FLAGS, UsageError, fill_run_defaults
from magejax.runs import interrupts, metrics_io, plotting

SWEEP_FILE = "sweep.json"
SWEEP_FILES = (SWEEP_FILE, "curves.png", "summary.json")


def _grid(args) -> list[dict]:
    """Every combination of the traced flags' values: [{config field: value}], in flag order."""
    swept = {OVERRIDES[flag]: getattr(args, flag) for flag in TRACED_FLAGS if getattr(args, flag) is not None}
    if not swept:
        raise UsageError("sweep: give one or more values to at least one of "
                         + ", ".join(f"--{f.replace('_', '-')}" for f in TRACED_FLAGS)
                         + " (e.g. --lam 0.05 0.1 0.2 1)")
    for field, vals in swept.items():
        if len(set(vals)) != len(vals):
            raise UsageError(f"--{field.replace('_', '-')}: a value is given twice: {' '.join(f'{v:g}' for v in vals)}")
    return [dict(zip(swept, combo)) for combo in itertools.product(*swept.values())]


def run_name(values: dict, varying: list[str]) -> str:
    """A run directory's name from the fields that vary across the sweep: `lam0.05`,
    `lam0.05-critic_lr0.0003` (all given fields when none varies)."""
    return "-".join(f"{field}{values[field]:g}" for field in varying)


def _new_sweep(args) -> dict:
    fill_run_defaults(args)
    grid = _grid(args)
    static = {field: getattr(args, flag) for flag, field in OVERRIDES.items()
              if flag not in TRACED_FLAGS and getattr(args, flag) is not None}
    varying = [f for f in grid[0] if len({g[f] for g in grid}) > 1] or list(grid[0])
    runs = []
    for values in grid:
        try:
            config = configs.preset(args.env, args.algo, args.preset, **static, **values)
        except (configs.ConfigError, ValueError, TypeError) as e:
            raise UsageError(str(e)) from None
        runs.append({"name": run_name(values, varying), "values": values, "config": config.to_dict()})
    return {"preset": args.preset, "seeds": args.seeds, "seed": args.seed, "runs": runs}


def _read_sweep(sweep_dir: Path, args) -> dict:
    given = [f"--{flag.replace('_', '-')}" for flag in list(OVERRIDES) + list(RUN_DEFAULTS)
             if getattr(args, flag, None) is not None]
    if given or args.overwrite:
        raise UsageError(f"--resume {sweep_dir}: the sweep's settings come from its {SWEEP_FILE}; "
                         f"drop {', '.join(given) or '--overwrite'}")
    try:
        settings = json.loads((sweep_dir / SWEEP_FILE).read_text())
        for run in settings["runs"]:
            configs.validate(configs.Config.from_dict(run["config"]))
        return settings
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--resume {sweep_dir}: not a readable sweep directory ({SWEEP_FILE}: {e})") from None


def _prepare(out: Path, settings: dict, overwrite: bool) -> None:
    """Create the sweep directory and its run directories (refusing non-empty ones unless
    `overwrite`, which removes only the files a sweep writes), and write sweep.json."""
    train_cli.prepare_out(out, overwrite)
    try:
        for name in SWEEP_FILES:
            (out / name).unlink(missing_ok=True)
        for run in settings["runs"]:
            if overwrite and (out / run["name"]).is_dir():
                shutil.rmtree(out / run["name"])
            (out / run["name"]).mkdir()
        metrics_io.write_whole(out / SWEEP_FILE, lambda tmp: tmp.write_text(json.dumps(settings, indent=2) + "\n"))
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write: {e.strerror or e}") from None


def sweep(args) -> int:
    resuming = args.resume is not None
    out = Path(args.resume if resuming else args.out)
    settings = _read_sweep(out, args) if resuming else _new_sweep(args)
    if not resuming:
        _prepare(out, settings, args.overwrite)
    interrupts.set_message(lambda: f"finished evaluations are in {out}/*/{metrics_io.METRICS_FILE}; "
                                   f"continue with `magejax sweep --resume {out}`")
    runs, seeds, seed = settings["runs"], settings["seeds"], settings["seed"]
    config_list = [configs.Config.from_dict(run["config"]) for run in runs]
    names = [run["name"] for run in runs]

    from magejax.runs import driver, progress  # JAX: only once the input is known to be good

    diverged = []
    report = None if args.quiet else progress.lines(groups=tuple(names))
    note = lambda message: print(f"magejax: {message}", file=sys.stderr, flush=True)

    def on_note(message: str) -> None:
        if message.startswith("WARNING:"):
            diverged.append(message)
        note(message)

    try:
        results = driver.run_sweep(config_list, [out / n for n in names], seeds=seeds, seed=seed,
                                   resume=resuming, run_settings={"preset": settings["preset"], "sweep": str(out)},
                                   progress_fn=report, on_divergence="warn", note=on_note)
    except driver.ResumeRefused as e:
        raise UsageError(f"--resume {out}: {e}") from None
    except (driver.RunDirectoryError, ValueError) as e:
        raise UsageError(str(e)) from None
    except driver.WriteFailed as e:
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None

    curves, rows = {}, []
    for name, config, result in zip(names, config_list, results):
        summary = train_cli.write_results(out / name, config, seeds, seed, result)
        curves[name] = metrics_io.curves_from_metrics(metrics_io.read_metrics(out / name), "eval_return")
        rows.append({"name": name, **{k: summary[k] for k in ("final_eval_return_mean", "final_eval_return_ci95",
                                                             "final_eval_return_per_seed")}})
    first = results[0]
    doc = {"runs": rows, "seeds": seeds, "env_steps": first.env_step, "programs": 1,
           "compile_time_s": first.compile_s, "train_time_s": first.train_s, "wall_time_s": first.wall_s,
           "resumed_from_env_step": first.resumed_from}
    c = config_list[0]
    title = f"{c.algo} on {c.env}: {len(names)} values x {seeds} seed{'s' * (seeds > 1)}"
    train_cli.write_result(out / "curves.png", first.env_step,
                           lambda path: plotting.plot_learning_curves(curves, path, title=title))
    train_cli.write_result(out / "summary.json", first.env_step, lambda path: metrics_io.write_whole(
        path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n")))
    width = max(len(n) for n in names)
    for row in rows:
        mean, (lo, hi) = row["final_eval_return_mean"], row["final_eval_return_ci95"]
        shown = f"{mean:.1f} (95% bootstrap CI {lo:.1f} .. {hi:.1f})" if math.isfinite(mean) else "non-finite"
        print(f"{row['name']:<{width}}  final eval return {shown}")
    print(f"{len(names)} values x {seeds} seed(s) in one program: compiled in {first.compile_s:.1f} s, "
          f"{progress.hms(first.wall_s)} in all; plot: {out / 'curves.png'}")
    if diverged:
        print(f"magejax: error: {len(diverged)} divergence warning(s) above; the other values completed",
              file=sys.stderr)
        return 1
    return 0
