"""The checkpoint benchmark's state measurement: size and save/restore time of the whole vmapped
TrainState at HalfCheetah paper sizes (or tiny ones), on a stand-in environment."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import bench_common as bench
from magejax import configs, replay
from magejax.agents import td3 as update
from magejax.envs.base import EnvState
from magejax.models import normalization
from magejax.runs import checkpoint, metrics_io
from magejax.train import TrainState


def log(msg: str) -> None:
    print(f"[checkpoint_bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def halfcheetah_config(quick: bool, buffer_size: int) -> configs.Config:
    fields = dict(configs._PAPER_SIZES["halfcheetah"])
    if quick:
        fields.update(configs.TINY)
    fields["buffer_size"] = buffer_size
    return configs.Config(env="halfcheetah", algo="mage", **fields)  # not validated: env unregistered


def make_state(config: configs.Config, seeds: int, seed: int = 0) -> TrainState:
    """A vmapped TrainState of `seeds` seeds: full buffer, every float leaf random."""
    env = bench.halfcheetah_standin()
    agent = update.make_agent(config, env)
    obs_size, act_size, cap = env.obs_size, env.action_size, config.buffer_size

    def init(key):
        k_agent, k_model, k_key = jax.random.split(key, 3)
        buffer = replay.init(cap, obs_size, act_size)
        buffer = buffer.replace(size=jnp.int32(cap), position=jnp.int32(0))
        inputs = jnp.zeros((1, obs_size + act_size))
        return TrainState(
            agent=agent.init(k_agent), model=agent.model.init(k_model), reward_model=None,
            input_stats=normalization.update(normalization.init(obs_size + act_size), inputs),
            delta_stats=normalization.update(normalization.init(obs_size), inputs[:, :obs_size]),
            buffer=buffer,
            # The stand-in has no simulator: physics is (qpos 9, qvel 9), as in HalfCheetah.
            env_state=EnvState(physics={"qpos": jnp.zeros(9), "qvel": jnp.zeros(9)},
                               obs=jnp.zeros(obs_size), reward=jnp.zeros(()), terminated=jnp.zeros(()),
                               truncated=jnp.zeros(()), time=jnp.zeros((), jnp.int32)),
            episode_return=jnp.zeros(()), last_return=jnp.zeros(()), key=k_key)

    # Only the layout comes from `init` (no compilation): the values are random anyway.
    abstract = jax.eval_shape(jax.vmap(init), jax.random.split(jax.random.PRNGKey(seed), seeds))
    rng = np.random.default_rng(seed)

    def leaf(x):
        if np.issubdtype(x.dtype, np.floating):
            return rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype)
        return np.zeros(x.shape, x.dtype)

    state = jax.tree.map(leaf, abstract)
    state = state.replace(buffer=state.buffer.replace(size=np.full(seeds, cap, np.int32)))
    return jax.block_until_ready(jax.device_put(state))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_state_one(config: configs.Config, seeds: int, reps: int, workdir: Path) -> dict:
    state = make_state(config, seeds, seed=seeds)
    leaves = jax.tree.leaves(state)
    state_bytes = int(sum(x.nbytes for x in leaves))
    parts = {
        "buffer": int(sum(x.nbytes for x in jax.tree.leaves(state.buffer))),
        "model_params": int(sum(x.nbytes for x in jax.tree.leaves(state.model.params))),
        "model_opt_state": int(sum(x.nbytes for x in jax.tree.leaves(state.model.opt_state))),
        "agent": int(sum(x.nbytes for x in jax.tree.leaves(state.agent))),
    }
    run_dir = workdir / f"seeds-{seeds}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    with metrics_io.MetricsWriter(run_dir) as w:  # a restore checks the rows a checkpoint covers
        w.write_rows(0, {"eval_return": np.zeros(seeds)})
    progress = lambda step: checkpoint.Progress(
        env_step=step, next_chunk=step // 1000, metrics_rows=w.rows, metrics_bytes=w.bytes,
        metrics_sha256=w.sha256(), train_s=0.0, wall_s=0.0)

    host_s, digest_s = [], []
    for _ in range(reps):
        t = time.perf_counter()
        host = jax.device_get(state)
        host_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        checkpoint.state_digest(host)
        digest_s.append(time.perf_counter() - t)
    del host

    ckpts = checkpoint.RunCheckpoints(run_dir, checkpoint.identity(config, seeds, 0), keep=2)
    save_s, disk = [], []
    for i in range(reps):
        step = 1000 * (i + 1)
        t = time.perf_counter()
        ckpts.save(state, progress(step))
        save_s.append(time.perf_counter() - t)
        disk.append(dir_bytes(ckpts.directory / str(step)))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    restore_s = []
    for _ in range(reps):
        t = time.perf_counter()
        restored, _ = ckpts.restore(abstract, log=log)
        jax.block_until_ready(restored)
        restore_s.append(time.perf_counter() - t)
    ckpts.close()
    assert checkpoint.state_digest(restored) == checkpoint.state_digest(state), "restore differs"
    shutil.rmtree(run_dir, ignore_errors=True)
    return dict(seeds=seeds, state_bytes=state_bytes, state_bytes_by_part=parts, leaves=len(leaves),
                disk_bytes=int(np.median(disk)), disk_over_state=float(np.median(disk)) / state_bytes,
                save_s=bench.summary(save_s, scale=1.0), restore_s=bench.summary(restore_s, scale=1.0),
                host_copy_s=bench.summary(host_s, scale=1.0), sha256_s=bench.summary(digest_s, scale=1.0),
                save_mb_per_s=state_bytes / 1e6 / float(np.median(save_s)),
                restore_mb_per_s=state_bytes / 1e6 / float(np.median(restore_s)))


def bench_state(args, workdir: Path) -> dict:
    config = halfcheetah_config(args.quick, args.buffer_size)
    out = dict(config=dict(obs_size=18, action_size=6, actor_hidden=list(config.actor_hidden),
                           critic_hidden=list(config.critic_hidden), ensemble_size=config.ensemble_size,
                           model_hidden=list(config.model_hidden), buffer_size=config.buffer_size,
                           algo=config.algo),
               problem=("HalfCheetah paper sizes (configs._PAPER_SIZES['halfcheetah'])" if not args.quick
                        else "tiny networks (--quick)") +
                       ", stand-in env of benchmarks/bench.py; full buffer; float leaves random",
               workdir=str(workdir), seeds={})
    for seeds in args.seeds:
        log(f"state: {seeds} seed(s)")
        out["seeds"][str(seeds)] = bench_state_one(config, seeds, args.reps, workdir)
    out["notes"] = ("save_s: RunCheckpoints.save (device_get, sha256 of every leaf and of magejax's "
                    "source, orbax write of state and meta, synchronous; the first save of a run "
                    "dir also creates it). restore_s: RunCheckpoints.restore of the newest step "
                    "(meta, layout check, orbax read, sha256 check, metrics prefix hash), read "
                    "back right after writing, so largely from the page cache. disk_bytes: the "
                    "step directory's files.")
    return out


# ============================================================================ overhead
