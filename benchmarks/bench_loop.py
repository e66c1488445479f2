"""Loop-level benchmarks: the jitted training loop's env steps/s per algorithm and size, seed
scaling, and peak memory."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from bench_common import Settings, compile_timed, log, rss_peak_bytes, summary, timed_call
from magejax import configs, envs
from magejax import train as train_lib

def _loop_reps(compiled, state, s: Settings, first_index: int, chunk_steps: int):
    """Time chunks first_index, first_index+1, ... until min reps and (max reps or budget)."""
    times, i, t_start = [], first_index, time.perf_counter()
    while True:
        (state, _), t = timed_call(compiled, state, jnp.asarray(i, jnp.int32))
        times.append(t)
        i += 1
        n = len(times)
        if n >= s.loop_min_reps and (n >= s.loop_max_reps
                                     or time.perf_counter() - t_start > s.loop_budget_s):
            return times


def _loop_config(algo: str, chunk: int, s: Settings, size: str = "pendulum") -> tuple[configs.Config, int]:
    """The loop's config at `size` with one evaluation per `chunk` steps, and the number of
    untimed warm-up chunks. HalfCheetah's 1000 random warm-up steps are cut to one chunk: they
    never update the agent, and timing starts after them either way."""
    preset_size = "tiny" if s.quick else "paper"
    base = configs.preset(size, algo, size=preset_size)
    warmup = chunk if size == "halfcheetah" else base.warmup_steps
    warm_chunks = max(1, -(-warmup // chunk))
    total = chunk * (warm_chunks + s.loop_max_reps + 1)
    return configs.preset(size, algo, size=preset_size, eval_every=chunk, total_steps=total,
                          warmup_steps=warmup), warm_chunks


def bench_loop(s: Settings, key: jax.Array) -> dict:
    out = dict(sizes={}, skipped={})
    for size in s.sizes:
        if size not in envs.names():
            out["skipped"][size] = "environment not registered (magejax.envs.names())"
            continue
        chunk = s.loop_chunk_halfcheetah if size == "halfcheetah" else s.loop_chunk
        entry = out["sizes"][size] = dict(chunk_env_steps=chunk, algos={})
        for algo in s.algos:
            log(f"loop_throughput {size} {algo}")
            config, warm_chunks = _loop_config(algo, chunk, s, size)
            trainer = train_lib.make_train(config)
            state, _ = jax.block_until_ready(jax.jit(trainer.start)(key))
            compiled, compile_times = compile_timed(trainer.run_chunk, state, jnp.asarray(0, jnp.int32))
            for i in range(warm_chunks):  # covers the random-action warm-up steps, which skip updates
                (state, _), t = timed_call(compiled, state, jnp.asarray(i, jnp.int32))
                compile_times.setdefault("first_call_s", t)
            times = _loop_reps(compiled, state, s, warm_chunks, chunk)
            sec = summary(times, scale=1.0)
            # The evaluation alone, on the trained state: each chunk ends with one, so the
            # training-only rate and the rate at the paper's evaluation interval follow from it.
            evaluate, _ = compile_timed(trainer.evaluate, state, jax.random.PRNGKey(1))
            eval_s = summary([timed_call(evaluate, state, jax.random.PRNGKey(i))[1] for i in range(3)], scale=1.0)
            train_s = max(sec["median"] - eval_s["median"], 1e-9)
            paper_every = configs.preset(size, algo).eval_every
            entry["algos"][algo] = dict(
                s_per_chunk=sec, env_steps_per_s=chunk / sec["median"], s_per_evaluation=eval_s,
                train_env_steps_per_s=chunk / train_s,
                paper_schedule_env_steps_per_s=paper_every / (paper_every * train_s / chunk + eval_s["median"]),
                paper_eval_every=paper_every,
                updates_per_env_step=config.num_updates, model_train_every=config.model_train_every,
                model_train_batches=config.model_train_batches, eval_episodes=config.eval_episodes,
                warmup_steps=config.warmup_steps, warmup_chunks_untimed=warm_chunks, compile=compile_times)
    out["notes"] = (
        "env_steps_per_s: jax.jit(Trainer.run_chunk) after warm-up chunks (the random-action warm-up "
        "steps are never timed); it includes everything the loop does per step: acting, buffer "
        "insert, the agent updates (updates_per_env_step each), model training every "
        "model_train_every steps, and the one evaluation (eval_episodes episodes) at the chunk's end. "
        "s_per_evaluation: jax.jit(Trainer.evaluate) alone (median of 3). train_env_steps_per_s: the "
        "chunk without its evaluation; paper_schedule_env_steps_per_s: with one evaluation per "
        "paper_eval_every steps instead of per chunk. HalfCheetah: the real Brax env at its default "
        "backend, warm-up cut to one chunk (see _loop_config).")
    return out


def bench_seeds(s: Settings, key: jax.Array, size: str = "pendulum") -> dict:
    config, warm_chunks = _loop_config("mage", s.seed_chunk, s, size)
    trainer = train_lib.make_train(config)
    out = dict(env=size, algo="mage", chunk_env_steps=s.seed_chunk, seeds={})
    # One (compiled) start for the most seeds; its first n states serve as the n-seed run.
    all_states, _ = jax.block_until_ready(jax.jit(jax.vmap(trainer.start))(
        jax.random.split(key, max(s.seeds))))
    for n in s.seeds:
        log(f"seed_scaling {n} seeds")
        state = jax.block_until_ready(jax.tree.map(lambda x: x[:n], all_states))
        run = jax.vmap(trainer.run_chunk, in_axes=(0, None))
        compiled, compile_times = compile_timed(run, state, jnp.asarray(0, jnp.int32))
        for i in range(warm_chunks):
            (state, _), t = timed_call(compiled, state, jnp.asarray(i, jnp.int32))
            compile_times.setdefault("first_call_s", t)
        sec = summary(_loop_reps(compiled, state, s, warm_chunks, s.seed_chunk), scale=1.0)
        per_seed = s.seed_chunk / sec["median"]
        out["seeds"][str(n)] = dict(s_per_chunk=sec, env_steps_per_s_per_seed=per_seed,
                                    env_steps_per_s_total=n * per_seed, compile=compile_times)
    base = out["seeds"].get("1")
    if base:
        for entry in out["seeds"].values():
            entry["total_speedup_vs_1_seed"] = entry["env_steps_per_s_total"] / base["env_steps_per_s_total"]
    out["notes"] = "jax.jit(jax.vmap(Trainer.run_chunk, in_axes=(0, None))): all seeds in one program."
    return out


def peak_memory() -> dict:
    out = dict(rss_peak_bytes=rss_peak_bytes(), device_peak_bytes=None, device_bytes_limit=None)
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        stats = None
    if stats:
        out.update(device_peak_bytes=stats.get("peak_bytes_in_use"),
                   device_bytes_limit=stats.get("bytes_limit"))
    out["notes"] = ("rss_peak_bytes: resource.getrusage ru_maxrss of the whole benchmark process at "
                    "its end (all measurements that ran). device_*: jax.Device.memory_stats(), null "
                    "where the backend (e.g. CPU) does not report it.")
    return out


# ============================================================================ table
