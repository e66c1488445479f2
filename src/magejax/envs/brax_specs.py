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

# Chosen after measuring both on the 2-core CPU (see `default_backend`).
_CPU_DEFAULT = "generalized"
# Unmeasured (no GPU here): Brax's maintainers describe MJX as "a strictly more comprehensive and
# performant version of the Brax generalized pipeline" (google/brax discussion #409) and point
# users to it for accelerators.
_ACCELERATOR_DEFAULT = "mjx"


def default_backend(name: str, platform: str | None = None) -> str:
    """The backend `make(name)` uses when none is given, for `platform` (default: JAX's device).

    CPU: `generalized` for every env. Measured with benchmarks/env_bench.py on the 2-core CPU (the
    table and its caveats are in benchmarks/README.md): per env, mjx is faster at 1 env on five of
    nine envs and at 256 envs on four (ant, humanoid, reacher, inverted_double_pendulum: 1.8-7x),
    slower on halfcheetah, hopper, walker2d (1.6-3.5x at 256) and pusher (16 vs 516 env steps/s
    at 256). The default does not follow those numbers per env. Env stepping is well under 1% of
    a paper-size training step (one HalfCheetah env step is 2.6-4 ms; MAGE-TD3's 10 updates are
    ~1.3 s). The differentiable oracle matches `generalized`'s step (exactly for four envs, under
    stated conditions for the rest) but lags by a substep on `mjx` (see `brax_suite`). And it is
    Brax's own default. Pass `backend="mjx"` for env-heavy work on the four envs above.
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
