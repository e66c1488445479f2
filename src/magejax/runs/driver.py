"""The one run driver: a `Config` and a run directory in, a finished (or resumed) run out.

`run(config, run_dir, seeds=...)` is what the CLI, the experiment scripts and notebooks call:

    from magejax import configs
    from magejax.runs import driver, progress
    config = configs.preset("pendulum", "mage", "cpu")
    result = driver.run(config, "runs/pendulum", seeds=2, progress_fn=progress.tqdm_bar())

It starts the run, or resumes it from the newest good checkpoint (`resume=True`); places the
seeds on the devices (`parallel.place_seeds`); runs the evaluation chunks (`Trainer.run_chunk`,
compiled once); appends every evaluation's rows to `metrics.jsonl` (and rewrites `metrics.csv`
from it) and, if asked, TensorBoard; checkpoints every `checkpoint_every` env steps and at the
end; reports each chunk to `progress_fn` (like Brax's `progress_fn`); and on a non-finite
evaluation return or loss raises `Diverged` with a one-line message (or, with
`on_divergence="warn"`, says so and goes on). A run killed at any moment and run again with
`resume=True` ends with exactly the files of an uninterrupted one.

Multi-host: every process calls `run` with the same arguments; process 0 alone touches the run
directory (see `parallel`).
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from magejax.runs import checkpoint, metrics_io, parallel
from magejax.configs import Config
from magejax.runs import divergence
from magejax.runs import tensorboard as tb_log
from magejax.runs.run_dir import (Diverged, ResumeRefused, RunDirectoryError, WriteFailed,  # noqa: F401 (API)
                                  lock_run_dir)
from magejax.runs.tensorboard import TENSORBOARD_DIR

@dataclasses.dataclass(frozen=True)
class ChunkReport:
    """What `progress_fn` gets: once before the first chunk (`row` None) and after every chunk.

    row: metric name -> per-seed values (seeds,) of the evaluation at `env_step`."""

    env_step: int
    total_steps: int
    first_env_step: int   # where this session started (> 0 after a resume)
    seeds: int
    row: dict | None
    train_s: float        # seconds in training chunks so far, all sessions (no compilation)
    wall_s: float         # wall-clock seconds so far, all sessions
    # The vmapped TrainState after `env_step` (e.g. to film it): valid only during the call, since
    # the next chunk reuses its device buffers.
    state: object = None


@dataclasses.dataclass
class RunResult:
    state: object                  # the final TrainState on the host, leading seed axis
    env_step: int                  # env steps per seed reached (< total_steps if stop_fn stopped it)
    stopped_early: bool
    resumed_from: int | None       # env step of the checkpoint this session resumed from
    train_s: float
    wall_s: float
    compile_s: float
    checkpoint_s: float
    devices: int


def run(config: Config, run_dir, **kwargs) -> RunResult:
    """Run `config` in `run_dir` (see `_run` for the arguments), holding the run directory's lock.

    Refused with `RunDirectoryError` before anything changes when `run_dir/checkpoints` is not a
    directory, or when another process holds the lock (two processes never write one run)."""
    run_dir = Path(run_dir)
    if not parallel.is_main():
        return _run(config, run_dir, **kwargs)
    ckpt_dir = run_dir / checkpoint.CHECKPOINT_DIR
    if ckpt_dir.exists() and not ckpt_dir.is_dir():
        raise RunDirectoryError(f"{ckpt_dir}: exists and is not a directory; it is where the checkpoints go")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(run_dir)
    try:
        return _run(config, run_dir, **kwargs)
    finally:
        os.close(lock)


def _run(config: Config, run_dir, *, seeds: int = 1, seed: int = 0, resume: bool = False,
        run_settings: dict | None = None, checkpoint_every: int | None = None, keep: int = 3,
        progress_fn: Callable[[ChunkReport], None] | None = None,
        probe: Callable | None = None, stop_fn: Callable[[int, dict], bool] | None = None,
        on_divergence: str = "stop", tensorboard: bool = False, start_if_none: bool = False,
        note: Callable[[str], None] = print) -> RunResult:
    """Run `config` with `seeds` seeds (keys `split(PRNGKey(seed), seeds)`) in `run_dir`.

    run_settings: stored in config.json beside the config ("run"), e.g. the CLI's preset;
      seeds and seed are always added. A fresh run writes config.json; a resumed one keeps it.
    resume: continue from the newest good checkpoint (damaged ones are moved aside); with none
      left, raise `ResumeRefused` without touching a file, or with `start_if_none` start afresh.
      A metrics.jsonl that no longer matches its checkpoint also raises `ResumeRefused`.
    checkpoint_every: env steps between checkpoints, a multiple of eval_every (default: every
      evaluation); the end of the run (or an early stop) is always checkpointed.
    probe: `probe(trainer)` -> `fn(train_state, key) -> {name: ()}` for one seed: extra metrics
      computed at every evaluation (vmapped and jitted here), columns after the loop's metrics.
    stop_fn: `stop_fn(env_step, row) -> bool` after each evaluation; True ends the run there.
    on_divergence: "stop" raises `Diverged` after writing the row; "warn" notes it and goes on.
    """
    import jax
    import jax.numpy as jnp

    from magejax.train import METRIC_NAMES, make_train

    run_dir = Path(run_dir)
    main = parallel.is_main()
    every_ckpt = checkpoint_every or config.eval_every
    t0 = time.perf_counter()
    trainer = make_train(config)
    placement = parallel.place_seeds(seeds)
    if placement.note:
        note(placement.note)
    seed_sharding, replicated = placement.seeds, placement.replicated
    keys = placement.put(jax.random.split(jax.random.PRNGKey(seed), seeds))
    start_v = placement.jit(jax.vmap(trainer.start), in_shardings=seed_sharding, out_shardings=seed_sharding)
    chunk_jit = lambda fn: placement.jit(jax.vmap(fn, in_axes=(0, None)), in_shardings=(seed_sharding, replicated),
                                         out_shardings=seed_sharding, donate_argnums=0)
    chunk_v, last_chunk_v = chunk_jit(trainer.run_chunk), chunk_jit(trainer.run_last_chunk)
    probe_fn = jax.jit(jax.vmap(probe(trainer))) if probe is not None else None
    # Probe keys are fixed per evaluation and seed, independent of training's own keys.
    probe_keys = lambda i: jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed + 1), i), seeds)

    def chunk_index(c: int):  # replicated over the mesh: every device runs the same chunk
        return placement.put(np.int32(c), replicated) if placement.mesh is not None else jnp.int32(c)

    def host_row(state, row, i: int) -> dict:
        row = parallel.to_host(row)
        row = {name: np.asarray(row[name]) for name in METRIC_NAMES}  # the documented column order
        if probe_fn is not None:
            row.update({k: np.asarray(v) for k, v in parallel.to_host(probe_fn(state, probe_keys(i))).items()})
        return row

    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), jax.eval_shape(start_v, keys)[0])
    ckpts = writer = tb = None
    if main:
        ckpts = checkpoint.RunCheckpoints(run_dir, checkpoint.identity(config, seeds, seed), keep)

    held = {}  # process 0's restored host state, until it is placed on the devices

    def restore():
        if not resume:
            return None
        try:
            restored = ckpts.restore(abstract, log=note)
        except (checkpoint.IncompatibleCheckpoint, checkpoint.MetricsMismatch) as e:
            return {"error": str(e)}
        if restored is None:
            if not start_if_none:
                return {"error": f"no usable checkpoint to resume from in {run_dir / checkpoint.CHECKPOINT_DIR} "
                                 "(nothing was changed); start afresh in another directory, or with "
                                 "--overwrite on this one"}
            note(f"{run_dir}: no checkpoint to resume from; starting the run from the beginning")
            return None
        held["state"] = restored[0]
        return {"progress": dataclasses.asdict(restored[1])}

    found = restore() if main else None
    found = parallel.broadcast_json(found)
    if found is not None and "error" in found:
        if ckpts is not None:
            ckpts.close()
        raise ResumeRefused(found["error"])

    try:
        if found is None:
            if main:
                metrics_io.write_config(run_dir, config, {**(run_settings or {}), "seeds": seeds, "seed": seed})
                writer = metrics_io.MetricsWriter(run_dir)
            state, first_row = start_v(keys)
            first, train_s, wall_before, resumed_from = 0, 0.0, 0.0, None
        else:
            done = checkpoint.Progress(**found["progress"])
            note(f"resuming {run_dir} at env step {done.env_step}/{config.total_steps} "
                 f"({done.metrics_rows} metrics rows kept)")
            if main:
                writer = metrics_io.MetricsWriter(run_dir, keep_bytes=done.metrics_bytes)
            state = placement.put(parallel.broadcast_tree(held.pop("state", None), abstract))
            first, train_s, wall_before, resumed_from = done.next_chunk, done.train_s, done.wall_s, done.env_step
        if main and tensorboard:
            tb = tb_log.writer(run_dir, None if resumed_from is None else resumed_from + 1)
    except Exception:
        for f in (writer, ckpts, tb):
            if f is not None:
                f.close()
        raise

    every = config.eval_every
    steps_done = lambda chunks: 0 if chunks == 0 else config.chunk_end(chunks - 1)  # env steps after `chunks`
    last_ckpt = [resumed_from]
    stopped_early = False
    ckpt_s = 0.0

    def newest_good() -> str:
        return (f"the newest good checkpoint is at env step {last_ckpt[0]}" if last_ckpt[0] is not None
                else "no checkpoint was written yet")

    def record(env_step: int, row: dict) -> None:
        if main:
            for what, write in ((run_dir / metrics_io.METRICS_FILE, lambda: writer.write_rows(env_step, row)),
                                (run_dir / metrics_io.CSV_FILE, lambda: metrics_io.write_csv(run_dir)),
                                (run_dir / TENSORBOARD_DIR, lambda: tb is not None and tb_log.log_scalars(tb, env_step, row))):
                try:
                    write()
                except OSError as e:
                    raise WriteFailed(f"cannot write {what} at env step {env_step}: {e.strerror or e}; "
                                      f"{newest_good()}") from None
        problems = divergence.non_finite(row)
        if problems:
            learns_model = config.spec.uses_model and config.model == "learned"
            learns_reward = config.spec.uses_model and config.reward == "learned"
            message = divergence.describe(env_step, row, problems, learns_model, learns_reward)
            if on_divergence == "stop":
                where = (f"the newest checkpoint, from before it, is at env step {last_ckpt[0]}"
                         if last_ckpt[0] is not None else "no checkpoint was written before it")
                raise Diverged(f"{message}. Metrics rows up to this step are in "
                               f"{run_dir / metrics_io.METRICS_FILE}; {where}", env_step)
            note(f"WARNING: {message}; the run goes on")

    def save(chunks_done: int) -> None:
        host = parallel.to_host(state)  # every process takes part when the state spans hosts
        if not main:
            last_ckpt[0] = steps_done(chunks_done)
            return
        try:
            writer.sync()  # the rows this checkpoint claims must be on disk before it is
            ckpts.save(host, checkpoint.Progress(
                env_step=steps_done(chunks_done), next_chunk=chunks_done, metrics_rows=writer.rows,
                metrics_bytes=writer.bytes, metrics_sha256=writer.sha256(), train_s=train_s,
                wall_s=wall_before + time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001 — orbax wraps I/O errors in its own types
            checkpoint.remove_unfinished(run_dir)
            reason = getattr(e, "strerror", None) or f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            raise WriteFailed(f"cannot write the checkpoint at env step {steps_done(chunks_done)} in "
                              f"{run_dir / checkpoint.CHECKPOINT_DIR}: {reason}; {newest_good()}") from None
        last_ckpt[0] = steps_done(chunks_done)

    report = lambda env_step, row: progress_fn(ChunkReport(
        env_step=env_step, total_steps=config.total_steps, first_env_step=steps_done(first), seeds=seeds, row=row,
        train_s=train_s, wall_s=wall_before + time.perf_counter() - t0, state=state)) if progress_fn is not None else None
    try:
        if found is None:
            record(0, host_row(state, first_row, 0))
        # Compile ahead of time: the chunk index is a traced int32 scalar, so this one executable
        # serves every chunk (a shorter last chunk has its own) and compile time stays out of the
        # steps/s figures.
        n = config.num_chunks
        run_chunk = chunk_v.lower(state, chunk_index(0)).compile()
        shorter_last = config.chunk_steps(n - 1) < every
        run_last = last_chunk_v.lower(state, chunk_index(n - 1)).compile() if shorter_last else run_chunk
        compile_s = time.perf_counter() - t0
        report(steps_done(first), None)
        c = first
        for c in range(first, n):
            t = time.perf_counter()
            state, row = (run_last if c == n - 1 else run_chunk)(state, chunk_index(c))
            jax.block_until_ready(row)
            train_s += time.perf_counter() - t
            env_step = config.chunk_end(c)
            row = host_row(state, row, c + 1)
            record(env_step, row)
            stopped_early = stop_fn is not None and c < n - 1 and bool(stop_fn(env_step, row))
            if env_step % every_ckpt == 0 or c == n - 1 or stopped_early:
                t = time.perf_counter()
                save(c + 1)
                ckpt_s += time.perf_counter() - t
            report(env_step, row)
            if stopped_early:
                break
    finally:
        for f in (writer, ckpts, tb):
            if f is not None:
                f.close()
    final = parallel.to_host(state)
    end_step = config.chunk_end(c) if config.num_chunks > first else steps_done(first)
    return RunResult(state=final, env_step=end_step, stopped_early=stopped_early, resumed_from=resumed_from,
                     train_s=train_s, wall_s=wall_before + time.perf_counter() - t0, compile_s=compile_s,
                     checkpoint_s=ckpt_s, devices=placement.devices)
