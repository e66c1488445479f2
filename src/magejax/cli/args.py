"""The command line's arguments: the parser, the flags that override a preset, and `UsageError`."""
from __future__ import annotations

import argparse

from magejax import configs
from magejax.configs import hyperparams
from magejax.runs import metrics_io

RUN_FILES = (metrics_io.CONFIG_FILE, metrics_io.METRICS_FILE, "curve.png", "summary.json")
TENSORBOARD_DIR = "tensorboard"
VIDEO_DIR = "videos"  # `--video-every`'s videos

# Defaults of the flags that describe a run; None in argparse so a resume can tell given from not.
RUN_DEFAULTS = {"env": "pendulum", "algo": "mage", "preset": "paper", "seeds": 1, "seed": 0}

# CLI flag (argparse dest) -> Config field, for the flags that override the preset.
OVERRIDES = {"steps": "total_steps", "eval_every": "eval_every", "eval_episodes": "eval_episodes",
             "warmup": "warmup_steps", "batch_size": "batch_size", "buffer_size": "buffer_size",
             "lam": "lam", "updates_per_step": "updates_per_step", "gamma": "gamma",
             "actor_lr": "actor_lr", "critic_lr": "critic_lr", "model_lr": "model_lr", "tau": "tau",
             "exploration_noise": "exploration_noise", "target_noise": "target_noise",
             "target_noise_clip": "target_noise_clip",
             "backend": "env_backend", "reward": "reward", "model": "model", "horizon": "horizon",
             "normalize_obs": "normalize_obs", "precision": "precision"}

# The flags of the traced hyper-parameters (`configs.hyperparams.TRACED`): a sweep's grid.
TRACED_FLAGS = tuple(flag for flag, field in OVERRIDES.items() if field in hyperparams.TRACED)

# Test-time MPC flags (their own block: `--eval-mpc` is a switch, default None = the preset's).
OVERRIDES.update(eval_mpc="eval_mpc", mpc_horizon="mpc_horizon", mpc_population="mpc_population",
                 mpc_elites="mpc_elites", mpc_iterations="mpc_iterations")


def check_seed(seed: int) -> None:
    """`--seed` of train, eval and render: PRNGKey takes a 32-bit seed."""
    if not 0 <= seed < 2**32:
        raise UsageError(f"--seed: must be in [0, 2**32), got {seed}")


def fill_run_defaults(args) -> None:
    """A new run's (or sweep's) `RUN_DEFAULTS` for the flags not given, then `--seeds` and
    `--seed` checked (train and sweep)."""
    for name, value in RUN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.seeds < 1:
        raise UsageError(f"--seeds: must be >= 1, got {args.seeds}")
    check_seed(args.seed)


class UsageError(Exception):
    """Bad input: reported as one line and exit code 2."""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magejax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one algorithm on one environment, several seeds at once")
    add_run_flags(t)
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
    t.add_argument("--video-every", type=int, metavar="N",
                   help="write RUN_DIR/videos/env_step_<step>.mp4, an episode of seed 0's actor, at "
                        "every N-th env step's evaluation and at the end; N a multiple of --eval-every "
                        "(default: no videos; see `magejax render`)")
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

    w = sub.add_parser("sweep", help="train one algorithm for several hyper-parameter values, values x "
                                     "seeds in one compiled program")
    add_run_flags(w, swept=True)
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="sweep directory to create: one run directory per value, "
                                                    "sweep.json and an overlay plot")
    where.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its newest checkpoints, "
                                                       "with the settings in its sweep.json")
    w.add_argument("--overwrite", action="store_true", help="replace the files of an existing non-empty --out")
    w.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("plot", help="overlay the learning curves of several run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="PNG", help="PNG file to write")
    p.add_argument("--metric", default="eval_return", help="metric to plot (default: eval_return)")
    p.add_argument("--title", help="plot title (default: the runs' environments)")

    e = sub.add_parser("eval", help="evaluate the newest good checkpoint of a run, without training")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--episodes", type=int, metavar="N",
                   help="episodes per seed (default: the run's --eval-episodes)")
    e.add_argument("--eval-mpc", action="store_true",
                   help="act with the CEM planner in the model, with the run's --mpc-* settings "
                        "(model-based algorithms; default: the deterministic actor)")
    e.add_argument("--seed", type=int, default=0, metavar="S",
                   help="evaluation seed: run seed i plays the episodes of key split(PRNGKey(S), "
                        "seeds)[i]; the same S replays the same episodes (default: 0)")

    r = sub.add_parser("render", help="write a video of one episode of a run's trained actor")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--out", required=True, metavar="FILE", help="video to write: .mp4 or .gif")
    r.add_argument("--seed-index", type=int, default=0, metavar="I", help="which of the run's seeds (default: 0)")
    r.add_argument("--seed", type=int, default=0, metavar="S",
                   help="evaluation seed: the episode `magejax eval --episodes 1 --seed S` plays (default: 0)")
    r.add_argument("--width", type=int, default=320, metavar="PX", help="frame width, even (default: 320)")
    r.add_argument("--height", type=int, default=240, metavar="PX", help="frame height, even (default: 240)")
    return parser


def add_run_flags(t: argparse.ArgumentParser, swept: bool = False) -> None:
    """The flags that describe a run (environment, algorithm, seeds and the preset overrides), for
    `train` and `sweep`. swept: the `TRACED_FLAGS` take one or more values (a sweep's grid)."""
    # env and algo are checked by configs.validate, not argparse `choices`, so every bad value
    # gets the same one-line error naming the valid ones.
    t.add_argument("--env", help="environment (default: pendulum)")
    t.add_argument("--algo", help=f"one of {', '.join(configs.ALGOS)} (default: mage)")
    t.add_argument("--seeds", type=int, metavar="N", help="number of seeds, run in parallel (default: 1)")
    t.add_argument("--seed", type=int, metavar="N", help="base seed; seed i uses split(PRNGKey(seed))[i] (default: 0)")
    # Defaults of None mean "the preset's value": only flags the user gave override the preset.
    t.add_argument("--steps", type=int, metavar="N", help="total env steps per seed (default: preset's; paper 10000)")
    t.add_argument("--eval-every", type=int, metavar="N", help="env steps between evaluations (a last, shorter chunk runs the remainder of --steps)")
    t.add_argument("--eval-episodes", type=int, metavar="N", help="episodes per evaluation")
    t.add_argument("--warmup", type=int, metavar="N", help="random-action steps before agent updates start")
    t.add_argument("--batch-size", type=int, metavar="N")
    t.add_argument("--buffer-size", type=int, metavar="N")
    many = dict(nargs="+") if swept else {}
    t.add_argument("--lam", type=float, metavar="λ", help="weight λ of the TD term in the MAGE loss", **many)
    t.add_argument("--updates-per-step", type=int, metavar="N", help="agent updates per env step (default: algo's)")
    t.add_argument("--gamma", type=float, metavar="γ", help="discount factor in (0, 1] (default 0.99)", **many)
    t.add_argument("--tau", type=float, metavar="τ", help="Polyak step of the target networks (default 0.005)", **many)
    for part in ("actor", "critic", "model"):
        t.add_argument(f"--{part}-lr", type=float, metavar="LR", help=f"{part} RAdam learning rate (default 1e-4)",
                       **many)
    t.add_argument("--exploration-noise", type=float, metavar="σ", help="std of the acting noise (default 0.1)", **many)
    t.add_argument("--target-noise", type=float, metavar="σ",
                   help="std of TD3's target-policy smoothing noise (default 0.2)", **many)
    t.add_argument("--target-noise-clip", type=float, metavar="C", help="its clip (default 0.5)", **many)
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
    t.add_argument("--precision", choices=configs.PRECISIONS, default=None,
                   help="matrix products of every network: f32 (full float32, also on GPUs; the "
                        "default), tf32 (JAX's GPU default, TF32 tensor cores; float32 on CPUs) or "
                        "bf16 (bfloat16 operands, float32 accumulation; parameters, optimiser and "
                        "buffer stay float32)")
    m = t.add_argument_group("test-time MPC (MAAC §5.4): evaluate with a CEM planner in the model")
    m.add_argument("--eval-mpc", action="store_true", default=None,
                   help="evaluation episodes act with the planner instead of the actor (model-based algorithms)")
    m.add_argument("--mpc-horizon", type=int, metavar="H", help="planning horizon (default 5)")
    m.add_argument("--mpc-population", type=int, metavar="N", help="CEM candidates per iteration (default 512)")
    m.add_argument("--mpc-elites", type=int, metavar="K", help="CEM elites (default 64)")
    m.add_argument("--mpc-iterations", type=int, metavar="N", help="CEM iterations (default 6)")
    t.add_argument("--preset", choices=configs.SIZES,
                   help="paper settings; cpu: the sizes a 2-core CPU learns Pendulum and CartPole with "
                        "in minutes; tiny: CI-sized networks and run (default: paper)")
