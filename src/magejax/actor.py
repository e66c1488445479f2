"""Deterministic tanh policy, its DPG loss on min(Q1, Q2), and Polyak averaging."""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from magejax import networks


def init(key: jax.Array, obs_size: int, action_size: int, hidden: Sequence[int]):
    return networks.init_mlp(key, hidden, obs_size, action_size)


def make_apply(action_size: int, hidden: Sequence[int]) -> Callable:
    """`pi(params, obs) -> action`: obs (..., obs_size) -> action (..., action_size) in (-1, 1)."""
    hidden = tuple(hidden)

    def pi(params, obs: jax.Array) -> jax.Array:
        return jnp.tanh(networks.apply_mlp(params, obs, hidden, action_size))

    return pi


def dpg_loss(actor_params, critic_params, obs: jax.Array, pi: Callable, twin_q: Callable) -> jax.Array:
    """−mean_b min_i Q_i(s_b, π(s_b)). obs (B, obs_size) -> ()."""
    q = twin_q(critic_params, obs, pi(actor_params, obs))  # (2, B)
    return -jnp.mean(jnp.min(q, axis=0))


def polyak(target, online, tau: float):
    """target ← (1 − τ) target + τ online, leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
