"""The `magejax` command line: `magejax train ...` runs seeds in parallel into a run directory,
`magejax plot RUN_DIR... --out PNG` overlays runs' learning curves.

A run directory holds `config.json`, `metrics.jsonl` (one line per evaluation and seed, flushed as
it goes), `checkpoints/` (the newest few complete training states), `curve.png` and
`summary.json`, and with `--tensorboard` also `tensorboard/` (TensorBoard event files). With
several JAX devices the seeds are sharded over them (`magejax.parallel`; several hosts: see
docs/running.md). `magejax train --resume RUN_DIR` continues a killed run from its newest good
checkpoint and ends with exactly the files an uninterrupted run writes. Bad input prints one line
`magejax: error: ...` and exits 2; a run that diverges (non-finite evaluation return or loss)
exits 1.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path


from magejax import configs, metrics_io, plotting

RUN_FILES = (metrics_io.CONFIG_FILE, metrics_io.METRICS_FILE, "curve.png", "summary.json")
CHECKPOINT_DIR = "checkpoints"  # = checkpoint.CHECKPOINT_DIR, which imports JAX
TENSORBOARD_DIR = "tensorboard"

# Defaults of the flags that describe a run; None in argparse so a resume can tell given from not.
RUN_DEFAULTS = {"env": "pendulum", "algo": "mage", "preset": "paper", "seeds": 1, "seed": 0}

# CLI flag (argparse dest) -> Config field, for the flags that override the preset.
OVERRIDES = {"steps": "total_steps", "eval_every": "eval_every", "eval_episodes": "eval_episodes",
             "warmup": "warmup_steps", "batch_size": "batch_size", "buffer_size": "buffer_size",
             "lam": "lam", "updates_per_step": "updates_per_step", "gamma": "gamma",
             "actor_lr": "actor_lr", "critic_lr": "critic_lr", "model_lr": "model_lr",
             "backend": "env_backend", "reward": "reward", "model": "model", "horizon": "horizon",
             "normalize_obs": "normalize_obs"}

# Test-time MPC flags (their own block: `--eval-mpc` is a switch, default None = the preset's).
OVERRIDES.update(eval_mpc="eval_mpc", mpc_horizon="mpc_horizon", mpc_population="mpc_population",
                 mpc_elites="mpc_elites", mpc_iterations="mpc_iterations")


class UsageError(Exception):
    """Bad input: reported as one line and exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magejax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one algorithm on one environment, several seeds at once")
    # env and algo are checked by configs.validate, not argparse `choices`, so every bad value
    # gets the same one-line error naming the valid ones.
    t.add_argument("--env", help="environment (default: pendulum)")
    t.add_argument("--algo", help=f"one of {', '.join(configs.ALGOS)} (default: mage)")
    t.add_argument("--seeds", type=int, metavar="N", help="number of seeds, run in parallel (default: 1)")
    t.add_argument("--seed", type=int, metavar="N", help="base seed; seed i uses split(PRNGKey(seed))[i] (default: 0)")
    # Defaults of None mean "the preset's value": only flags the user gave override the preset.
    t.add_argument("--steps", type=int, metavar="N", help="total env steps per seed (default: preset's; paper 10000)")
    t.add_argument("--eval-every", type=int, metavar="N", help="env steps between evaluations (must divide --steps)")
    t.add_argument("--eval-episodes", type=int, metavar="N", help="episodes per evaluation")
    t.add_argument("--warmup", type=int, metavar="N", help="random-action steps before agent updates start")
    t.add_argument("--batch-size", type=int, metavar="N")
    t.add_argument("--buffer-size", type=int, metavar="N")
    t.add_argument("--lam", type=float, metavar="λ", help="weight λ of the TD term in the MAGE loss")
    t.add_argument("--updates-per-step", type=int, metavar="N", help="agent updates per env step (default: algo's)")
    t.add_argument("--gamma", type=float, metavar="γ", help="discount factor in (0, 1] (default 0.99)")
    for part in ("actor", "critic", "model"):
        t.add_argument(f"--{part}-lr", type=float, metavar="LR", help=f"{part} RAdam learning rate (default 1e-4)")
    t.add_argument("--backend", metavar="NAME",
                   help="Brax physics backend: generalized, mjx, spring, positional (default: the suite's for the device)")
    t.add_argument("--reward", metavar="SOURCE",
                   help=f"reward used in imagination: {', '.join(configs.REWARDS)} (default: true)")
    t.add_argument("--model", metavar="SOURCE",
                   help=f"next states of imagination: {', '.join(configs.MODELS)} (default: learned)")
    t.add_argument("--horizon", type=int, metavar="K", help="model steps before bootstrapping (default 1)")
    t.add_argument("--no-normalize-obs", dest="normalize_obs", action="store_false", default=None,
                   help="feed raw observations to actor and critics (default: standardised with the "
                        "buffer's running mean and std, as in the original code; MAAC: always raw)")
    m = t.add_argument_group("test-time MPC (MAAC §5.4): evaluate with a CEM planner in the model")
    m.add_argument("--eval-mpc", action="store_true", default=None,
                   help="evaluation episodes act with the planner instead of the actor (model-based algorithms)")
    m.add_argument("--mpc-horizon", type=int, metavar="H", help="planning horizon (default 5)")
    m.add_argument("--mpc-population", type=int, metavar="N", help="CEM candidates per iteration (default 512)")
    m.add_argument("--mpc-elites", type=int, metavar="K", help="CEM elites (default 64)")
    m.add_argument("--mpc-iterations", type=int, metavar="N", help="CEM iterations (default 6)")
    t.add_argument("--preset", choices=("paper", "tiny"),
                   help="paper settings, or tiny CI-sized networks and run (default: paper)")
    where = t.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="run directory to create")
    where.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its newest good checkpoint, with the "
                            "settings in its config.json (flags that contradict them are refused)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run files and checkpoints of an existing non-empty --out")
    t.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="env steps between checkpoints, a multiple of --eval-every (default: at "
                        "every evaluation, or the resumed run's); the end of the run is always "
                        "checkpointed")
    t.add_argument("--keep", type=int, metavar="K",
                   help="checkpoints to keep, newest first (default: 3, or the resumed run's)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    t.add_argument("--tensorboard", action="store_true", default=None,
                   help="also log every metric (mean over seeds and per seed) at each evaluation "
                        "to RUN_DIR/tensorboard/ (needs tensorboardX; a resume keeps logging)")
    d = t.add_argument_group("multi-host runs (see docs/running.md)")
    d.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first, detecting the processes from "
                        "the cluster (Slurm, Open MPI, TPU, ...); every process runs the same "
                        "command and process 0 alone writes the run directory")
    d.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0's coordinator (with --num-processes, --process-id)")
    d.add_argument("--num-processes", type=int, metavar="N")
    d.add_argument("--process-id", type=int, metavar="I")
    t.set_defaults(func=_train)

    p = sub.add_parser("plot", help="overlay the learning curves of several run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="PNG", help="PNG file to write")
    p.add_argument("--metric", default="eval_return", help="metric to plot (default: eval_return)")
    p.add_argument("--title", help="plot title (default: the runs' environments)")
    p.set_defaults(func=_plot)
    return parser


def main(argv=None) -> int:
    """Entry point of the `magejax` console script. Returns 0; exits 2 on bad input, 1 on divergence."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


# ---------------------------------------------------------------------------------------- train

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
        for name, value in RUN_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        if args.seeds < 1:
            raise UsageError(f"--seeds: must be >= 1, got {args.seeds}")
        return _config(args), {name: getattr(args, name) for name in ("preset", "seeds", "seed")}

    run_dir = Path(args.resume)
    if args.overwrite:
        raise UsageError("--overwrite: cannot be combined with --resume")
    try:
        config = metrics_io.read_config(run_dir)
        run = metrics_io.read_run_settings(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--resume {run_dir}: not a readable run directory: {e}") from None
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


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Create `out`, refusing a non-empty one unless `overwrite` (then only our run files go)."""
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
            for name in (CHECKPOINT_DIR, TENSORBOARD_DIR):
                if (out / name).is_dir():
                    shutil.rmtree(out / name)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create run directory: {e.strerror or e}") from None


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


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
    from magejax import parallel
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
        import tensorboardX  # noqa: F401
    except ImportError:
        raise UsageError("--tensorboard: needs the tensorboardX package: pip install tensorboardX "
                         "(or pip install 'magejax[tensorboard]')") from None


def _train(args) -> int:
    multihost = _init_distributed(args)
    resuming = args.resume is not None
    out = Path(args.resume if resuming else args.out)

    def prepare() -> dict:
        """Settings of the run; creates the run directory of a new run (process 0 only)."""
        config, run = _settings(args)
        every_ckpt, keep = _checkpoint_settings(args, config, run)
        tensorboard = bool(args.tensorboard or run.get("tensorboard"))
        if tensorboard:
            _require_tensorboard()
        if multihost:
            import jax
            if run["seeds"] % jax.device_count():
                raise UsageError(f"--seeds: a multi-host run needs a multiple of the "
                                 f"{jax.device_count()} devices of all hosts, got {run['seeds']}")
        if not resuming:
            _prepare_out(out, args.overwrite)
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
    import jax

    from magejax import checkpoint, parallel
    from magejax.runs import driver, progress

    main_process = parallel.is_main()
    note = _note if main_process else (lambda message: None)
    show = not args.quiet and main_process
    report = None
    if show:
        report = progress.tqdm_bar() if sys.stderr.isatty() else progress.lines()
    saved = dict(run, checkpoint_every=every_ckpt, keep=keep)
    if settings["tensorboard"]:
        saved["tensorboard"] = True  # a resume goes on logging
    try:
        result = driver.run(config, out, seeds=seeds, seed=run["seed"], resume=resuming, run_settings=saved,
                            checkpoint_every=every_ckpt, keep=keep, progress_fn=report,
                            tensorboard=settings["tensorboard"], note=note)
    except driver.ResumeRefused as e:
        raise UsageError(f"--resume {out}: {e}") from None
    except driver.Diverged as e:
        _close(report)
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        _close(report)
        if main_process:
            print(f"\nmagejax: interrupted; finished evaluations are in {out / metrics_io.METRICS_FILE}; "
                  f"continue with `magejax train --resume {out}`", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as e:
        _close(report)
        raise UsageError(f"{out}: cannot write: {e.strerror or e}") from None
    _close(report)
    if not main_process:
        return 0
    steps, returns = metrics_io.curves_from_metrics(metrics_io.read_metrics(out), "eval_return")
    plot = plotting.plot_learning_curves(
        {config.algo: (steps, returns)}, out / "curve.png",
        title=f"{config.algo} on {config.env} ({seeds} seed{'s' * (seeds > 1)})")
    mean, lo, hi = (float(x[-1]) for x in plotting.confidence_band(returns))
    rate = config.total_steps / result.train_s if result.train_s > 0 else float("nan")
    summary = {
        "env": config.env, "algo": config.algo, "seeds": seeds, "base_seed": run["seed"],
        "env_steps": config.total_steps,
        "final_eval_return_mean": mean, "final_eval_return_ci95": [lo, hi],
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"final eval return {mean:.1f} (95% CI {lo:.1f} .. {hi:.1f}, {seeds} seed(s)) "
          f"in {_hms(result.wall_s)}; plot: {plot}")
    return 0


def _close(report) -> None:
    if report is not None and hasattr(report, "close"):
        report.close()


# ----------------------------------------------------------------------------------------- plot

def _plot(args) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
