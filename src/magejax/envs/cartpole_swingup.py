"""CartPoleSwingUp-v1 in pure JAX, equation for equation the same as gym-cartpole-swingup's.

Source: Ângelo G. Lovatto's `gym-cartpole-swingup` (PyPI `gym-cartpole-swingup`,
github.com/0xangelo/gym-cartpole-swingup), `gym_cartpole_swingup/envs/cartpole_swingup.py` at
commit 652a192f, class `CartPoleSwingUpV1`, registered as `CartPoleSwingUp-v1` with
`max_episode_steps=500`. It is a modified version of hardmaru's estool swing-up, itself derived
from the cart-pole of Deisenroth & Rasmussen's PILCO (zuoxingdong/DeepPILCO).

State (x, ẋ, θ, θ̇); θ = 0 is the pole upright, θ = π hanging down. Constants: gravity g = 9.82,
cart mass m_c = 0.5, pole mass m_p = 0.5, pole length l = 0.6, friction b = 0.1,
force_mag = 10, dt = 0.01, x_threshold = 2.4; M = m_c + m_p, m_p l = m_p · l.

Step, with the action a ∈ [-1, 1] clipped and scaled to the force F = 10 · clip(a, -1, 1),
s = sin θ, c = cos θ:

    ẍ = (−2 m_p l θ̇² s + 3 m_p g s c + 4 F − 4 b ẋ) / (4 M − 3 m_p c²)
    θ̈ = (−3 m_p l θ̇² s c + 6 M g s + 6 (F − b ẋ) c) / (4 l M − 3 m_p l c²)
    x' = x + ẋ dt,  θ' = θ + θ̇ dt,  ẋ' = ẋ + ẍ dt,  θ̇' = θ̇ + θ̈ dt     (explicit Euler)

Observation [x, ẋ, cos θ, sin θ, θ̇] of the post-step state. Reward (1 + cos θ') / 2 of the
post-step state, in [0, 1], so `reward_fn` reads it from `next_obs`. Termination when the cart
leaves the track, |x'| > 2.4 (`done_fn` reads x' from `next_obs`). The 500-step `TimeLimit` is a
truncation, never a termination. Reset: (x, ẋ, θ, θ̇) ~ N([0, 0, π, 0], 0.2² I), the pole
hanging down; drawn here in JAX's default float dtype (the source casts its draw to float32, and
computes its reward in float32; neither changes the equations).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from magejax.envs.base import Env, EnvState

GRAVITY = 9.82
FORCE_MAG = 10.0
DT = 0.01
FRICTION = 0.1
X_THRESHOLD = 2.4
CART_MASS = 0.5
POLE_MASS = 0.5
POLE_LENGTH = 0.6
MASS_TOTAL = CART_MASS + POLE_MASS
MPL = POLE_MASS * POLE_LENGTH
EPISODE_LENGTH = 500
RESET_MEAN = (0.0, 0.0, jnp.pi, 0.0)
RESET_STD = 0.2


def _obs(x, x_dot, theta, theta_dot) -> jax.Array:
    return jnp.stack([x, x_dot, jnp.cos(theta), jnp.sin(theta), theta_dot])


def reset(key: jax.Array) -> EnvState:
    noise = jax.random.normal(key, (4,))
    x, x_dot, theta, theta_dot = jnp.asarray(RESET_MEAN, noise.dtype) + RESET_STD * noise
    zero = jnp.zeros((), noise.dtype)
    return EnvState(physics=(x, x_dot, theta, theta_dot), obs=_obs(x, x_dot, theta, theta_dot),
                    reward=zero, terminated=zero, truncated=zero, time=jnp.zeros((), jnp.int32))


def _physics_step(x, x_dot, theta, theta_dot, action):
    force = jnp.clip(action[0], -1.0, 1.0) * FORCE_MAG

    sin_theta = jnp.sin(theta)
    cos_theta = jnp.cos(theta)
    xdot_update = (
        -2 * MPL * (theta_dot**2) * sin_theta
        + 3 * POLE_MASS * GRAVITY * sin_theta * cos_theta
        + 4 * force
        - 4 * FRICTION * x_dot
    ) / (4 * MASS_TOTAL - 3 * POLE_MASS * cos_theta**2)
    thetadot_update = (
        -3 * MPL * (theta_dot**2) * sin_theta * cos_theta
        + 6 * MASS_TOTAL * GRAVITY * sin_theta
        + 6 * (force - FRICTION * x_dot) * cos_theta
    ) / (4 * POLE_LENGTH * MASS_TOTAL - 3 * MPL * cos_theta**2)

    new_x = x + x_dot * DT
    new_theta = theta + theta_dot * DT
    new_x_dot = x_dot + xdot_update * DT
    new_theta_dot = theta_dot + thetadot_update * DT
    return new_x, new_x_dot, new_theta, new_theta_dot


def step(state: EnvState, action: jax.Array) -> EnvState:
    new_x, new_x_dot, new_theta, new_theta_dot = _physics_step(*state.physics, action)
    time = state.time + 1
    dtype = state.reward.dtype
    return EnvState(
        physics=(new_x, new_x_dot, new_theta, new_theta_dot),
        obs=_obs(new_x, new_x_dot, new_theta, new_theta_dot),
        reward=((1 + jnp.cos(new_theta)) / 2).astype(dtype),
        terminated=(jnp.abs(new_x) > X_THRESHOLD).astype(state.terminated.dtype),
        truncated=(time >= EPISODE_LENGTH).astype(state.truncated.dtype),
        time=time)


def reward_fn(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """The step's reward (1 + cos θ') / 2 from the post-step observation; independent of action."""
    del obs, action
    return (1 + next_obs[2]) / 2


def done_fn(next_obs: jax.Array) -> jax.Array:
    """1.0 when the cart has left the track, |x'| > 2.4, else 0.0."""
    return (jnp.abs(next_obs[0]) > X_THRESHOLD).astype(next_obs.dtype)


def true_next_obs(obs: jax.Array, action: jax.Array) -> jax.Array:
    """The real next observation, differentiable in `obs` and `action` (the oracle model).

    Exact: θ enters the dynamics only through sin θ, cos θ and θ + θ̇ dt, which agree for θ and
    atan2(sin θ, cos θ).
    """
    theta = jnp.arctan2(obs[3], obs[2])
    return _obs(*_physics_step(obs[0], obs[1], theta, obs[4], action))


def make() -> Env:
    return Env(name="cartpole_swingup", obs_size=5, action_size=1, episode_length=EPISODE_LENGTH,
               reset=reset, step=step, reward_fn=reward_fn, done_fn=done_fn,
               true_next_obs=true_next_obs)
