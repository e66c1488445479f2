"""`magejax eval RUN_DIR`: evaluate the newest good checkpoint of a run, without training.

Every seed of the run plays `--episodes N` episodes (default: the run's own evaluation count) with
its deterministic actor, or with `--eval-mpc` with the CEM planner in its model (the run's
`--mpc-*` settings; model-based algorithms only): `Trainer.evaluate`, the training loop's own
evaluation. `--seed S` (default 0) picks the evaluation's key stream: run seed i plays the
episodes of key `split(PRNGKey(S), seeds)[i]` (their initial states, and the planner's sampling),
so the same S replays the same episodes and another S draws new ones; which policy is evaluated
does not depend on it. Prints each seed's mean return with a 95% t-interval over its episodes,
then the mean of the seed means with a 95% t-interval over seeds (`analysis.statistics.mean_t_interval`,
the statistics of the learning curves). Nothing in the run directory changes, except that a
damaged checkpoint is moved to `damaged_checkpoints/` as a resume would.
"""
from __future__ import annotations

import sys

import numpy as np

from magejax import configs
from magejax.cli.args import UsageError, check_seed
from magejax.analysis import statistics
from magejax.runs import trained


def read_run(run_dir) -> trained.RunInfo:
    try:
        return trained.read_run(run_dir)
    except trained.NotRestorable as e:
        raise UsageError(str(e)) from None


def restore(run: trained.RunInfo, trainer) -> trained.Restored:
    """The newest good checkpoint; notes about skipped damaged checkpoints go to stderr."""
    try:
        restored = trained.restore(run, trainer)
    except trained.RunDirectoryError as e:  # NotRestorable, or the run directory is in use
        raise UsageError(str(e)) from None
    for line in restored.notes:
        print(f"magejax: {line}", file=sys.stderr)
    return restored


def interval(values: np.ndarray, unit: str) -> str:
    """'mean (95% CI lo .. hi)' of the 1-D `values`, or the mean alone when there is one value."""
    mean, lo, hi = (float(x[0]) for x in statistics.mean_t_interval(np.asarray(values, np.float64)[:, None]))
    if len(values) < 2:
        return f"{mean:.1f} (one {unit}: no interval)"
    return f"{mean:.1f} (95% CI {lo:.1f} .. {hi:.1f})"


def evaluate(args) -> int:
    if args.episodes is not None and args.episodes < 1:
        raise UsageError(f"--episodes: must be >= 1, got {args.episodes}")
    check_seed(args.seed)
    run = read_run(args.run_dir)
    episodes = args.episodes if args.episodes is not None else run.config.eval_episodes
    try:
        eval_config = configs.validate(run.config.replace(eval_episodes=episodes, eval_mpc=args.eval_mpc))
    except configs.ConfigError as e:
        raise UsageError(f"--eval-mpc: {str(e).removeprefix('eval_mpc: ')}") from None

    import jax

    from magejax.train import make_train

    trainer = make_train(eval_config)
    restored = restore(run, trainer)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), run.seeds)
    returns = np.asarray(jax.jit(jax.vmap(trainer.evaluate))(restored.state, keys), np.float64)  # (seeds, episodes)

    c = run.config
    how = (f"the CEM planner in the model (horizon {c.mpc_horizon}, population {c.mpc_population}, "
           f"{c.mpc_elites} elites, {c.mpc_iterations} iterations)" if args.eval_mpc else "the deterministic actor")
    print(f"{run.run_dir}: {c.algo} on {c.env}, checkpoint at env step {restored.progress.env_step} of "
          f"{c.total_steps}, {run.seeds} seed(s)")
    print(f"{episodes} episode(s) per seed acting with {how}, evaluation seed {args.seed}")
    for i, seed_returns in enumerate(returns):
        print(f"seed {i}: mean return {interval(seed_returns, 'episode')}")
    print(f"over {run.seeds} seed(s): mean return {interval(returns.mean(axis=1), 'seed')}")
    return 0
