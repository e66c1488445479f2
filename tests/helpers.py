"""Shared test fixtures: a small float64 MAGE problem on a stand-in environment."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from magejax import configs
from magejax.models import normalization
from magejax.envs.base import Env
from magejax.replay import Transition
from magejax.agents.td3 import make_agent

OBS, ACT, BATCH = 3, 2, 8


def _reward(obs, action, next_obs):
    # Depends on all three arguments so that ∂r/∂a and ∂r/∂ŝ are both non-zero.
    return -jnp.sum(next_obs**2) - 0.1 * jnp.sum(action**2) + obs[0] * action[0] + jnp.sin(next_obs[1]) * action[1]


def _unused(*_):
    raise NotImplementedError("stand-in env: only reward_fn and done_fn are used")


STAND_IN_ENV = Env(name="stand-in", obs_size=OBS, action_size=ACT, episode_length=10, reset=_unused,
                   step=_unused, reward_fn=_reward, done_fn=lambda next_obs: jnp.zeros((), next_obs.dtype))


def to_f64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def small_problem(algo: str = "mage", seed: int = 0, env: Env = STAND_IN_ENV, **overrides):
    """Agent, agent state, model state and a batch, all float64 (call inside jax.enable_x64).

    With `reward="learned"` the learned reward's state is `small_reward_state(agent, batch)`."""
    fields = dict(configs.TINY, env="stand-in", algo=algo, batch_size=BATCH, ensemble_size=4,
                  actor_hidden=(8,), critic_hidden=(8, 8), model_hidden=(8,))
    fields.update(overrides)
    config = configs.Config(**fields)
    agent = make_agent(config, env)
    k = jax.random.split(jax.random.PRNGKey(seed), 6)
    state = to_f64(agent.init(k[0]))
    if config.normalize_obs:
        # Input statistics far from (0, 1), so that a missed or doubled normalisation shows.
        seen = 0.5 + 2.0 * jax.random.normal(jax.random.PRNGKey(seed + 200), (64, OBS), jnp.float64)
        state = agent.with_obs_stats(state, to_f64(normalization.update(normalization.init(OBS), seen)))
    # Targets differ from the online networks, as they do after training starts.
    state = state.replace(critic_target=jax.tree.map(lambda x: x + 0.1 * jax.random.normal(k[1], x.shape), state.critic_target),
                          actor_target=jax.tree.map(lambda x: x + 0.1 * jax.random.normal(k[2], x.shape), state.actor_target))
    obs = jax.random.normal(k[3], (BATCH, OBS), jnp.float64)
    action = jax.random.uniform(k[4], (BATCH, ACT), jnp.float64, -1, 1)
    next_obs = obs + 0.1 * jax.random.normal(k[5], (BATCH, OBS), jnp.float64)
    batch = Transition(obs=obs, action=action, reward=jnp.zeros(BATCH), next_obs=next_obs,
                       terminated=jnp.zeros(BATCH), truncated=jnp.zeros(BATCH))
    model = None
    if agent.model is not None:
        model = to_f64(agent.model.init(jax.random.PRNGKey(seed + 100)))
        model = agent.model.with_stats(
            model, to_f64(normalization.update(normalization.init(OBS + ACT), jnp.concatenate([obs, action], 1))),
            to_f64(normalization.update(normalization.init(OBS), next_obs - obs)))
    return agent, state, model, batch


def small_reward_state(agent, batch: Transition, seed: int = 0):
    """The learned reward's float64 state, its normaliser fitted to `batch` with env rewards."""
    rm = agent.reward_model
    reward = jax.vmap(agent.env.reward_fn)(batch.obs, batch.action, batch.next_obs)
    state = to_f64(rm.init(jax.random.PRNGKey(seed + 200)))
    state = rm.observe(state, batch.obs, batch.action, batch.next_obs, reward)
    return rm.with_stats(state)
