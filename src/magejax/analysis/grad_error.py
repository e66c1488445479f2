"""How well a critic's action-gradient matches the true one (MAGE paper, Appendix D.2, Eq. 14).

Along a rollout of the deterministic policy π from s_0 through the environment's differentiable
dynamics (`env.true_next_obs`) and reward (`env.reward_fn`), the error of a critic Q̂ is

    L = (1/H) Σ_{t<H} γ^t ‖∇ₐG(s_t, a_t) − ∇ₐQ̂(s_t, a_t)‖₁,    a_t = π(s_t),

where G(s_t, a) = Σ_{j<H−t} γ^j r_{t+j} is the empirical return of taking `a` at s_t and then
following π to the end of the H-step episode, differentiated through the dynamics.

All H gradients come from ONE reverse pass: add a perturbation ε_t to every action and
differentiate the episode's return G_0 = Σ_t γ^t r_t. Rewards before t do not depend on ε_t,
so ∂G_0/∂ε_t = γ^t ∇ₐG(s_t, a_t) — exactly the discounted gradient the sum needs, with no
division by γ^t.

A terminated episode ends there: later rewards are masked out, and the sum runs over the steps
up to and including the terminal one (H becomes that count).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from magejax.envs import Env


def rollout_error(env: Env, pi: Callable[[jax.Array], jax.Array],
                  q: Callable[[jax.Array, jax.Array], jax.Array], obs0: jax.Array, *,
                  horizon: int, gamma: float) -> jax.Array:
    """Eq. 14 for one episode of `horizon` steps from `obs0`. Returns a scalar.

    pi: obs (O,) -> action (A,), the deterministic policy (parameters closed over).
    q: (obs (O,), action (A,)) -> (), the critic whose action-gradient is judged.
    """
    if env.true_next_obs is None:
        raise ValueError(f"{env.name}: has no differentiable true_next_obs; the action-gradient "
                         "error needs the true dynamics")

    def discounted_return(eps: jax.Array):
        def body(carry, e):
            obs, alive, discount = carry
            action = pi(obs) + e
            next_obs = env.true_next_obs(obs, action)
            reward = env.reward_fn(obs, action, next_obs)
            # Termination is a discrete event: it masks, it is not differentiated.
            done = jax.lax.stop_gradient(env.done_fn(next_obs))
            # Past the end the simulator may produce NaN; hold the last state instead.
            next_obs = jnp.where(alive > 0, next_obs, obs)
            step = (discount * alive * reward, obs, action, alive)
            return (next_obs, alive * (1.0 - done), discount * gamma), step

        init = (obs0, jnp.ones((), obs0.dtype), jnp.ones((), obs0.dtype))
        _, (rewards, obs, actions, alive) = jax.lax.scan(body, init, eps)
        return jnp.sum(rewards), (obs, actions, alive)

    zeros = jnp.zeros((horizon, env.action_size), obs0.dtype)
    # discounted_grad_g[t] = γ^t ∇ₐG(s_t, a_t)
    discounted_grad_g, (obs, actions, alive) = jax.grad(discounted_return, has_aux=True)(zeros)
    grad_q = jax.vmap(jax.grad(q, argnums=1))(obs, actions)
    discounts = gamma ** jnp.arange(horizon, dtype=obs0.dtype)
    errors = jnp.sum(jnp.abs(discounted_grad_g - discounts[:, None] * grad_q), axis=-1)
    return jnp.sum(alive * errors) / jnp.sum(alive)


def mean_error(env: Env, pi: Callable, q: Callable, key: jax.Array, *, episodes: int,
               gamma: float, horizon: int | None = None) -> jax.Array:
    """`rollout_error` averaged over `episodes` episodes from `env.reset` states. Returns a scalar.

    horizon: steps per episode (default: the environment's episode length).
    """
    horizon = env.episode_length if horizon is None else horizon
    starts = jax.vmap(env.reset)(jax.random.split(key, episodes)).obs
    errors = jax.vmap(lambda s: rollout_error(env, pi, q, s, horizon=horizon, gamma=gamma))(starts)
    return jnp.mean(errors)


def critic_probe(trainer, episodes: int | None = None) -> Callable:
    """Per-evaluation metric for `experiment.run_condition`: `fn(train_state, key)` ->
    {"action_grad_error": `mean_error` of the trainer's actor and FIRST critic} for one seed.

    The first critic, not min(Q1, Q2): min switches between the critics from state to state,
    and its gradient is then neither critic's. episodes: default the config's `eval_episodes`.
    """
    env, agent, c = trainer.env, trainer.agent, trainer.config
    q_single, _ = agent.q_fns
    episodes = c.eval_episodes if episodes is None else episodes

    def probe(state, key: jax.Array) -> dict:
        params = state.agent
        first = jax.tree.map(lambda p: p[0], params.critic_params)
        pi = lambda s: agent.policy(params, s)
        q = lambda s, a: q_single(first, agent.obs_input(params, s[None]), a[None])[0]
        return {"action_grad_error": mean_error(env, pi, q, key, episodes=episodes, gamma=c.gamma)}

    return probe
