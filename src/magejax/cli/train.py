"""`magejax train`: a run's settings from the flags (or from the run it resumes), the run
directory, then one call of the run driver (`magejax.runs.driver`), the plot and `summary.json`."""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

from magejax import configs
from magejax.cli import video_every
from magejax.cli.args import (OVERRIDES, RUN_FILES, TENSORBOARD_DIR,
                              VIDEO_DIR, UsageError, fill_run_defaults)
from magejax.analysis import statistics
from magejax.runs import interrupts, metrics_io, plotting
from magejax.runs.run_dir import CHECKPOINT_DIR, checkpoint_steps


def _config(args) -> configs.Config:
    overrides = {field: getattr(args, flag) for flag, field in OVERRIDES.items()
                 if getattr(args, flag) is not None}
    try:
        return configs.preset(args.env, args.algo, args.preset, **overrides)
    except (configs.ConfigError, ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _settings(args) -> tuple[configs.Config, dict]:
    """(config, run settings) of a new run, or of the run `--resume` continues.

    Run settings are what besides `Config` a run depends on (preset, seeds, base seed), stored
    in config.json with the checkpoint settings. A resume takes them all from there and refuses
    flags that contradict them, naming each.
    """
    if args.resume is None:
        fill_run_defaults(args)
        return _config(args), {name: getattr(args, name) for name in ("preset", "seeds", "seed")}

    run_dir = Path(args.resume)
    if args.overwrite:
        raise UsageError("--overwrite: cannot be combined with --resume")
    try:
        config, run = metrics_io.read_validated(run_dir)
    except metrics_io.UnreadableRun as e:
        raise UsageError(f"--resume {run_dir}: {e}") from None
    if run is None:
        raise UsageError(f"--resume {run_dir}: {metrics_io.CONFIG_FILE} has no run settings "
                         "(written by an older magejax); cannot resume it")
    saved = {flag: (field, getattr(config, field)) for flag, field in OVERRIDES.items()}
    saved.update(env=("env", config.env), algo=("algo", config.algo),
                 **{name: (name, run.get(name)) for name in ("preset", "seeds", "seed")})
    conflicts = [f"--{flag.replace('_', '-')} {getattr(args, flag)} (the run has {field}={value!r})"
                 for flag, (field, value) in saved.items()
                 if getattr(args, flag) is not None and getattr(args, flag) != value]
    if conflicts:
        raise UsageError(f"--resume {run_dir}: flags conflict with the run's config.json: "
                         + "; ".join(conflicts))
    return config, run


def _checkpoint_settings(args, config: configs.Config, run: dict) -> tuple[int, int]:
    """(checkpoint_every, keep): the flags, else the run's saved values, else the defaults."""
    # Neither changes the results, so a resume may change them; they then hold for that session.
    every = args.checkpoint_every
    if every is None:
        every = run.get("checkpoint_every", config.eval_every)
    keep = args.keep if args.keep is not None else run.get("keep", 3)
    if args.checkpoint_every is not None and (every <= 0 or every % config.eval_every):
        raise UsageError(f"--checkpoint-every: must be a positive multiple of the evaluation "
                         f"interval ({config.eval_every}), got {args.checkpoint_every}")
    if keep < 1:
        raise UsageError(f"--keep: must be >= 1, got {keep}")
    return every, keep


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create `out`, refusing a non-empty one unless `overwrite` (then only our run files go)."""
    here = Path.cwd().resolve()
    if str(out) in ("", ".") or out.resolve() == here or out.resolve() in here.parents:
        raise UsageError(f"--out {str(out)!r}: is the current directory or a parent of it; name a run "
                         "directory of its own")
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out}: exists and is not a directory")
        if out.is_dir() and any(out.iterdir()):
            if not overwrite:
                raise UsageError(f"--out {out}: directory exists and is not empty "
                                 "(pass --overwrite to replace its run files, or choose another)")
            # Remove every file a run writes, so a run that stops early leaves no stale plot,
            # summary or checkpoint from the previous one. Other files are left alone.
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            for name in (CHECKPOINT_DIR, TENSORBOARD_DIR, VIDEO_DIR):
                if (out / name).is_dir():
                    shutil.rmtree(out / name)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create run directory: {e.strerror or e}") from None


def _nan_to_none(x):
    return x if isinstance(x, float) and math.isfinite(x) else None


def _note(message: str) -> None:
    print(f"magejax: {message}", file=sys.stderr, flush=True)


def _init_distributed(args) -> bool:
    """`jax.distributed.initialize` if asked for; True when this is a multi-process run."""
    manual = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in manual):
        return False
    if any(v is None for v in manual) and not all(v is None for v in manual):
        raise UsageError("--coordinator, --num-processes and --process-id go together "
                         "(or use --distributed alone, to detect them from the cluster)")
    import jax
    try:
        jax.distributed.initialize(*manual)
    except (ValueError, TypeError, RuntimeError) as e:
        raise UsageError(f"--distributed: cannot initialise JAX's distributed runtime: {e}") from None
    return jax.process_count() > 1


def _on_main(fn, multihost: bool):
    """fn() in process 0; its JSON-able result, or its UsageError, in every process."""
    if not multihost:
        return fn()
    from magejax.runs import parallel
    value = None
    if parallel.is_main():
        try:
            value = {"ok": fn()}
        except UsageError as e:
            value = {"error": str(e)}
    value = parallel.broadcast_json(value)
    if "error" in value:
        raise UsageError(value["error"])
    return value["ok"]


def _require_tensorboard() -> None:
    try:
        import tensorboardX  # noqa: F401 (only whether it imports)
    except ImportError:
        raise UsageError("--tensorboard: needs the tensorboardX package: pip install tensorboardX "
                         "(or pip install 'magejax[tensorboard]')") from None


def train(args) -> int:
    multihost = _init_distributed(args)
    resuming = args.resume is not None
    out = Path(args.resume if resuming else args.out)
    interrupts.set_message(lambda: _how_to_go_on(out))

    def prepare() -> dict:
        """Settings of the run; creates the run directory of a new run (process 0 only)."""
        config, run = _settings(args)
        every_ckpt, keep = _checkpoint_settings(args, config, run)
        video_every.check(args.video_every, config, multihost)
        tensorboard = bool(args.tensorboard or run.get("tensorboard"))
        if tensorboard:
            _require_tensorboard()
        if multihost:
            import jax
            if run["seeds"] % jax.device_count():
                raise UsageError(f"--seeds: a multi-host run needs a multiple of the "
                                 f"{jax.device_count()} devices of all hosts, got {run['seeds']}")
        if not resuming:
            prepare_out(out, args.overwrite)
            saved = dict(run, checkpoint_every=every_ckpt, keep=keep)
            if args.tensorboard:
                saved["tensorboard"] = True  # a resume goes on logging
            try:
                metrics_io.write_config(out, config, saved)
            except OSError as e:
                raise UsageError(f"--out {out}: cannot write: {e.strerror or e}") from None
        return {"config": config.to_dict(), "run": run, "every_ckpt": every_ckpt, "keep": keep,
                "tensorboard": tensorboard}

    # Multi-host: only process 0 reads or writes the run directory; the others get its settings.
    settings = _on_main(prepare, multihost)
    config = configs.Config.from_dict(settings["config"])
    run, every_ckpt, keep = settings["run"], settings["every_ckpt"], settings["keep"]
    seeds = run["seeds"]

    # Imported here so `magejax --help` and bad-input errors do not wait for JAX.
    from magejax.runs import driver, parallel, progress

    main_process = parallel.is_main()
    note = _note if main_process else (lambda message: None)
    show = not args.quiet and main_process
    report = None
    if show:
        report = progress.tqdm_bar() if sys.stderr.isatty() else progress.lines()
    if args.video_every is not None and main_process:
        report = video_every.with_videos(report, config, out, seeds, args.video_every, note)
    saved = dict(run, checkpoint_every=every_ckpt, keep=keep)
    if settings["tensorboard"]:
        saved["tensorboard"] = True  # a resume goes on logging
    try:
        result = driver.run(config, out, seeds=seeds, seed=run["seed"], resume=resuming, run_settings=saved,
                            checkpoint_every=every_ckpt, keep=keep, progress_fn=report,
                            tensorboard=settings["tensorboard"], note=note)
    except driver.ResumeRefused as e:
        raise UsageError(f"--resume {out}: {e}") from None
    except driver.RunDirectoryError as e:
        raise UsageError(str(e)) from None
    except driver.WriteFailed as e:
        _close(report)
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except driver.Diverged as e:
        _close(report)
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # in-process (`cli.main`); the console script exits in `runs.interrupts`
        _close(report)
        if main_process:
            print(f"\nmagejax: interrupted; {_how_to_go_on(out)}", file=sys.stderr)
        raise SystemExit(interrupts.INTERRUPTED) from None
    except OSError as e:
        _close(report)
        raise UsageError(f"{out}: cannot write: {e.strerror or e}") from None
    _close(report)
    if not main_process:
        return 0
    summary = write_results(out, config, seeds, run["seed"], result)
    mean, (lo, hi) = summary["final_eval_return_mean"], summary["final_eval_return_ci95"]
    per_seed = ", ".join(f"{x:.1f}" for x in summary["final_eval_return_per_seed"])
    print(f"final eval return {mean:.1f} (95% bootstrap CI {lo:.1f} .. {hi:.1f}; IQM "
          f"{summary['final_eval_return_iqm']:.1f}; {seeds} seed(s): {per_seed}) "
          f"in {progress.hms(result.wall_s)}; plot: {out / 'curve.png'}")
    return 0


def write_results(out: Path, config: configs.Config, seeds: int, base_seed: int, result) -> dict:
    """A finished run's `curve.png` (per-seed curves and the mean) and `summary.json`; returns the
    summary. A write that fails is one line and exit 1 (`write_result`)."""
    import jax

    from magejax.runs import checkpoint

    steps, returns = metrics_io.curves_from_metrics(metrics_io.read_metrics(out), "eval_return")
    title = f"{config.algo} on {config.env} ({seeds} seed{'s' * (seeds > 1)})"
    write_result(out / "curve.png", result.env_step, lambda path: plotting.plot_learning_curves(
        {config.algo: (steps, returns)}, path, title=title, per_seed=True))
    final = statistics.iqm_interval(returns[:, -1])  # bootstrap intervals: they stay within the seeds
    rate = config.total_steps / result.train_s if result.train_s > 0 else float("nan")
    summary = {
        "env": config.env, "algo": config.algo, "seeds": seeds, "base_seed": base_seed,
        "env_steps": config.total_steps,
        "final_eval_return_mean": final["mean"], "final_eval_return_ci95": final["mean_ci95"],
        "final_eval_return_iqm": final["iqm"], "final_eval_return_iqm_ci95": final["iqm_ci95"],
        "final_eval_return_per_seed": [float(x) for x in returns[:, -1]],
        # Identical for an uninterrupted run and a killed-and-resumed one.
        "final_state_sha256": checkpoint.state_digest(result.state),
        "resumed_from_env_step": result.resumed_from,
        "devices": result.devices, "processes": jax.process_count(),
        "wall_time_s": result.wall_s, "compile_time_s": result.compile_s, "checkpoint_time_s": result.checkpoint_s,
        # Rates exclude compilation, so they compare across run lengths.
        "env_steps_per_s_per_seed": _nan_to_none(rate),
        "env_steps_per_s_total": _nan_to_none(rate * seeds),
    }
    write_result(out / "summary.json", result.env_step,
                  lambda path: metrics_io.write_whole(path, lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n")))
    return summary


def _how_to_go_on(out: Path) -> str:
    """What an interrupted run left, and the command that goes on from there."""
    if checkpoint_steps(out):
        return (f"finished evaluations are in {out / metrics_io.METRICS_FILE}; "
                f"continue with `magejax train --resume {out}`")
    return ("no checkpoint was written yet, so there is nothing to resume: run the same command "
            "again with --overwrite")


def write_result(path: Path, env_step: int, write) -> Path:
    """`write(path)` (which writes whole or not at all); a failure is one line and exit 1. The
    training itself is complete by then: its metrics and final checkpoint are on disk."""
    try:
        return write(path)
    except OSError as e:
        print(f"magejax: error: cannot write {path}: {e.strerror or e}; the run itself is complete "
              f"(metrics and the final checkpoint, at env step {env_step}, are in {path.parent}); "
              f"redraw the curve with `magejax plot {path.parent} --out PNG`", file=sys.stderr)
        raise SystemExit(1) from None


def _close(report) -> None:
    if report is not None and hasattr(report, "close"):
        report.close()

