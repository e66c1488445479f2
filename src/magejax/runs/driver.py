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

`run_sweep(configs, run_dirs, seeds=...)` does the same for configs that differ only in traced
hyper-parameters (`configs.hyperparams`: λ, γ, τ, learning rates, noise scales): one compiled
program vmapped over values × seeds, each value written to its own normal run directory
(`runs.run_files`), resumed together from the newest step all of them have a checkpoint at.

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

from magejax.runs import checkpoint, divergence, metrics_io, parallel, run_files
from magejax.configs import Config
from magejax.runs.run_dir import (Diverged, ResumeRefused, RunDirectoryError, WriteFailed,  # noqa: F401 (API)
                                  lock_run_dir)

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
    return _locked([config], [run_dir], traced=False, **kwargs)[0]


def run_sweep(configs: list[Config], run_dirs: list, **kwargs) -> list[RunResult]:
    """Run `configs`, which differ only in traced hyper-parameters (`configs.hyperparams`), as ONE
    compiled program vmapped over values × seeds; `configs[i]` writes `run_dirs[i]`, a normal run
    directory (config.json with its own values, metrics, checkpoints). Every value gets the same
    seeds. Arguments as `_run`'s (`run_settings` goes to every directory); one `RunResult` per
    value. A resume continues every directory from the newest step all have a checkpoint at."""
    from magejax.configs import ConfigError, hyperparams

    if len(configs) != len(run_dirs):
        raise ValueError(f"run_sweep: {len(configs)} configs for {len(run_dirs)} run directories")
    if len({Path(d).resolve() for d in run_dirs}) != len(run_dirs):
        raise RunDirectoryError("run_sweep: two values would write the same run directory")
    try:
        hyperparams.check_sweepable(configs)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return _locked(configs, run_dirs, traced=True, **kwargs)


def _locked(configs: list[Config], run_dirs: list, **kwargs) -> list[RunResult]:
    run_dirs = [Path(d) for d in run_dirs]
    if not parallel.is_main():
        return _run(configs, run_dirs, **kwargs)
    for run_dir in run_dirs:
        ckpt_dir = run_dir / checkpoint.CHECKPOINT_DIR
        if ckpt_dir.exists() and not ckpt_dir.is_dir():
            raise RunDirectoryError(f"{ckpt_dir}: exists and is not a directory; it is where the checkpoints go")
    locks = []
    try:
        for run_dir in run_dirs:
            run_dir.mkdir(parents=True, exist_ok=True)
            locks.append(lock_run_dir(run_dir))
        return _run(configs, run_dirs, **kwargs)
    finally:
        for lock in locks:
            os.close(lock)


def _run(configs: list[Config], run_dirs: list[Path], *, traced: bool, seeds: int = 1, seed: int = 0,
         resume: bool = False, run_settings: dict | list[dict] | None = None, checkpoint_every: int | None = None,
         keep: int = 3, progress_fn: Callable[[ChunkReport], None] | None = None,
         probe: Callable | None = None, stop_fn: Callable[[int, dict], bool] | None = None,
         on_divergence: str = "stop", tensorboard: bool = False, start_if_none: bool = False,
         note: Callable[[str], None] = print) -> list[RunResult]:
    """Run each of `configs` with `seeds` seeds (keys `split(PRNGKey(seed), seeds)`, the same for
    every config) in its run directory; one program for all, vmapped over configs × seeds.

    traced: the configs' hyper-parameters are inputs of the program (a sweep), else constants (a
      single run, exactly the program `make_train(config)` describes).
    run_settings: stored in config.json beside the config ("run"), e.g. the CLI's preset (one
      dict for all configs, or a list of one per config); seeds and seed are always added. A
      fresh run writes config.json; a resumed one keeps it.
    resume: continue from the newest good checkpoint (damaged ones are moved aside); with none
      left, raise `ResumeRefused` without touching a file, or with `start_if_none` start afresh.
      A metrics.jsonl that no longer matches its checkpoint also raises `ResumeRefused`.
    checkpoint_every: env steps between checkpoints, a multiple of eval_every (default: every
      evaluation); the end of the run (or an early stop) is always checkpointed.
    progress_fn: called with the rows of every config's seeds (configs × seeds values, config-major).
    probe: `probe(trainer)` -> `fn(train_state, key) -> {name: ()}` for one seed: extra metrics
      computed at every evaluation (vmapped and jitted here), columns after the loop's metrics.
    stop_fn: `stop_fn(env_step, row) -> bool` after each evaluation (row as progress_fn's); True
      ends the run there.
    on_divergence: "stop" raises `Diverged` after writing the row; "warn" notes it and goes on.
    """
    import jax
    import jax.numpy as jnp

    from magejax import configs as configs_module
    from magejax.configs import hyperparams
    from magejax.train import METRIC_NAMES, make_train

    config, members = configs[0], len(configs)
    main = parallel.is_main()
    every_ckpt = checkpoint_every or config.eval_every
    t0 = time.perf_counter()
    trainer = make_train(config)
    for other in configs[1:]:
        configs_module.validate(other)
    width = members * seeds
    placement = parallel.place_seeds(width)
    if placement.note:
        note(placement.note)
    seed_sharding, replicated = placement.seeds, placement.replicated
    keys = placement.put(jnp.tile(jax.random.split(jax.random.PRNGKey(seed), seeds), (members, 1)))
    hp = placement.put(hyperparams.stack(configs, seeds)) if traced else None
    # A single run calls the trainer without `hp`, so a custom Trainer without it works too.
    takes_hp = (lambda fn: fn) if traced else (lambda fn: lambda *args: fn(*args[:-1]))
    start_v = placement.jit(jax.vmap(takes_hp(trainer.start)), in_shardings=(seed_sharding, seed_sharding),
                            out_shardings=seed_sharding)
    chunk_jit = lambda fn: placement.jit(jax.vmap(fn, in_axes=(0, None, 0)),
                                         in_shardings=(seed_sharding, replicated, seed_sharding),
                                         out_shardings=seed_sharding, donate_argnums=0)
    chunk_v, last_chunk_v = chunk_jit(takes_hp(trainer.run_chunk)), chunk_jit(takes_hp(trainer.run_last_chunk))
    part = lambda tree, i: jax.tree.map(lambda x: x[i * seeds:(i + 1) * seeds], tree)  # member i's seeds
    # A probe sees each config's own agent (its hyper-parameters as constants), on that config's seeds.
    probe_fns = [jax.jit(jax.vmap(probe(make_train(c) if members > 1 else trainer))) for c in configs] \
        if probe is not None else None
    # Probe keys are fixed per evaluation and seed, independent of training's own keys.
    probe_keys = lambda i: jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed + 1), i), seeds)

    def chunk_index(c: int):  # replicated over the mesh: every device runs the same chunk
        return placement.put(np.int32(c), replicated) if placement.mesh is not None else jnp.int32(c)

    def host_row(state, row, i: int) -> dict:
        row = parallel.to_host(row)
        row = {name: np.asarray(row[name]) for name in METRIC_NAMES}  # the documented column order
        if probe_fns is not None:
            probed = [parallel.to_host(fn(state if members == 1 else part(state, m), probe_keys(i)))
                      for m, fn in enumerate(probe_fns)]
            row.update({k: np.concatenate([np.asarray(p[k]) for p in probed]) for k in probed[0]})
        return row

    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), jax.eval_shape(start_v, keys, hp)[0])
    abstract_member = jax.tree.map(lambda s: jax.ShapeDtypeStruct((seeds,) + s.shape[1:], s.dtype), abstract)
    files: list[run_files.RunFiles] = []

    def close_all() -> None:
        for f in files:
            f.close()

    held = {}  # process 0's restored host state, until it is placed on the devices

    def restore():
        if not resume:
            return None
        try:
            found = run_files.restore_together(files, abstract_member, note, start_if_none)
        except run_files.Unrestorable as e:
            return {"error": str(e)}
        if found is None:
            return None
        states = [state for state, _ in found]
        held["state"] = states[0] if members == 1 else jax.tree.map(lambda *x: np.concatenate(x), *states)
        held["progress"] = [progress for _, progress in found]
        return {"progress": dataclasses.asdict(found[0][1])}

    try:
        if main:
            for c, run_dir in zip(configs, run_dirs):
                files.append(run_files.RunFiles.open(run_dir, c, seeds, seed, keep))
        found = restore() if main else None
        found = parallel.broadcast_json(found)
        if found is not None and "error" in found:
            raise ResumeRefused(found["error"])
        if found is None:
            settings = run_settings if isinstance(run_settings, list) else [run_settings] * members
            for f, extra in zip(files, settings):
                f.start_fresh({**(extra or {}), "seeds": seeds, "seed": seed})
            state, first_row = start_v(keys, hp)
            first, train_s, wall_before, resumed_from = 0, 0.0, 0.0, None
        else:
            done = checkpoint.Progress(**found["progress"])
            for f, progress in zip(files, held.pop("progress", [])):
                note(f"resuming {f.run_dir} at env step {progress.env_step}/{config.total_steps} "
                     f"({progress.metrics_rows} metrics rows kept)")
                f.continue_from(progress)
            state = placement.put(parallel.broadcast_tree(held.pop("state", None), abstract))
            first, train_s, wall_before, resumed_from = done.next_chunk, done.train_s, done.wall_s, done.env_step
        if tensorboard:
            for f in files:
                f.start_tensorboard(resumed_from)
    except BaseException:
        close_all()
        raise

    every = config.eval_every
    steps_done = lambda chunks: 0 if chunks == 0 else config.chunk_end(chunks - 1)  # env steps after `chunks`
    stopped_early = False
    ckpt_s = 0.0

    def record(env_step: int, row: dict) -> None:
        for i, f in enumerate(files):
            f.record(env_step, part(row, i))
        for i, c in enumerate(configs):
            member_row = part(row, i)
            problems = divergence.non_finite(member_row)
            if not problems:
                continue
            learns_model = c.spec.uses_model and c.model == "learned"
            learns_reward = c.spec.uses_model and c.reward == "learned"
            message = divergence.describe(env_step, member_row, problems, learns_model, learns_reward)
            if members > 1:
                message = f"{run_dirs[i]}: {message}"
            if on_divergence == "stop":
                last = files[i].last_ckpt if files else None
                where = (f"the newest checkpoint, from before it, is at env step {last}"
                         if last is not None else "no checkpoint was written before it")
                raise Diverged(f"{message}. Metrics rows up to this step are in "
                               f"{run_dirs[i] / metrics_io.METRICS_FILE}; {where}", env_step)
            note(f"WARNING: {message}; the run goes on")

    def save(chunks_done: int) -> None:
        host = parallel.to_host(state)  # every process takes part when the state spans hosts
        wall = wall_before + time.perf_counter() - t0
        for i, f in enumerate(files):
            f.save(host if members == 1 else part(host, i), steps_done(chunks_done), chunks_done, train_s, wall)

    report = lambda env_step, row: progress_fn(ChunkReport(
        env_step=env_step, total_steps=config.total_steps, first_env_step=steps_done(first), seeds=width, row=row,
        train_s=train_s, wall_s=wall_before + time.perf_counter() - t0, state=state)) if progress_fn is not None else None
    try:
        if found is None:
            record(0, host_row(state, first_row, 0))
        # Compile ahead of time: the chunk index is a traced int32 scalar, so this one executable
        # serves every chunk (a shorter last chunk has its own) and compile time stays out of the
        # steps/s figures.
        n = config.num_chunks
        run_chunk = chunk_v.lower(state, chunk_index(0), hp).compile()
        shorter_last = config.chunk_steps(n - 1) < every
        run_last = last_chunk_v.lower(state, chunk_index(n - 1), hp).compile() if shorter_last else run_chunk
        compile_s = time.perf_counter() - t0
        report(steps_done(first), None)
        c = first
        for c in range(first, n):
            t = time.perf_counter()
            state, row = (run_last if c == n - 1 else run_chunk)(state, chunk_index(c), hp)
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
        close_all()
    final = parallel.to_host(state)
    end_step = config.chunk_end(c) if config.num_chunks > first else steps_done(first)
    result = lambda final_state: RunResult(
        state=final_state, env_step=end_step, stopped_early=stopped_early, resumed_from=resumed_from,
        train_s=train_s, wall_s=wall_before + time.perf_counter() - t0, compile_s=compile_s,
        checkpoint_s=ckpt_s, devices=placement.devices)
    return [result(final)] if members == 1 else [result(part(final, i)) for i in range(members)]
