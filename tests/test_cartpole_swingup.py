"""CartPole swing-up matches a line-by-line transcription of gym-cartpole-swingup's CartPoleSwingUp-v1."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs, envs
from magejax.train import make_train


def gym_swingup_step(state, action):
    """gym_cartpole_swingup/envs/cartpole_swingup.py (commit 652a192f) CartPoleSwingUpV1.step, numpy float64.

    Returns (next_state, next_obs, reward, done); `done` is the env's own termination (the
    500-step TimeLimit wrapper is separate).
    """
    gravity, forcemag, deltat, friction, x_threshold = 9.82, 10.0, 0.01, 0.1, 2.4
    cart_mass, pole_mass, pole_length = 0.5, 0.5, 0.6
    masstotal = cart_mass + pole_mass
    mpl = pole_mass * pole_length
    x_pos, x_dot, theta, theta_dot = state
    # step: action = np.clip(action, low, high); _transition_fn: action = action[0] * forcemag
    action = np.clip(action, -1.0, 1.0)[0] * forcemag
    sin_theta = np.sin(theta)
    cos_theta = np.cos(theta)
    xdot_update = (
        -2 * mpl * (theta_dot**2) * sin_theta
        + 3 * pole_mass * gravity * sin_theta * cos_theta
        + 4 * action
        - 4 * friction * x_dot
    ) / (4 * masstotal - 3 * pole_mass * cos_theta**2)
    thetadot_update = (
        -3 * mpl * (theta_dot**2) * sin_theta * cos_theta
        + 6 * masstotal * gravity * sin_theta
        + 6 * (action - friction * x_dot) * cos_theta
    ) / (4 * pole_length * masstotal - 3 * mpl * cos_theta**2)
    next_state = (
        x_pos + x_dot * deltat,
        x_dot + xdot_update * deltat,
        theta + theta_dot * deltat,
        theta_dot + thetadot_update * deltat,
    )
    nx, nxd, nth, nthd = next_state
    next_obs = np.array([nx, nxd, np.cos(nth), np.sin(nth), nthd])
    reward = (1 + np.cos(nth)) / 2  # CartPoleSwingUpV1._reward_fn (the source casts to float32)
    done = bool(abs(nx) > x_threshold)  # _terminal(next_state)
    return next_state, next_obs, reward, done


def rollout(env, key, actions):
    def body(state, action):
        nxt = env.step(state, action)
        return nxt, (state.obs, nxt.obs, nxt.reward, nxt.terminated, nxt.truncated, nxt.physics)

    return jax.lax.scan(body, env.reset(key), actions)


def action_sequences(key, n, dtype):
    """Random actions (beyond [-1, 1] too, to exercise the clip), unbiased and biased to one side."""
    noise = jax.random.uniform(key, (n, 1), dtype, -1.5, 1.5)
    return {"random": noise, "push_right": 0.8 + 0.5 * noise, "push_left": -0.8 + 0.5 * noise}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["random", "push_right", "push_left"])
def test_matches_transcription_until_termination(seed, kind):
    env = envs.make("cartpole_swingup")
    n = env.episode_length
    with jax.enable_x64(True):
        key, action_key = jax.random.split(jax.random.PRNGKey(seed))
        actions = action_sequences(action_key, n, jnp.float64)[kind]
        start = env.reset(key)
        assert start.obs.dtype == jnp.float64
        _, (obs, next_obs, reward, terminated, truncated, physics) = rollout(env, key, actions)
        assert reward.dtype == terminated.dtype == truncated.dtype == jnp.float64
    actions, next_obs, reward, terminated = map(np.asarray, (actions, next_obs, reward, terminated))
    physics = np.stack([np.asarray(p) for p in physics], axis=1)
    g_state = tuple(float(p) for p in start.physics)
    steps = 0
    for t in range(n):
        g_state, g_obs, g_reward, g_done = gym_swingup_step(g_state, actions[t])
        np.testing.assert_allclose(physics[t], g_state, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(next_obs[t], g_obs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(reward[t], g_reward, rtol=1e-10, atol=1e-12)
        assert terminated[t] == float(g_done)
        steps += 1
        if g_done:
            break
    if kind != "random":
        assert terminated.any() and steps < n  # the constant push drives the cart off the track
    # The time limit truncates at step 500 and never terminates.
    truncated = np.asarray(truncated)
    assert truncated[:-1].sum() == 0 and truncated[-1] == 1


@pytest.mark.parametrize("seed", [3, 4])
def test_reward_fn_and_done_fn_reproduce_env_in_float32(seed):
    env = envs.make("cartpole_swingup")
    key, action_key = jax.random.split(jax.random.PRNGKey(seed))
    n_terminated = 0
    for kind, actions in action_sequences(action_key, env.episode_length, jnp.float32).items():
        _, (obs, next_obs, reward, terminated, _, _) = rollout(env, key, actions)
        assert obs.dtype == reward.dtype == terminated.dtype == jnp.float32
        # Up to and including the first terminal step (the loop resets there).
        end = int(jnp.argmax(terminated)) + 1 if bool(terminated.any()) else env.episode_length
        n_terminated += int(terminated[:end].sum())
        predicted = jax.vmap(env.reward_fn)(obs, actions, next_obs)
        assert predicted.shape == reward.shape == (env.episode_length,)
        np.testing.assert_allclose(predicted[:end], reward[:end], rtol=0, atol=1e-4 * 1.0)  # rewards in [0, 1]
        np.testing.assert_array_equal(jax.vmap(env.done_fn)(next_obs[:end]), terminated[:end])
        # Past the end, too: done_fn agrees with the env on every stored transition.
        np.testing.assert_array_equal(jax.vmap(env.done_fn)(next_obs), terminated)
    assert n_terminated >= 2  # both pushes ran the cart off the track


def test_reset_is_random_per_key_and_pole_starts_down():
    env = envs.make("cartpole_swingup")
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 2000))
    x, x_dot, theta, theta_dot = (np.asarray(p) for p in states.physics)
    assert states.obs.shape == (2000, 5) and env.obs_size == 5 and env.action_size == 1
    assert len(np.unique(theta)) == 2000 and len(np.unique(x)) == 2000
    # N([0, 0, π, 0], 0.2²): the pole hangs down, cos θ ≈ -1.
    assert abs(theta.mean() - np.pi) < 0.02 and abs(theta.std() - 0.2) < 0.02
    for v in (x, x_dot, theta_dot):
        assert abs(v.mean()) < 0.02 and abs(v.std() - 0.2) < 0.02
    assert float(states.obs[:, 2].max()) < -0.5
    np.testing.assert_allclose(states.obs[:, 2], np.cos(theta), rtol=1e-6)
    assert not np.asarray(states.terminated).any() and not np.asarray(states.truncated).any()
    assert np.all(np.asarray(states.time) == 0)


def test_reset_and_step_states_have_the_same_structure_and_dtypes():
    """The training loop selects between a reset and a stepped state with `where`."""
    env = envs.make("cartpole_swingup")
    for x64 in (False, True):
        with jax.enable_x64(x64):
            start = env.reset(jax.random.PRNGKey(0))
            nxt = jax.jit(env.step)(start, jnp.ones((1,), start.obs.dtype))
            spec = lambda s: jax.tree.map(lambda a: (a.shape, a.dtype), s)
            assert spec(start) == spec(nxt)
            # vmap of step equals separate steps
            keys = jax.random.split(jax.random.PRNGKey(1), 4)
            batch = jax.vmap(env.reset)(keys)
            acts = jnp.linspace(-1, 1, 4, dtype=start.obs.dtype)[:, None]
            stepped = jax.vmap(env.step)(batch, acts)
            for i in range(4):
                one = env.step(env.reset(keys[i]), acts[i])
                np.testing.assert_allclose(stepped.obs[i], one.obs, rtol=1e-6)


def test_reward_gradients():
    env = envs.make("cartpole_swingup")
    obs = jnp.array([0.1, -0.2, -0.9, 0.3, 0.5])
    next_obs = jnp.array([0.2, -0.1, -0.8, 0.4, 0.7])
    action = jnp.array([0.3])
    g_action = jax.grad(env.reward_fn, argnums=1)(obs, action, next_obs)
    g_next = jax.grad(env.reward_fn, argnums=2)(obs, action, next_obs)
    assert jnp.all(jnp.isfinite(g_action)) and jnp.all(jnp.isfinite(g_next))
    assert float(jnp.abs(g_next).sum()) > 0
    np.testing.assert_allclose(g_next, [0, 0, 0.5, 0, 0])  # r = (1 + cos θ') / 2


def test_unknown_env_lists_cartpole_swingup():
    assert "cartpole_swingup" in envs.names()
    with pytest.raises(ValueError, match="valid: .*cartpole_swingup"):
        envs.make("cartpole")


def test_tiny_mage_run_gives_finite_eval_returns():
    config = configs.preset("cartpole_swingup", "mage", "tiny")
    state, metrics = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    returns = np.asarray(metrics["eval_return"])
    assert returns.shape == (config.num_chunks + 1,)
    assert np.all(np.isfinite(returns))
    # Rewards lie in [0, 1]: an evaluation episode returns at most its length.
    assert np.all((returns >= 0) & (returns <= 500))
    assert np.all(np.isfinite(np.asarray(state.env_state.obs)))
    # The loop met a termination (the cart left the track), stored it, and reset the episode.
    data = state.buffer.data
    terminal = np.asarray(data.terminated)[: int(state.buffer.size)]
    assert terminal.sum() >= 1
    done = jax.vmap(envs.make("cartpole_swingup").done_fn)(data.next_obs)
    np.testing.assert_array_equal(terminal, np.asarray(done)[: len(terminal)])
    assert np.isfinite(np.asarray(metrics["train_return"])[-1])
    assert int(state.env_state.time) < config.total_steps
