"""Q critics: TD target with target-policy smoothing, the TD loss and the MAGE loss.

Shapes: B batch, O obs size, A action size, C critics. Critic parameters carry a leading axis
of C: 2 for TD3's twin critics, 1 for DDPG. Every function below works for either.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from magejax.agents import networks


def init(key: jax.Array, obs_size: int, action_size: int, hidden: Sequence[int], num_critics: int = 2):
    """`num_critics` independent Q networks, parameters stacked on a leading axis of that length."""
    return networks.init_ensemble(key, num_critics, hidden, obs_size + action_size, 1)


def make_apply(hidden: Sequence[int], precision: str = "f32") -> tuple[Callable, Callable]:
    """Returns `(q_single, twin_q)`; `precision`: the matrix products' (`agents.precision`).

    `q_single(params_i, obs (B, O), action (B, A)) -> (B,)` for one critic;
    `twin_q(params, obs, action) -> (C, B)` for all C critics.
    """
    hidden = tuple(hidden)

    def q_single(params, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        return networks.apply_mlp(params, x, hidden, 1, precision)[..., 0]

    def twin_q(params, obs: jax.Array, action: jax.Array) -> jax.Array:
        return jax.vmap(q_single, in_axes=(0, None, None))(params, obs, action)

    return q_single, twin_q


def smoothing_noise(key: jax.Array, shape: tuple[int, ...], scale: float, clip: float) -> jax.Array:
    """TD3's target-policy smoothing noise, clip(N(0, scale²), ±clip)."""
    return jnp.clip(scale * jax.random.normal(key, shape), -clip, clip)


def td_target(target_critic_params, target_actor_params, reward: jax.Array, next_obs: jax.Array,
              terminated: jax.Array, noise: jax.Array, *, gamma: float, pi: Callable,
              twin_q: Callable) -> jax.Array:
    """y = r + γ (1 − d) min_i Q̄_i(s', clip(π̄(s') + noise, ±1)). Inputs (B,), (B, O), (B,), (B, A) -> (B,)."""
    next_action = jnp.clip(pi(target_actor_params, next_obs) + noise, -1.0, 1.0)
    next_q = jnp.min(twin_q(target_critic_params, next_obs, next_action), axis=0)
    return reward + gamma * (1.0 - terminated) * next_q


def huber(x: jax.Array) -> jax.Array:
    """Smooth-L1 with threshold 1 (PyTorch's `smooth_l1_loss`, the original code's choice)."""
    return optax.huber_loss(x, delta=1.0)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """‖x‖₂ along `axis` whose gradient at x = 0 is 0 (jnp.linalg.norm's is NaN there)."""
    sq = jnp.sum(x * x, axis=axis)
    nonzero = sq > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)


def td_loss(critic_params, obs: jax.Array, action: jax.Array, target: jax.Array, *,
            twin_q: Callable) -> tuple[jax.Array, dict]:
    """mean over batch and critics of huber(y − Q_i(s, a)). target (B,) is held constant."""
    target = jax.lax.stop_gradient(target)
    delta = target[None] - twin_q(critic_params, obs, action)  # (C, B)
    loss = jnp.mean(huber(delta))
    return loss, {"critic_loss": loss, "td_error": jnp.mean(jnp.abs(delta))}


def td_errors_and_action_grads(critic_params, obs: jax.Array, action: jax.Array, target_fn: Callable,
                               *, q_single: Callable) -> tuple[jax.Array, jax.Array]:
    """δ_i = y(a) − Q_i(s, a) and ∇ₐδ_i for every critic: (C, B) and (C, B, A).

    `target_fn: a (B, A) -> y (B,)` is the TD target as a function of the action (through the
    reward and the model's next state); it must not depend on `critic_params`.
    """

    def per_critic(params_i):
        def summed_delta(a):
            delta = target_fn(a) - q_single(params_i, obs, a)  # (B,)
            return jnp.sum(delta), delta

        # Samples are independent, so the gradient of the sum gives every ∇ₐδ(s_b, a_b) at once.
        grad_a, delta = jax.grad(summed_delta, has_aux=True)(action)
        return delta, grad_a

    # target_fn does not depend on the mapped critic parameters, so vmap evaluates it (and its
    # action-gradient) once, not once per critic.
    return jax.vmap(per_critic)(critic_params)


def mage_loss(critic_params, obs: jax.Array, action: jax.Array, target_fn: Callable, *,
              q_single: Callable, lam: float, grad_weight: float = 1.0) -> tuple[jax.Array, dict]:
    """MAGE critic loss: grad_weight · huber(‖∇ₐ δ_i‖₂) + λ · huber(δ_i), mean over batch and critics.

    The inner `jax.grad` (w.r.t. the action) sits inside whatever outer `jax.value_and_grad`
    (w.r.t. φ) the caller applies. Since y(a) uses only target networks, the model and the
    reward, ∇ₐy is a constant of the outer gradient: JAX evaluates it in the forward pass and
    never differentiates the model or reward w.r.t. φ. grad_weight = 0, λ = 1 give `td_loss`.
    """
    delta, grad_a = td_errors_and_action_grads(critic_params, obs, action, target_fn, q_single=q_single)
    grad_norm = safe_norm(grad_a, axis=-1)  # (C, B)
    loss = grad_weight * jnp.mean(huber(grad_norm)) + lam * jnp.mean(huber(delta))
    return loss, {"critic_loss": loss, "td_error": jnp.mean(jnp.abs(delta)),
                  "td_action_grad_norm": jnp.mean(grad_norm)}


def values_and_action_grads(critic_params, obs: jax.Array, action: jax.Array, *,
                            q_single: Callable) -> tuple[jax.Array, jax.Array]:
    """Q_i(s, a) and ∇ₐQ_i(s, a) of every critic in one forward and one backward pass.

    obs (B, O), action (B, A) -> (C, B), (C, B, A). Each critic gets its own copy of the action,
    so one backward pass separates the critics' gradients.
    """
    num_critics = jax.tree.leaves(critic_params)[0].shape[0]
    actions = jnp.broadcast_to(action, (num_critics,) + action.shape)
    q, vjp = jax.vjp(lambda a: jax.vmap(q_single, in_axes=(0, None, 0))(critic_params, obs, a), actions)
    (grads,) = vjp(jnp.ones_like(q))
    return q, grads


def optimizer_step(state, grads, optimizer, tau: float):
    """One optimiser step of the online critics and the Polyak update of their targets.

    state: any agent state with `critic_params`, `critic_opt_state` and `critic_target` (the TD3
    family's and MAAC's); grads: like critic_params. Returns the state with those three replaced."""
    updates, opt_state = optimizer.update(grads, state.critic_opt_state, state.critic_params)
    params = optax.apply_updates(state.critic_params, updates)
    return state.replace(critic_params=params, critic_opt_state=opt_state,
                         critic_target=networks.polyak(state.critic_target, params, tau))
