"""Which Brax environments and physics backends exist, and the default backend per device.

Kept free of any `brax` import so that listing names, validating a config and building the
CLI's help do not pay Brax's import time (~2.5 s); `brax_suite` builds the environments.
"""
from __future__ import annotations

import jax

BACKENDS = ("generalized", "mjx", "spring", "positional")
"""Brax 0.14's physics pipelines. `spring` and `positional` change the simulation itself
(Brax's env constructors switch to smaller timesteps, more substeps and other actuator gears for
them), so their returns are not comparable with `generalized`/`mjx` ones."""

# brax/envs/swimmer.py raises for anything but `generalized` (its fluid forces exist only there).
_ONLY_GENERALIZED = ("generalized",)

SUPPORTED_BACKENDS: dict[str, tuple[str, ...]] = {
    "halfcheetah": BACKENDS,
    "hopper": BACKENDS,
    "walker2d": BACKENDS,
    "ant": BACKENDS,
    "swimmer": _ONLY_GENERALIZED,
    "pusher": BACKENDS,
    "reacher": BACKENDS,
    "inverted_pendulum": BACKENDS,
    "inverted_double_pendulum": BACKENDS,
    "humanoid": BACKENDS,
}
"""Brax environment name -> the backends it runs on."""

NAMES = tuple(SUPPORTED_BACKENDS)

# Measured on the 2-core CPU (see `default_backend`).
_CPU_DEFAULT = "generalized"
# Unmeasured (no GPU here): Brax's maintainers describe MJX as "a strictly more comprehensive and
# performant version of the Brax generalized pipeline" (google/brax discussion #409) and point
# users to it for accelerators.
_ACCELERATOR_DEFAULT = "mjx"


def default_backend(name: str, platform: str | None = None) -> str:
    """The backend `make(name)` uses when none is given, for `platform` (default: JAX's device).

    CPU: `generalized`. Measured with benchmarks/env_bench.py (100 random-action steps with
    resets, default XLA options, 2-core CPU shared with other jobs, load 2.5-5, 3 repetitions),
    env steps/s generalized vs mjx: hopper 454 vs 619 (1 env), 1825 vs 1404 (8 envs under vmap),
    4285 vs 837 (256); halfcheetah 177 vs 237 (1), 962 vs 552 (256). `mjx` is ~1.3x faster for a
    lone env, `generalized` from about 8 envs on (1.3x at 8, 1.7-5x at 256), and a run with several
    seeds steps one env per seed under vmap; env steps are also cheap next to the agent updates.
    GPU/TPU: `mjx`, per Brax's own guidance; not measured (no accelerator was available).
    Note for differentiating through the simulator: reverse-mode `jax.grad` through `mjx` needs
    the constraint solver to run a fixed number of iterations (MJX uses a `while_loop` unless
    `opt.iterations == 1`, which Brax sets only for ant and humanoid); `generalized` has no such
    limit, so MAGE with `model="oracle"` on a GPU wants `env_backend="generalized"` for most envs.
    Environments that do not support the device's default fall back to their first backend.
    """
    platform = jax.default_backend() if platform is None else platform
    preferred = _CPU_DEFAULT if platform == "cpu" else _ACCELERATOR_DEFAULT
    supported = SUPPORTED_BACKENDS[name]
    return preferred if preferred in supported else supported[0]
