"""The differentiable oracle `true_next_obs` reproduces `env.step` from observations alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import envs


@pytest.mark.parametrize("name", ["pendulum", "cartpole_swingup"])
def test_oracle_matches_env_step_on_random_rollout(name):
    env = envs.make(name)
    key = jax.random.PRNGKey(0)
    state = env.reset(key)

    def body(state, key):
        action = jax.random.uniform(key, (env.action_size,), minval=-1.0, maxval=1.0)
        next_state = env.step(state, action)
        return next_state, (state.obs, action, next_state.obs)

    _, (obs, action, next_obs) = jax.lax.scan(body, state, jax.random.split(key, 150))
    predicted = jax.vmap(env.true_next_obs)(obs, action)
    np.testing.assert_allclose(predicted, next_obs, atol=1e-5)
    # The rollout must actually move: an oracle returning obs would otherwise pass on a still state.
    assert float(jnp.max(jnp.abs(next_obs - obs))) > 1e-2


@pytest.mark.parametrize("name", ["pendulum", "cartpole_swingup"])
def test_oracle_is_differentiable_in_the_action(name):
    env = envs.make(name)
    obs = env.reset(jax.random.PRNGKey(1)).obs
    action = jnp.full((env.action_size,), 0.3)
    jac = jax.jacobian(env.true_next_obs, argnums=1)(obs, action)
    eps = 1e-3
    fd = (env.true_next_obs(obs, action + eps) - env.true_next_obs(obs, action - eps)) / (2 * eps)
    np.testing.assert_allclose(jac[:, 0], fd, rtol=1e-2, atol=1e-4)
    assert float(jnp.max(jnp.abs(jac))) > 0
