"""The learned reward fits real Pendulum transitions, and reports its error in reward units."""
import jax
import jax.numpy as jnp
import numpy as np

from magejax import envs
from magejax.models.reward_model import RewardModel


def _pendulum_transitions(key, episodes=12, steps=100):
    """Random-action transitions (s, a, r, s'), each (episodes·steps, ·)."""
    env = envs.make("pendulum")

    def rollout(key):
        def body(state, k):
            action = jax.random.uniform(k, (1,), minval=-1.0, maxval=1.0)
            nxt = env.step(state, action)
            return nxt, (state.obs, action, nxt.reward, nxt.obs)

        k0, k1 = jax.random.split(key)
        return jax.lax.scan(body, env.reset(k0), jax.random.split(k1, steps))[1]

    data = jax.vmap(rollout)(jax.random.split(key, episodes))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), data)


def test_reward_mse_decreases_on_pendulum_transitions():
    obs, action, reward, next_obs = _pendulum_transitions(jax.random.PRNGKey(0))
    split = obs.shape[0] * 3 // 4  # fit on the first 9 episodes, measure on the other 3
    train = (obs[:split], action[:split], next_obs[:split], reward[:split])
    test = (obs[split:], action[split:], next_obs[split:], reward[split:])
    rm = RewardModel(obs_size=3, action_size=1, hidden=(32,), lr=1e-3)
    state = rm.with_stats(rm.observe(rm.init(jax.random.PRNGKey(1)), *train))
    test_mse = lambda s: rm.mse_loss(s.params, s, *test)[1]["reward_mse"]

    @jax.jit
    def fit(state):
        def body(state, key):
            idx = jax.random.randint(key, (64,), 0, split)
            return rm.train_step(state, *(x[idx] for x in train))
        return jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(2), 300))

    fitted, metrics = fit(state)
    before, after = float(test_mse(state)), float(test_mse(fitted))
    assert after < 0.4 * before, (before, after)
    assert float(jnp.mean(metrics["reward_mse"][-50:])) < 0.4 * float(jnp.mean(metrics["reward_mse"][:50]))
    # reward_mse is in reward units²: the squared error of `predict`, which returns rewards.
    np.testing.assert_allclose(after, jnp.mean((rm.predict(fitted, *test[:3]) - test[3]) ** 2), rtol=1e-5)
    # ... and r̂ is differentiable in the action, as imagination needs.
    grad = jax.grad(lambda a: jnp.sum(rm.predict(fitted, test[0], a, test[2])))(test[1])
    assert jnp.all(jnp.isfinite(grad)) and float(jnp.max(jnp.abs(grad))) > 0
