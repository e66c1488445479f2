"""Pendulum matches a line-by-line transcription of gymnasium's Pendulum-v1."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import envs
from magejax.envs import pendulum


def gym_pendulum_step(th, thdot, u):
    """gymnasium/envs/classic_control/pendulum.py PendulumEnv.step, in numpy float64."""
    max_speed, max_torque, dt, g, m, l = 8, 2.0, 0.05, 10.0, 1.0, 1.0
    u = np.clip(u, -max_torque, max_torque)
    angle_normalize = lambda x: ((x + np.pi) % (2 * np.pi)) - np.pi
    costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
    newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt
    newthdot = np.clip(newthdot, -max_speed, max_speed)
    newth = th + newthdot * dt
    return newth, newthdot, -costs


def rollout(env, key, actions):
    def body(state, action):
        nxt = env.step(state, action)
        return nxt, (state.obs, nxt.obs, nxt.reward, nxt.terminated, nxt.truncated, nxt.physics)

    return jax.lax.scan(body, env.reset(key), actions)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_gymnasium_transcription_on_random_actions(seed):
    env = envs.make("pendulum")
    with jax.enable_x64(True):
        key, action_key = jax.random.split(jax.random.PRNGKey(seed))
        # Actions beyond [-1, 1] too, to exercise the torque clip.
        actions = jax.random.uniform(action_key, (200, 1), jnp.float64, -1.5, 1.5)
        start = env.reset(key)
        _, (obs, next_obs, reward, terminated, truncated, (th, thdot)) = rollout(env, key, actions)
        g_th, g_thdot = float(start.physics[0]), float(start.physics[1])
        for t in range(200):
            g_th, g_thdot, g_reward = gym_pendulum_step(g_th, g_thdot, 2.0 * float(actions[t, 0]))
            np.testing.assert_allclose([th[t], thdot[t], reward[t]], [g_th, g_thdot, g_reward], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(next_obs[t], [np.cos(g_th), np.sin(g_th), g_thdot], rtol=1e-12, atol=1e-12)
    terminated, truncated = np.asarray(terminated), np.asarray(truncated)
    assert not terminated.any()
    assert truncated[:-1].sum() == 0 and truncated[-1] == 1  # the 200-step TimeLimit


def test_reward_fn_reproduces_env_reward_in_float32():
    env = envs.make("pendulum")
    actions = jax.random.uniform(jax.random.PRNGKey(3), (200, 1), minval=-1, maxval=1)
    _, (obs, next_obs, reward, _, _, _) = rollout(env, jax.random.PRNGKey(4), actions)
    predicted = jax.vmap(env.reward_fn)(obs, actions, next_obs)
    assert predicted.shape == reward.shape == (200,)
    np.testing.assert_allclose(predicted, reward, atol=1e-4 * float(jnp.max(jnp.abs(reward))))
    assert jnp.all(jax.vmap(env.done_fn)(next_obs) == 0)


def test_reset_distribution_and_shapes():
    env = envs.make("pendulum")
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 2000))
    th, thdot = states.physics
    assert states.obs.shape == (2000, 3) and env.obs_size == 3 and env.action_size == 1
    assert float(th.min()) >= -np.pi and float(th.max()) <= np.pi and float(jnp.abs(thdot).max()) <= 1.0
    assert float(th.std()) > 1.5  # uniform on [-π, π] has std π/√3 ≈ 1.81
    assert len(np.unique(np.asarray(th))) == 2000


def test_angle_of_observation_equals_normalized_state_angle():
    th = jnp.linspace(-20, 20, 101)
    obs_angle = jnp.arctan2(jnp.sin(th), jnp.cos(th))
    np.testing.assert_allclose(obs_angle, pendulum.angle_normalize(th), atol=1e-5)


def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="unknown environment 'cheetah'; valid: .*pendulum"):
        envs.make("cheetah")
