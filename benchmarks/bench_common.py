"""Shared pieces of the benchmarks: settings, timing and FLOP helpers, the machine header, and
the problems (configs, random batches, model states) every measurement runs on."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from magejax import configs, envs
from magejax.agents import td3 as update
from magejax.models import normalization
from magejax.envs.base import Env
from magejax.replay import Transition

SCHEMA_VERSION = 2  # 2: loop_throughput per size (pendulum, halfcheetah), with the evaluation timed apart
MEASUREMENTS = ("matmul_peak", "update_step", "precision", "model_train_step", "hlo_check", "loop_throughput",
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
