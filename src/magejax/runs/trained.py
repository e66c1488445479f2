"""A run's newest good checkpoint, loaded to be looked at (`magejax eval`, `magejax render`), not
to train on.

`read_run(run_dir)` reads and validates `config.json` without JAX work; `restore(run, trainer)`
restores the newest good checkpoint through the run's own `RunCheckpoints.restore` (damaged
checkpoints are moved to `damaged_checkpoints/`, never deleted, and it falls back past them, as a
resume does), holding the run directory's lock meanwhile, so it never races a training process
that is saving or cleaning up checkpoints in the same directory.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from magejax.configs import Config
from magejax.runs import metrics_io
from magejax.runs.run_dir import RunDirectoryError, checkpoint_steps


class NotRestorable(RunDirectoryError):
    """The run directory has no config, no valid config, or no usable checkpoint; one line."""


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_dir: Path
    config: Config       # the run's own config (checkpoints are checked against it)
    seeds: int
    seed: int            # the run's base seed: its seeds are split(PRNGKey(seed), seeds)
    keep: int


def read_run(run_dir) -> RunInfo:
    """The run settings in `run_dir/config.json`; raises `NotRestorable` naming what is wrong."""
    run_dir = Path(run_dir)
    try:
        config, run = metrics_io.read_validated(run_dir)
    except metrics_io.UnreadableRun as e:
        raise NotRestorable(f"{run_dir}: {e}") from None
    if run is None or not {"seeds", "seed"} <= set(run):
        raise NotRestorable(f"{run_dir}: {metrics_io.CONFIG_FILE} has no run settings (seeds, seed), "
                            "so its checkpoints cannot be checked against it")
    return RunInfo(run_dir=run_dir, config=config, seeds=int(run["seeds"]), seed=int(run["seed"]),
                   keep=int(run.get("keep", 3)))


@dataclasses.dataclass(frozen=True)
class Restored:
    state: object        # the TrainState on the host, leading seed axis (seeds, ...)
    progress: object     # checkpoint.Progress: env_step, ...
    notes: list          # what the restore reported: damaged checkpoints skipped, version warnings


def restore(run: RunInfo, trainer) -> Restored:
    """The newest good checkpoint of `run`.

    trainer: a `Trainer` of `run.config` or of a variant that only evaluates differently
    (eval_episodes, eval_mpc): its `start` gives the state's layout. Raises `NotRestorable` when
    there is no usable checkpoint (with the first damage found in the message) or the checkpoints
    belong to another run, `RunDirectoryError` when another process holds the run directory.
    """
    import jax

    from magejax.runs import checkpoint
    from magejax.runs.run_dir import lock_run_dir

    directory = run.run_dir / checkpoint.CHECKPOINT_DIR
    if not checkpoint_steps(run.run_dir):
        raise NotRestorable(f"{run.run_dir}: no checkpoint in {directory} (a run writes its first one at "
                            "its first checkpoint interval)")
    keys = jax.random.split(jax.random.PRNGKey(run.seed), run.seeds)
    abstract = jax.eval_shape(jax.vmap(trainer.start), keys)[0]
    lock = lock_run_dir(run.run_dir)
    try:
        ckpts = checkpoint.RunCheckpoints(run.run_dir, checkpoint.identity(run.config, run.seeds, run.seed),
                                          run.keep)
        try:
            notes = []
            restored = ckpts.restore(abstract, log=notes.append, to_resume=False)
        except (checkpoint.IncompatibleCheckpoint, checkpoint.MetricsMismatch) as e:
            raise NotRestorable(str(e)) from None
        finally:
            ckpts.close()
    finally:
        os.close(lock)
    if restored is None:
        raise NotRestorable(f"{run.run_dir}: no usable checkpoint in {directory}"
                            + (f" ({notes[0]})" if notes else ""))
    return Restored(state=restored[0], progress=restored[1], notes=notes)


@dataclasses.dataclass(frozen=True)
class TrainedSeeds:
    run: RunInfo
    trainer: object      # `make_train(run.config)`
    env_step: int        # of the restored checkpoint
    states: list         # one TrainState per seed, on the device, no seed axis


def load_seeds(run_dir) -> TrainedSeeds:
    """A finished (or checkpointed) run's newest good checkpoint, split into one TrainState per
    seed, for analyses that look at each seed's trained networks, model and replay buffer."""
    import jax
    import jax.numpy as jnp

    from magejax.train import make_train

    run = read_run(run_dir)
    trainer = make_train(run.config)
    restored = restore(run, trainer)
    states = [jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), restored.state) for i in range(run.seeds)]
    return TrainedSeeds(run=run, trainer=trainer, env_step=int(restored.progress.env_step), states=states)
