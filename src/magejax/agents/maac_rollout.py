"""MAAC's imagined rollouts and the soft (max-entropy) H-step values along them.

A rollout runs H steps of policy and model from given start states:
  a_t = tanh(μ(ŝ_t) + σ(ŝ_t) ε_t),  ŝ_{t+1} = transition(ŝ_t, a_t, ξ_t),  t = 0 … H − 1,
then samples a_H at ŝ_H. Every random number (ε, ξ, the member assignment) is drawn up front
(`draw_noise`), so a rollout is a pure function of the parameters, differentiable end to end
(pathwise derivative through reparameterised policy and model samples), and tests can fix it.

Shapes: N rollouts, H horizon, O obs size, A action size; E ensemble members, M = N / E.
"""
from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

from magejax.agents import gaussian_policy
from magejax.models.dynamics import EnsembleModel, ModelState


@chex.dataclass
class RolloutNoise:
    """perm (N,): a random permutation; the caller reorders its start rows by it, and rollout r then
    uses ensemble member r // M (`member_transition`), so every rollout gets a uniformly random
    member for all of its H steps. policy_eps (H + 1, N, A): ε of a_0 … a_H.
    model_eps (H, N, O): ξ of the H transitions."""

    perm: jax.Array
    policy_eps: jax.Array
    model_eps: jax.Array


@chex.dataclass
class Rollout:
    """obs (H + 1, N, O) ŝ_0 … ŝ_H; action (H + 1, N, A) a_0 … a_H; log_prob (H + 1, N) log π(a_t|ŝ_t);
    reward (H, N) r(ŝ_t, a_t, ŝ_{t+1}); done (H, N) d(ŝ_{t+1})."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array


def draw_noise(key: jax.Array, model: EnsembleModel, num_rollouts: int, horizon: int) -> RolloutNoise:
    perm_key, policy_key, model_key = jax.random.split(key, 3)
    return RolloutNoise(
        perm=model.member_assignment(perm_key, num_rollouts),
        policy_eps=jax.random.normal(policy_key, (horizon + 1, num_rollouts, model.action_size)),
        model_eps=jax.random.normal(model_key, (horizon, num_rollouts, model.obs_size)))


def member_transition(model: EnsembleModel, model_state: ModelState) -> Callable:
    """`(obs (N, O), action (N, A), xi (N, O)) -> next_obs (N, O)`: rows r·M … (r+1)·M − 1 through
    member r alone (`EnsembleModel.sample_next_obs_by_member`; reshapes only, no gathers)."""
    e = model.ensemble_size

    def transition(obs, action, xi):
        split = lambda x: x.reshape((e, -1) + x.shape[1:])
        return model.sample_next_obs_by_member(model_state, split(obs), split(action),
                                               split(xi)).reshape(obs.shape)

    return transition


def rollout(dist: Callable, actor_params, transition: Callable, reward_fn: Callable,
            done_fn: Callable, start_obs: jax.Array, noise: RolloutNoise) -> Rollout:
    """H = noise.model_eps.shape[0] steps from start_obs (N, O), in the row order given.

    dist: `gaussian_policy.make_apply(...)`; transition: e.g. `member_transition(...)`;
    reward_fn / done_fn: the environment's single-transition functions (vmapped here).
    """

    def act(obs, eps):
        mean, log_std = dist(actor_params, obs)
        return gaussian_policy.sample(mean, log_std, eps)

    def step(obs, eps):
        policy_eps, model_eps = eps
        action, log_prob = act(obs, policy_eps)
        next_obs = transition(obs, action, model_eps)
        reward = jax.vmap(reward_fn)(obs, action, next_obs)
        done = jax.vmap(done_fn)(next_obs)
        return next_obs, (obs, action, log_prob, reward, done)

    last_obs, (obs, action, log_prob, reward, done) = jax.lax.scan(
        step, start_obs, (noise.policy_eps[:-1], noise.model_eps))
    last_action, last_log_prob = act(last_obs, noise.policy_eps[-1])
    return Rollout(obs=jnp.concatenate([obs, last_obs[None]]),
                   action=jnp.concatenate([action, last_action[None]]),
                   log_prob=jnp.concatenate([log_prob, last_log_prob[None]]),
                   reward=reward, done=jax.lax.stop_gradient(done))


def soft_values(roll: Rollout, terminal_q: jax.Array, alpha: jax.Array, gamma: float) -> jax.Array:
    """Soft H-step value estimates G_t of ŝ_t along the rollout, t = 0 … H. -> (H + 1, N)

      G_H = Q(ŝ_H, a_H) − α log π(a_H|ŝ_H)
      G_t = r_t − α log π(a_t|ŝ_t) + γ (1 − d(ŝ_{t+1})) G_{t+1}

    so G_0 = Σ_{t<H} γ^t m_t (r_t − α log π_t) + γ^H m_H (Q_H − α log π_H) with alive masks
    m_t = Π_{k=1..t} (1 − d(ŝ_k)): nothing after an imagined termination counts. terminal_q (N,).
    """
    last = terminal_q - alpha * roll.log_prob[-1]

    def back(g_next, x):
        reward, done, log_prob = x
        g = reward - alpha * log_prob + gamma * (1.0 - done) * g_next
        return g, g

    _, g = jax.lax.scan(back, last, (roll.reward, roll.done, roll.log_prob[:-1]), reverse=True)
    return jnp.concatenate([g, last[None]])


def alive_masks(roll: Rollout) -> jax.Array:
    """m_t = Π_{k=1..t} (1 − d(ŝ_k)) for t = 0 … H − 1: 1 while ŝ_t is not past a termination. (H, N)"""
    alive = jnp.cumprod(1.0 - roll.done, axis=0)
    return jnp.concatenate([jnp.ones_like(alive[:1]), alive[:-1]])
