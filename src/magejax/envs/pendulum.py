"""Pendulum-v1 in pure JAX, equation for equation the same as gymnasium's.

gymnasium/envs/classic_control/pendulum.py: state (θ, θ̇), θ = 0 upright; torque u ∈ [-2, 2];
reward −(normalize(θ)² + 0.1 θ̇² + 0.001 u²) from the pre-step state; semi-implicit Euler with
dt = 0.05, g = 10, m = l = 1, |θ̇| ≤ 8; start uniform in θ ∈ [−π, π], θ̇ ∈ [−1, 1]; the
`TimeLimit` wrapper ends episodes after 200 steps (a truncation, never a termination).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from magejax.envs.base import Env, EnvState

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
G = 10.0
M = 1.0
L = 1.0
EPISODE_LENGTH = 200


def angle_normalize(x: jax.Array) -> jax.Array:
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


def _obs(th: jax.Array, thdot: jax.Array) -> jax.Array:
    return jnp.stack([jnp.cos(th), jnp.sin(th), thdot])


def reset(key: jax.Array) -> EnvState:
    high = jnp.array([jnp.pi, 1.0])
    th, thdot = jax.random.uniform(key, (2,), minval=-high, maxval=high)
    zero = jnp.zeros(())
    return EnvState(physics=(th, thdot), obs=_obs(th, thdot), reward=zero, terminated=zero,
                    truncated=zero, time=jnp.zeros((), jnp.int32))


def _physics_step(th: jax.Array, thdot: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    newthdot = thdot + (3 * G / (2 * L) * jnp.sin(th) + 3.0 / (M * L**2) * u) * DT
    newthdot = jnp.clip(newthdot, -MAX_SPEED, MAX_SPEED)
    return th + newthdot * DT, newthdot


def step(state: EnvState, action: jax.Array) -> EnvState:
    th, thdot = state.physics
    u = jnp.clip(MAX_TORQUE * action[0], -MAX_TORQUE, MAX_TORQUE)
    costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
    newth, newthdot = _physics_step(th, thdot, u)
    time = state.time + 1
    return EnvState(physics=(newth, newthdot), obs=_obs(newth, newthdot), reward=-costs,
                    terminated=jnp.zeros_like(state.terminated),
                    truncated=(time >= EPISODE_LENGTH).astype(state.truncated.dtype),
                    time=time)


def reward_fn(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """The step's reward from observations: θ = atan2(sin θ, cos θ) equals normalize(θ)."""
    del next_obs
    th = jnp.arctan2(obs[1], obs[0])
    u = MAX_TORQUE * jnp.clip(action[0], -1.0, 1.0)
    return -(th**2 + 0.1 * obs[2] ** 2 + 0.001 * u**2)


def done_fn(next_obs: jax.Array) -> jax.Array:
    """Pendulum never terminates; episodes end only by the time limit."""
    return jnp.zeros((), next_obs.dtype)


def true_next_obs(obs: jax.Array, action: jax.Array) -> jax.Array:
    """The real next observation, differentiable in `obs` and `action` (the oracle model).

    Exact: the dynamics depend on θ only through sin θ and θ + θ̇' dt, whose cosine and sine are
    the same for θ and atan2(sin θ, cos θ).
    """
    th = jnp.arctan2(obs[1], obs[0])
    u = jnp.clip(MAX_TORQUE * action[0], -MAX_TORQUE, MAX_TORQUE)
    return _obs(*_physics_step(th, obs[2], u))


def make() -> Env:
    return Env(name="pendulum", obs_size=3, action_size=1, episode_length=EPISODE_LENGTH,
               reset=reset, step=step, reward_fn=reward_fn, done_fn=done_fn,
               true_next_obs=true_next_obs)
