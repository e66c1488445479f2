"""Deterministic tanh policy and its DPG loss on min(Q1, Q2)."""
from __future__ import annotations

from typing import Callable, Sequence

import chex
import jax
import jax.numpy as jnp

from magejax.agents import critic, networks


def init(key: jax.Array, obs_size: int, action_size: int, hidden: Sequence[int]):
    return networks.init_mlp(key, hidden, obs_size, action_size)


def make_apply(action_size: int, hidden: Sequence[int], precision: str = "f32") -> Callable:
    """`pi(params, obs) -> action`: obs (..., obs_size) -> action (..., action_size) in (-1, 1);
    `precision`: the matrix products' (`agents.precision`)."""
    hidden = tuple(hidden)

    def pi(params, obs: jax.Array) -> jax.Array:
        return jnp.tanh(networks.apply_mlp(params, obs, hidden, action_size, precision))

    return pi


def dpg_loss(actor_params, critic_params, obs: jax.Array, pi: Callable, twin_q: Callable) -> jax.Array:
    """−mean_b min_i Q_i(s_b, π(s_b)) (with one critic, −mean Q). obs (B, obs_size) -> ()."""
    q = twin_q(critic_params, obs, pi(actor_params, obs))  # (C, B)
    return -jnp.mean(jnp.min(q, axis=0))


def dpg_loss_and_grads(actor_params, critic_params, obs: jax.Array, pi: Callable,
                       q_single: Callable) -> tuple[jax.Array, chex.ArrayTree, jax.Array]:
    """`dpg_loss`, its gradient w.r.t. the actor, and mean ‖∇ₐQ_i‖ from one pass through the critics.

    The DPG gradient needs ∇ₐ min_i Q_i, so both critics' action-gradients are computed anyway;
    reusing them for the ‖∇ₐQ‖ diagnostic saves a second forward/backward pass.
    Returns (loss (), grads like actor_params, action-gradient norm ()).
    """
    action, pi_vjp = jax.vjp(lambda p: pi(p, obs), actor_params)
    q, dq_da = critic.values_and_action_grads(critic_params, obs, action, q_single=q_single)
    smaller = jnp.argmin(q, axis=0)  # min(Q1, Q2) passes the gradient of the smaller critic
    dmin_da = jnp.take_along_axis(dq_da, smaller[None, :, None], axis=0)[0]  # (B, A)
    (grads,) = pi_vjp(-dmin_da / obs.shape[0])
    loss = -jnp.mean(jnp.min(q, axis=0))
    return loss, grads, jnp.mean(critic.safe_norm(dq_da, axis=-1))

