#!/usr/bin/env python
"""Performance benchmarks of magejax: update steps, model training, the jitted loop, seed scaling.

    python benchmarks/bench.py [--quick] [--out benchmarks/results] [--only NAME ...]

Writes one JSON file per run, `<out>/bench-<hostname>-<UTC timestamp>.json`, and prints a table.
Every timing is taken after compilation and warm-up calls, with `jax.block_until_ready`, and is
summarised by its median, p10 and p90 over the repetitions. FLOPs are XLA's own count
(`compiled.cost_analysis()["flops"]` of the optimised HLO), not a hand count. See
benchmarks/README.md for what each measurement means.

`--quick` uses CI-sized networks (the "tiny" preset) and 3 repetitions: it checks that the
script works, its numbers say nothing about the paper-size cost.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from magejax import configs, envs, normalization, update
from magejax import train as train_lib
from magejax.envs.base import Env
from magejax.replay import Transition

SCHEMA_VERSION = 2  # 2: loop_throughput per size (pendulum, halfcheetah), with the evaluation timed apart
MEASUREMENTS = ("matmul_peak", "update_step", "model_train_step", "hlo_check", "loop_throughput",
                "seed_scaling", "peak_memory")
ALGOS = ("td3", "dyna", "mage")
SIZES = ("pendulum", "halfcheetah")
REPO = Path(__file__).resolve().parent.parent
QUICK_XLA_FLAG = "--xla_backend_optimization_level=0"

@dataclasses.dataclass(frozen=True)
class Settings:
    quick: bool
    reps: int               # repetitions of every micro-benchmark (after warm-up)
    warmup: int             # untimed calls after compilation
    matmul_n: int
    loop_chunk: int         # env steps per timed chunk in loop_throughput (Pendulum)
    loop_chunk_halfcheetah: int  # the same for HalfCheetah, whose paper-size steps cost ~50x more
    seed_chunk: int         # env steps per timed chunk in seed_scaling
    loop_min_reps: int      # loop-level measurements repeat at least this often ...
    loop_max_reps: int      # ... and at most this often,
    loop_budget_s: float    # stopping early (but not before loop_min_reps) after this long
    seeds: tuple[int, ...]
    sizes: tuple[str, ...]
    algos: tuple[str, ...]


def make_settings(args: argparse.Namespace) -> Settings:
    quick = args.quick
    reps = args.reps or (3 if quick else 30)
    loop_min = args.loop_reps or (3 if quick else 5)
    return Settings(quick=quick, reps=reps, warmup=2 if quick else 5,
                    matmul_n=args.matmul_n or (256 if quick else 2048),
                    loop_chunk=args.loop_chunk or (50 if quick else 200),
                    loop_chunk_halfcheetah=args.loop_chunk_halfcheetah or (10 if quick else 50),
                    seed_chunk=args.seed_chunk or (50 if quick else 100),
                    loop_min_reps=loop_min, loop_max_reps=max(loop_min, 3 if quick else 20),
                    loop_budget_s=0.0 if quick else args.loop_budget,
                    seeds=tuple(args.seeds or ((1, 4) if quick else (1, 4, 16))), sizes=tuple(args.sizes), algos=tuple(args.algos))


# ============================================================================ helpers
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summary(seconds: list[float], scale: float = 1e3) -> dict:
    """median, p10, p90, mean, min of `seconds` times `scale` (ms by default), and the count."""
    x = np.asarray(seconds, dtype=np.float64) * scale
    return dict(median=float(np.median(x)), p10=float(np.percentile(x, 10)),
                p90=float(np.percentile(x, 90)), mean=float(np.mean(x)), min=float(np.min(x)),
                n=int(x.size))


def xla_flops(compiled) -> float | None:
    """FLOPs of a compiled (or lowered) program according to XLA's cost analysis, None if unavailable.

    `cost_analysis()` returns a dict in recent JAX and a list of dicts (one per program) in older
    versions; the 'flops' key can be missing or negative (unknown) on some backends.
    """
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 — some backends do not implement it
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis:
        return None
    flops = analysis.get("flops")
    if flops is None or not math.isfinite(float(flops)) or float(flops) < 0:
        return None
    return float(flops)


def compile_timed(fn: Callable, *args, **jit_kwargs) -> tuple[Any, dict]:
    """jit-lower-compile `fn` for `args`; returns the executable and the lower/compile seconds."""
    t0 = time.perf_counter()
    lowered = jax.jit(fn, **jit_kwargs).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return compiled, dict(lower_s=t1 - t0, compile_s=t2 - t1)


def timed_call(compiled, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, time.perf_counter() - t0


def keys_for(key: jax.Array, n: int) -> list[jax.Array]:
    keys = jax.block_until_ready(jax.random.split(key, n))
    return [jax.block_until_ready(k) for k in keys]


def rss_peak_bytes() -> int:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# ============================================================================ header
def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def git_info() -> dict:
    def git(*cmd):
        return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        return dict(commit=git("rev-parse", "HEAD"), dirty=bool(git("status", "--porcelain", "--untracked-files=no")))
    except Exception:  # noqa: BLE001 — not a checkout, or git missing
        return dict(commit=None, dirty=None)


def header(now: datetime.datetime, settings: Settings) -> dict:
    import flax
    import jaxlib
    import optax

    device = jax.devices()[0]
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return dict(
        machine=dict(hostname=socket.gethostname(), platform=platform.platform(),
                     python=platform.python_version(), cpu_model=cpu_model(), cpu_count=os.cpu_count(),
                     cpu_affinity=affinity, load_average_at_start=list(os.getloadavg())),
        versions=dict(jax=jax.__version__, jaxlib=jaxlib.__version__, flax=flax.__version__,
                      optax=optax.__version__, numpy=np.__version__),
        jax=dict(default_backend=jax.default_backend(), device_kind=device.device_kind,
                 device_count=jax.device_count(), xla_flags=os.environ.get("XLA_FLAGS"),
                 enable_x64=bool(jax.config.jax_enable_x64)),
        date_utc=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        git=git_info(),
        settings=dataclasses.asdict(settings),
    )


# ============================================================================ problem setup
def halfcheetah_standin() -> Env:
    """obs 18, action 6, HalfCheetah-style differentiable reward; cannot be reset or stepped.
    (checkpoint_bench.py builds its state from it; bench.py uses the real Brax HalfCheetah.)"""

    def not_available(*_):
        raise NotImplementedError("the HalfCheetah stand-in only provides reward_fn and done_fn")

    return Env(name="halfcheetah-standin", obs_size=18, action_size=6, episode_length=1000,
               reset=not_available, step=not_available,
               reward_fn=lambda obs, action, next_obs: next_obs[0] - 0.1 * jnp.sum(action**2),
               done_fn=lambda next_obs: jnp.zeros(()))


def size_problem(size: str, algo: str, quick: bool) -> tuple[configs.Config, Env, str]:
    """The config, env and a note on how they were built, for one (size, algo)."""
    preset_size = "tiny" if quick else "paper"
    config = configs.preset(size, algo, size=preset_size)
    env = envs.make(size, backend=config.env_backend)
    return config, env, (f"configs.preset({size!r}, {algo!r}, size={preset_size!r}) with the {size} env "
                         f"(backend {config.env_backend or 'n/a'}), obs {env.obs_size}, action {env.action_size}")


def random_batch(key: jax.Array, batch_size: int, env: Env) -> Transition:
    k_obs, k_act, k_rew, k_next = jax.random.split(key, 4)
    obs = jax.random.normal(k_obs, (batch_size, env.obs_size))
    action = jax.random.uniform(k_act, (batch_size, env.action_size), minval=-1.0, maxval=1.0)
    next_obs = obs + 0.1 * jax.random.normal(k_next, obs.shape)
    zeros = jnp.zeros(batch_size)
    return jax.block_until_ready(Transition(obs=obs, action=action, reward=jax.random.normal(k_rew, (batch_size,)),
                                            next_obs=next_obs, terminated=zeros, truncated=zeros))


def model_state_for(model, key: jax.Array, batch: Transition):
    """`model.init(key)` with its normalisers set from `batch`."""
    state = model.init(key)
    inputs = jnp.concatenate([batch.obs, batch.action], axis=-1)
    input_stats = normalization.update(normalization.init(inputs.shape[-1]), inputs)
    delta_stats = normalization.update(normalization.init(batch.obs.shape[-1]), batch.next_obs - batch.obs)
    return jax.block_until_ready(model.with_stats(state, input_stats, delta_stats))


def problem_inputs(config: configs.Config, env: Env, key: jax.Array):
    agent = update.make_agent(config, env)
    k_batch, k_agent, k_model = jax.random.split(key, 3)
    batch = random_batch(k_batch, config.batch_size, env)
    state = jax.block_until_ready(agent.init(k_agent))
    model = model_state_for(agent.model, k_model, batch) if agent.model is not None else None
    return agent, state, model, batch


def config_summary(config: configs.Config, env: Env) -> dict:
    return dict(obs_size=env.obs_size, action_size=env.action_size, batch_size=config.batch_size,
                critic_hidden=list(config.critic_hidden), actor_hidden=list(config.actor_hidden),
                ensemble_size=config.ensemble_size, model_hidden=list(config.model_hidden),
                model_batch_size=config.model_batch_size, policy_delay=config.policy_delay)


# ============================================================================ measurements
def bench_matmul(s: Settings, key: jax.Array) -> dict:
    n = s.matmul_n
    ka, kb = jax.random.split(key)
    a = jax.block_until_ready(jax.random.normal(ka, (n, n), jnp.float32))
    b = jax.block_until_ready(jax.random.normal(kb, (n, n), jnp.float32))
    compiled, compile_times = compile_timed(jnp.matmul, a, b)
    for _ in range(s.warmup):
        timed_call(compiled, a, b)
    times = [timed_call(compiled, a, b)[1] for _ in range(max(s.reps, 20))]
    flops = 2.0 * n**3
    ms = summary(times)
    return dict(n=n, dtype="float32", flops=flops, xla_flops=xla_flops(compiled), ms=ms,
                gflops=dict(median=flops / ms["median"] / 1e6, best=flops / ms["min"] / 1e6),
                compile=compile_times)


def bench_update_one(config: configs.Config, env: Env, s: Settings, key: jax.Array, peak_gflops) -> dict:
    agent, state, model, batch = problem_inputs(config, env, key)
    true, false = jnp.asarray(True), jnp.asarray(False)
    step_key = jax.random.PRNGKey(1)
    compiled, compile_times = compile_timed(agent.update_step, state, model, batch, step_key, true)
    keys = keys_for(jax.random.PRNGKey(2), 2 * (s.warmup + s.reps) + 1)
    (state, _), compile_times["first_call_s"] = timed_call(compiled, state, model, batch, keys[-1], true)

    pairs, with_actor, critic_only = [], [], []
    for i in range(s.warmup + s.reps):
        (state, _), t_actor = timed_call(compiled, state, model, batch, keys[2 * i], true)
        (state, _), t_critic = timed_call(compiled, state, model, batch, keys[2 * i + 1], false)
        if i >= s.warmup:
            pairs.append((t_actor + t_critic) / 2)
            with_actor.append(t_actor)
            critic_only.append(t_critic)

    # FLOPs per branch: the program with a constant update_actor has only one branch left
    # (cost analysis of the `lax.cond` executable counts one branch, the costlier). Normally the
    # optimised (compiled) HLO is counted; --quick counts the lowered HLO to save two compilations.
    flops = dict(stage="lowered (pre-optimisation HLO)" if s.quick else "compiled (optimised HLO)")
    for name, pred in (("with_actor", True), ("critic_only", False)):
        lowered = jax.jit(lambda st, m, b, k, p=pred: agent.update_step(st, m, b, k, p)).lower(
            state, model, batch, step_key)
        flops[name] = xla_flops(lowered) if s.quick else xla_flops(lowered.compile())
    flops["cond_executable"] = xla_flops(compiled)
    flops["per_update_mean"] = (None if None in (flops["with_actor"], flops["critic_only"])
                                else (flops["with_actor"] + flops["critic_only"]) / 2)

    ms = summary(pairs)
    achieved = None if flops["per_update_mean"] is None else flops["per_update_mean"] / ms["median"] / 1e6
    return dict(ms_per_update=ms, ms_with_actor=summary(with_actor), ms_critic_only=summary(critic_only),
                compile=compile_times, flops=flops, gflops_achieved=achieved,
                fraction_of_matmul_peak=(None if achieved is None or not peak_gflops
                                         else achieved / peak_gflops))


def bench_update(s: Settings, key: jax.Array, peak_gflops) -> dict:
    out = {}
    for size in s.sizes:
        entry = dict(algos={})
        for algo in s.algos:
            config, env, note = size_problem(size, algo, s.quick)
            entry.setdefault("config", config_summary(config, env))
            entry.setdefault("problem", note.replace(repr(algo), "<algo>"))
            log(f"update_step {size} {algo}")
            entry["algos"][algo] = bench_update_one(config, env, s, key, peak_gflops)
        med = {a: r["ms_per_update"]["median"] for a, r in entry["algos"].items()}
        entry["ratios"] = {f"{a}/{b}": med[a] / med[b] for a, b in (("mage", "dyna"), ("mage", "td3"),
                                                                  ("dyna", "td3"))
                           if a in med and b in med}
        out[size] = entry
    return out


def bench_model_train(s: Settings, key: jax.Array) -> dict:
    out = {}
    for size in s.sizes:
        config, env, note = size_problem(size, "mage", s.quick)
        log(f"model_train_step {size}")
        model = update.make_agent(config, env).model
        e, n = config.ensemble_size, config.model_batch_size
        flat = random_batch(key, e * n, env)
        state = model_state_for(model, jax.random.PRNGKey(3), flat)
        obs, action, next_obs = (x.reshape(e, n, -1) for x in (flat.obs, flat.action, flat.next_obs))
        compiled, compile_times = compile_timed(model.train_step, state, obs, action, next_obs)
        (state, _), compile_times["first_call_s"] = timed_call(compiled, state, obs, action, next_obs)
        times = []
        for i in range(s.warmup + s.reps):
            (state, _), t = timed_call(compiled, state, obs, action, next_obs)
            if i >= s.warmup:
                times.append(t)
        ms = summary(times)
        flops = xla_flops(compiled)
        out[size] = dict(ensemble_size=e, samples_per_member=n, model_hidden=list(config.model_hidden),
                         obs_size=env.obs_size, action_size=env.action_size, ms=ms, compile=compile_times,
                         flops=flops, gflops_achieved=None if flops is None else flops / ms["median"] / 1e6,
                         ms_per_model_training_phase=ms["median"] * config.model_train_batches,
                         model_train_batches=config.model_train_batches)
    return out


def bench_hlo_check(s: Settings, key: jax.Array) -> dict:
    """FLOPs of the MAGE and Dyna critic-loss gradients relative to one forward model sample.

    Model-attributable FLOPs are isolated by a difference: the same programs with every model
    layer 1 unit wide (same depth, same critic/actor) cost the non-model part only.
    """
    out = {}
    for size in s.sizes:
        log(f"hlo_check {size}")
        flops = {}
        for model_kind in ("model", "min_model"):
            for algo in ("mage", "dyna"):
                config, env, _ = size_problem(size, algo, s.quick)
                if model_kind == "min_model":
                    config = config.replace(model_hidden=(1,) * len(config.model_hidden))
                agent, state, model, batch = problem_inputs(config, env, key)
                grad = jax.grad(lambda p, st, m, b, k: agent.critic_loss(p, st, m, b, k)[0])
                compiled, _ = compile_timed(grad, state.critic_params, state, model, batch, key)
                flops[f"{algo}_critic_grad_{model_kind}"] = xla_flops(compiled)
            action = agent.policy(state, batch.obs)
            compiled, _ = compile_timed(agent.model.sample_next_obs, model, batch.obs, action, key)
            flops[f"model_sample_forward_{model_kind}"] = xla_flops(compiled)

        entry = dict(flops=flops, batch_size=config.batch_size, model_hidden=list(
            size_problem(size, "mage", s.quick)[0].model_hidden))
        f = flops
        if None not in f.values():
            fwd = f["model_sample_forward_model"]
            fwd_model_part = fwd - f["model_sample_forward_min_model"]
            mage_model_part = f["mage_critic_grad_model"] - f["mage_critic_grad_min_model"]
            dyna_model_part = f["dyna_critic_grad_model"] - f["dyna_critic_grad_min_model"]
            entry.update(
                mage_over_dyna_extra_in_model_forwards=(f["mage_critic_grad_model"]
                                                        - f["dyna_critic_grad_model"]) / fwd,
                mage_model_part_in_model_forwards=mage_model_part / fwd_model_part,
                dyna_model_part_in_model_forwards=dyna_model_part / fwd_model_part,
                mage_over_dyna_non_model_extra_flops=(f["mage_critic_grad_min_model"]
                                                      - f["dyna_critic_grad_min_model"]),
            )
        out[size] = entry
    out["method"] = (
        "XLA cost_analysis FLOPs of jax.grad(agent.critic_loss) w.r.t. the online critic parameters "
        "(mage and dyna) and of agent.model.sample_next_obs alone (one forward model sample at the "
        "same batch). *_min_model: the same programs with every model hidden layer 1 unit wide; "
        "the difference (model minus min_model) is the model-attributable part. "
        "model_part_in_model_forwards = that part / the model-attributable FLOPs of one forward "
        "sample. A forward pass plus one backward pass to the action (what MAGE's ∇ₐy needs) is "
        "about 2; a forward only (Dyna) is about 1; differentiating the model a second time "
        "(w.r.t. the critic parameters through ∇ₐy) would add further model-sized passes.")
    return out


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


def bench_seeds(s: Settings, key: jax.Array) -> dict:
    config, warm_chunks = _loop_config("mage", s.seed_chunk, s)
    trainer = train_lib.make_train(config)
    out = dict(env="pendulum", algo="mage", chunk_env_steps=s.seed_chunk, seeds={})
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
def _fmt(x, spec=".3g") -> str:
    return "-" if x is None else format(x, spec)


def table(results: dict) -> str:
    lines = []
    add = lines.append
    if (r := results.get("matmul_peak")) and "error" not in r:
        add(f"matmul_peak      {r['n']}x{r['n']} f32: {_fmt(r['gflops']['median'], '.1f')} GFLOP/s median "
            f"({_fmt(r['ms']['median'])} ms), best {_fmt(r['gflops']['best'], '.1f')} GFLOP/s")
    if (r := results.get("update_step")) and "error" not in r:
        add("")
        add(f"{'update_step':<12} {'algo':<5} {'ms med':>9} {'p10':>9} {'p90':>9} {'actor':>9} "
            f"{'critic':>9} {'compile s':>9} {'MFLOP/upd':>10} {'GFLOP/s':>8} {'%peak':>6}")
        for size, entry in r.items():
            for algo, a in entry["algos"].items():
                ms = a["ms_per_update"]
                frac = a["fraction_of_matmul_peak"]
                flops = a["flops"]["per_update_mean"]
                add(f"{size:<12} {algo:<5} {ms['median']:9.3f} {ms['p10']:9.3f} {ms['p90']:9.3f} "
                    f"{a['ms_with_actor']['median']:9.3f} {a['ms_critic_only']['median']:9.3f} "
                    f"{a['compile']['compile_s']:9.2f} {_fmt(None if flops is None else flops / 1e6, '10.2f')} "
                    f"{_fmt(a['gflops_achieved'], '8.2f')} {_fmt(None if frac is None else 100 * frac, '6.1f')}")
            add(f"{size:<12} ratios " + ", ".join(f"{k} {v:.2f}" for k, v in entry["ratios"].items()))
    if (r := results.get("model_train_step")) and "error" not in r:
        add("")
        for size, m in r.items():
            add(f"model_train_step {size:<12} {m['ensemble_size']}x{m['samples_per_member']}: "
                f"{m['ms']['median']:.3f} ms (p10 {m['ms']['p10']:.3f}, p90 {m['ms']['p90']:.3f}), "
                f"compile {m['compile']['compile_s']:.2f} s, {_fmt(m['gflops_achieved'], '.2f')} GFLOP/s")
    if (r := results.get("hlo_check")) and "error" not in r:
        add("")
        for size, h in r.items():
            if size == "method":
                continue
            f = h["flops"]
            add(f"hlo_check {size:<12} MFLOPs: mage grad {_fmt(f['mage_critic_grad_model'] / 1e6 if f['mage_critic_grad_model'] else None, '.2f')}, "
                f"dyna grad {_fmt(f['dyna_critic_grad_model'] / 1e6 if f['dyna_critic_grad_model'] else None, '.2f')}, "
                f"model fwd {_fmt(f['model_sample_forward_model'] / 1e6 if f['model_sample_forward_model'] else None, '.2f')}")
            if "mage_model_part_in_model_forwards" in h:
                add(f"hlo_check {size:<12} mage-dyna extra = {h['mage_over_dyna_extra_in_model_forwards']:.2f} model fwds; "
                    f"model part: mage {h['mage_model_part_in_model_forwards']:.2f}, "
                    f"dyna {h['dyna_model_part_in_model_forwards']:.2f} model fwds")
    if (r := results.get("loop_throughput")) and "error" not in r:
        add("")
        for size, entry in r["sizes"].items():
            for algo, a in entry["algos"].items():
                add(f"loop_throughput  {size:<11} {algo:<5} {a['env_steps_per_s']:9.2f} env steps/s "
                    f"({entry['chunk_env_steps']}-step chunk {a['s_per_chunk']['median']:.3f} s, "
                    f"n={a['s_per_chunk']['n']}; eval {a['s_per_evaluation']['median']:.2f} s; training only "
                    f"{a['train_env_steps_per_s']:.2f}, at the paper's eval interval "
                    f"{a['paper_schedule_env_steps_per_s']:.2f}; compile {a['compile']['compile_s']:.1f} s)")
        for size, why in r["skipped"].items():
            add(f"loop_throughput  {size:<11} skipped: {why}")
    if (r := results.get("seed_scaling")) and "error" not in r:
        add("")
        for n, a in r["seeds"].items():
            add(f"seed_scaling     mage {n:>3} seeds {a['env_steps_per_s_per_seed']:9.1f} env steps/s/seed, "
                f"{a['env_steps_per_s_total']:9.1f} total (x{a.get('total_speedup_vs_1_seed', float('nan')):.2f}), "
                f"compile {a['compile']['compile_s']:.1f} s")
    if (r := results.get("peak_memory")) and "error" not in r:
        add("")
        dev = r["device_peak_bytes"]
        add(f"peak_memory      RSS {r['rss_peak_bytes'] / 2**20:.0f} MiB, device peak "
            f"{'n/a' if dev is None else f'{dev / 2**20:.0f} MiB'}")
    for name, r in results.items():
        if isinstance(r, dict) and "error" in r:
            add(f"{name}: ERROR {r['error']}")
    return "\n".join(lines)


# ============================================================================ main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes and 3 repetitions (a smoke test)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="directory for the JSON file")
    p.add_argument("--only", nargs="+", choices=MEASUREMENTS, metavar="NAME",
                   help=f"run only these measurements: {', '.join(MEASUREMENTS)}")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="problem sizes")
    p.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS),
                   help="algorithms for update_step and loop_throughput")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="seed counts for seed_scaling (default 1 4 16; 1 4 quick)")
    p.add_argument("--reps", type=int, default=None, help="micro-benchmark repetitions (default 30; 3 quick)")
    p.add_argument("--loop-reps", type=int, default=None,
                   help="minimum timed chunks for loop measurements (default 5; 3 quick)")
    p.add_argument("--loop-budget", type=float, default=120.0,
                   help="seconds after which loop measurements stop adding chunks beyond the minimum")
    p.add_argument("--loop-chunk", type=int, default=None,
                   help="env steps per timed chunk in loop_throughput (default 200; 50 quick)")
    p.add_argument("--loop-chunk-halfcheetah", type=int, default=None,
                   help="env steps per timed chunk of the HalfCheetah loop (default 50; 10 quick)")
    p.add_argument("--seed-chunk", type=int, default=None,
                   help="env steps per timed chunk in seed_scaling (default 100; 50 quick); on a small "
                        "CPU, 16 paper-size seeds take ~6 s per env step, so pass e.g. 20")
    p.add_argument("--full-opt", action="store_true",
                   help=f"with --quick: keep XLA's normal LLVM optimisation (quick sets {QUICK_XLA_FLAG})")
    p.add_argument("--matmul-n", type=int, default=None, help="matmul size (default 2048; 256 quick)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick and not args.full_opt:
        # Quick mode is a smoke test dominated by compilation: skip LLVM optimisation (about halves
        # compile time; HLO and so the FLOP counts are unaffected). Only effective before JAX
        # initialises its backend, i.e. when bench.py is the program being run.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_backend_optimization_level" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {QUICK_XLA_FLAG}".strip()
    settings = make_settings(args)
    selected = set(args.only or MEASUREMENTS)
    now = datetime.datetime.now(datetime.timezone.utc)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = dict(schema_version=SCHEMA_VERSION, header=header(now, settings),
                  flops_source="XLA cost_analysis()['flops']: of the optimised HLO (compiled executable) "
                               "everywhere, except update_step per-branch FLOPs under --quick (lowered HLO, "
                               "see flops.stage); matmul_peak uses the exact 2*n^3",
                  time_unit="ms unless a key says s", results={}, wall_s_by_measurement={})
    results = report["results"]
    key = jax.random.PRNGKey(0)
    t_all = time.perf_counter()

    def run(name: str, fn: Callable[[], dict]) -> None:
        if name not in selected:
            return
        t0 = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 — record it and carry on with the other measurements
            traceback.print_exc()
            results[name] = dict(error=f"{type(e).__name__}: {e}")
        report["wall_s_by_measurement"][name] = dict(wall_s=time.perf_counter() - t0,
                                                     rss_peak_bytes_after=rss_peak_bytes())

    run("matmul_peak", lambda: bench_matmul(settings, key))
    peak = results.get("matmul_peak", {}).get("gflops", {}).get("median")
    run("update_step", lambda: bench_update(settings, key, peak))
    run("model_train_step", lambda: bench_model_train(settings, key))
    run("hlo_check", lambda: bench_hlo_check(settings, key))
    run("loop_throughput", lambda: bench_loop(settings, key))
    run("seed_scaling", lambda: bench_seeds(settings, key))
    if "peak_memory" in selected:
        results["peak_memory"] = peak_memory()
    report["header"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["wall_s"] = time.perf_counter() - t_all

    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{socket.gethostname()}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    h = report["header"]
    print(f"magejax benchmark{' (--quick: tiny sizes, not paper numbers)' if settings.quick else ''} — "
          f"{h['machine']['hostname']}, {h['machine']['cpu_model']} x{h['machine']['cpu_count']}, "
          f"jax {h['versions']['jax']} {h['jax']['default_backend']}/{h['jax']['device_kind']}, "
          f"commit {(h['git']['commit'] or '?')[:10]}{'+dirty' if h['git']['dirty'] else ''}, "
          f"load {h['machine']['load_average_at_start'][0]:.2f}")
    print(table(results))
    print(f"\nwrote {path} ({report['wall_s']:.0f} s)")
    return 1 if any(isinstance(r, dict) and "error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
