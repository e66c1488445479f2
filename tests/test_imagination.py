"""Imagination's sources and horizon: k-step targets (k = 1 is the 1-step code bit for bit, k = 2 a
hand-written rollout), the oracle model, and the learned reward inside the target."""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs, envs
from magejax.agents import critic
from magejax.envs import pendulum
from magejax.models.reward_model import RewardModel
from magejax.agents.td3 import Agent, make_agent
from tests.helpers import ACT, BATCH, OBS, STAND_IN_ENV, small_problem, small_reward_state, to_f64

KEY = jax.random.PRNGKey(11)


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def _leaves_identical(a, b) -> bool:
    return all(np.asarray(x).tobytes() == np.asarray(y).tobytes()
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


class OneStepAgent(Agent):
    """The agent with the 1-step target as it was written before k-step targets existed (plus the
    agent input normalisation of the bootstrap state)."""

    def imagined_target_fn(self, state, model, obs, key, reward=None):
        model_key, noise_key = jax.random.split(key)
        c, env = self.config, self.env
        noise = critic.smoothing_noise(noise_key, (obs.shape[0], env.action_size), c.target_noise,
                                       c.target_noise_clip)
        _, twin_q = self.q_fns

        def target(action):
            next_obs = self.model.sample_next_obs(model, obs, action, model_key)
            reward = jax.vmap(env.reward_fn)(obs, action, next_obs)
            terminated = jax.vmap(env.done_fn)(next_obs)
            return critic.td_target(state.critic_target, state.actor_target, reward,
                                    self.obs_input(state, next_obs), terminated, noise, gamma=c.gamma,
                                    pi=self.pi, twin_q=twin_q)

        return target


def test_horizon_one_is_the_one_step_code_bit_for_bit():
    agent, state, model, batch = small_problem("mage", horizon=1)
    reference = OneStepAgent(config=agent.config, env=agent.env, model=agent.model)

    @functools.partial(jax.jit, static_argnums=0)
    def loss_grads_and_update(a: Agent):
        loss_and_grads = jax.value_and_grad(a.critic_loss, has_aux=True)(
            state.critic_params, state, model, batch, KEY)
        return loss_and_grads, a.update_step(state, model, batch, KEY, jnp.asarray(True))

    # One compiled program per agent, as in training (Agent is static: hashable and frozen).
    ours, theirs = loss_grads_and_update(agent), loss_grads_and_update(reference)
    assert _leaves_identical(ours, theirs)
    # The comparison can fail: two model steps give another target from the same key.
    two_step, _, _, _ = small_problem("mage", horizon=2)
    action = agent.policy(state, batch.obs)
    y = lambda a: a.imagined_target_fn(state, model, batch.obs, KEY)(action)
    assert not np.any(y(two_step) == y(reference))


def _terminating_env():
    # Terminates where ŝ[0] > 0.3, so the 2-step test exercises the (1 − d) masks both ways.
    return dataclasses.replace(STAND_IN_ENV, done_fn=lambda s: (s[0] > 0.3).astype(s.dtype))


def test_two_step_target_matches_hand_written_rollout():
    env = _terminating_env()
    agent, state, model, batch = small_problem("mage", env=env, horizon=2)
    c, m = agent.config, agent.model
    _, twin_q = agent.q_fns
    obs = batch.obs
    action = agent.policy(state, obs)

    def by_hand(a):
        model_key, noise_key = jax.random.split(KEY)          # the documented key split
        key0, key1 = jax.random.split(model_key, 2)
        noise = critic.smoothing_noise(noise_key, (BATCH, ACT), c.target_noise, c.target_noise_clip)
        s1 = m.sample_next_obs(model, obs, a, key0)
        r0, d0 = jax.vmap(env.reward_fn)(obs, a, s1), jax.vmap(env.done_fn)(s1)
        a1 = agent.pi(state.actor_target, agent.obs_input(state, s1))                 # later actions: the target actor
        s2 = m.sample_next_obs(model, s1, a1, key1)
        r1, d1 = jax.vmap(env.reward_fn)(s1, a1, s2), jax.vmap(env.done_fn)(s2)
        a2 = jnp.clip(agent.pi(state.actor_target, agent.obs_input(state, s2)) + noise, -1.0, 1.0)
        q2 = jnp.min(twin_q(state.critic_target, agent.obs_input(state, s2), a2), axis=0)
        y = r0 + c.gamma * (1 - d0) * r1 + c.gamma**2 * (1 - d0) * (1 - d1) * q2
        return y, (d0, d1)

    target_fn = agent.imagined_target_fn(state, model, obs, KEY)
    expected, (d0, d1) = by_hand(action)
    np.testing.assert_allclose(target_fn(action), expected, rtol=1e-12, atol=1e-12)
    grad = jax.grad(lambda a: jnp.sum(target_fn(a)))(action)
    grad_by_hand = jax.grad(lambda a: jnp.sum(by_hand(a)[0]))(action)
    np.testing.assert_allclose(grad, grad_by_hand, rtol=1e-10, atol=1e-12)
    # Both masks occur in this batch, and ∇ₐy is not trivially zero.
    for d in (d0, d1):
        assert 0 < float(jnp.sum(d)) < BATCH
    assert float(jnp.min(jnp.linalg.norm(grad, axis=-1))) > 0


def test_two_step_critic_loss_gradient_matches_central_differences():
    from jax.flatten_util import ravel_pytree

    agent, state, model, batch = small_problem("mage", env=_terminating_env(), horizon=2)
    flat, unravel = ravel_pytree(state.critic_params)
    loss = lambda p: agent.critic_loss(unravel(p), state, model, batch, KEY)[0]
    grad = jax.grad(loss)(flat)
    assert jnp.linalg.norm(grad) > 1e-3
    rng = np.random.default_rng(1)
    eps = 1e-6
    for _ in range(6):
        d = jnp.asarray(rng.normal(size=flat.shape))
        numeric = (loss(flat + eps * d) - loss(flat - eps * d)) / (2 * eps)
        np.testing.assert_allclose(jnp.dot(grad, d), numeric, rtol=1e-5, atol=1e-8)


def test_oracle_target_is_the_true_dynamics_target():
    config = configs.preset("pendulum", "mage", "tiny", model="oracle", batch_size=8)
    env = envs.make("pendulum")
    agent = make_agent(config, env)
    assert agent.model is None  # nothing to train
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    state = to_f64(agent.init(k[0]))
    state = state.replace(critic_target=jax.tree.map(lambda x: x * 1.1, state.critic_target))
    obs = jax.vmap(lambda kk: env.reset(kk).obs)(jax.random.split(k[1], 8)).astype(jnp.float64)
    action = jax.random.uniform(k[2], (8, 1), jnp.float64, -1, 1)
    _, twin_q = agent.q_fns
    _, noise_key = jax.random.split(KEY)
    noise = critic.smoothing_noise(noise_key, (8, 1), config.target_noise, config.target_noise_clip)

    def by_hand(a):
        s1 = jax.vmap(pendulum.true_next_obs)(obs, a)
        return critic.td_target(state.critic_target, state.actor_target,
                                jax.vmap(pendulum.reward_fn)(obs, a, s1), s1, jnp.zeros(8), noise,
                                gamma=config.gamma, pi=agent.pi, twin_q=twin_q)

    target_fn = agent.imagined_target_fn(state, None, obs, KEY)
    np.testing.assert_allclose(target_fn(action), by_hand(action), rtol=1e-12)
    np.testing.assert_allclose(jax.grad(lambda a: jnp.sum(target_fn(a)))(action),
                               jax.grad(lambda a: jnp.sum(by_hand(a)))(action), rtol=1e-10, atol=1e-12)
    # The oracle is deterministic: another model key leaves ŝ, hence y without noise, unchanged.
    quiet = dataclasses.replace(agent, config=config.replace(target_noise=0.0))
    y1 = quiet.imagined_target_fn(state, None, obs, KEY)(action)
    y2 = quiet.imagined_target_fn(state, None, obs, jax.random.PRNGKey(99))(action)
    np.testing.assert_array_equal(y1, y2)


@dataclasses.dataclass(frozen=True)
class _ExactReward(RewardModel):
    """A 'learned' reward that is the stand-in env's true reward plus `offset`."""

    offset: float = 0.0

    def predict(self, state, obs, action, next_obs):
        return jax.vmap(STAND_IN_ENV.reward_fn)(obs, action, next_obs) + self.offset


def test_learned_reward_is_what_the_target_uses():
    agent, state, model, batch = small_problem("mage", reward="learned", horizon=2)
    true_agent, _, _, _ = small_problem("mage", horizon=2)
    reward = small_reward_state(agent, batch)
    obs = batch.obs
    action = agent.policy(state, obs)

    def loss(reward_state, a=agent):
        return a.critic_loss(state.critic_params, state, model, batch, KEY, reward_state)[0]

    # r̂'s parameters change the MAGE loss, yet receive no gradient from it (held by stop_gradient).
    bumped = reward.replace(params=jax.tree.map(lambda x: x * 1.1 + 0.01, reward.params))
    assert loss(bumped) != loss(reward)
    grads = jax.grad(lambda p: loss(reward.replace(params=p)))(reward.params)
    assert all(jnp.all(g == 0) for g in jax.tree.leaves(grads))

    # r̂ = r: the true-reward target; r̂ = r + 1: every step's reward is r̂, so y rises by 1 + γ.
    true_y = true_agent.imagined_target_fn(state, model, obs, KEY)(action)
    for offset, rise in [(0.0, 0.0), (1.0, 1.0 + agent.config.gamma)]:
        exact = dataclasses.replace(agent, reward_model=_ExactReward(OBS, ACT, offset=offset))
        y_fn = exact.imagined_target_fn(state, model, obs, KEY, reward)
        np.testing.assert_allclose(y_fn(action), true_y + rise, rtol=1e-12)
    exact = dataclasses.replace(agent, reward_model=_ExactReward(OBS, ACT))
    np.testing.assert_allclose(loss(reward, exact), loss(None, true_agent), rtol=1e-12)
