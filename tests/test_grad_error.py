"""The critic action-gradient error (Eq. 14): a closed form on a linear system, the definition
(one rollout and one gradient per step) on Pendulum, and termination."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import envs
from magejax.analysis import grad_error
from magejax.envs.base import Env


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def _linear_env(done_below: float | None = None) -> Env:
    """s' = s + a, r = −s'²; optionally terminal once s' < done_below."""
    done = (lambda s: jnp.zeros(())) if done_below is None else (lambda s: (s[0] < done_below).astype(s.dtype))
    unused = lambda *_: None
    return Env(name="linear", obs_size=1, action_size=1, episode_length=30, reset=unused, step=unused,
               reward_fn=lambda s, a, s2: -s2[0] ** 2, done_fn=done,
               true_next_obs=lambda s, a: s + a)


@pytest.mark.parametrize("c", [0.0, 1.7, 12.0])
def test_closed_form_on_a_linear_system(c):
    """π(s) = −k s, Q̂(s, a) = −c (s + a)².

    From s_t with action a: x = s_t + a, then s_{t+1+j} = (1−k)^j x, so
    G_t(a) = −x² S_n with S_n = Σ_{j<n} ρ^j, ρ = γ(1−k)², n = H − t, and ∇ₐG_t = −2 x S_n;
    ∇ₐQ̂ = −2c x. On the policy's path x_t = (1−k)^{t+1} s_0, hence
    L = (1/H) Σ_t γ^t · 2 |x_t| · |S_{H−t} − c|.
    """
    k, gamma, horizon, s0 = 0.3, 0.9, 25, 1.5
    env = _linear_env()
    pi = lambda s: -k * s
    q = lambda s, a: -c * jnp.sum(s + a) ** 2
    got = grad_error.rollout_error(env, pi, q, jnp.array([s0]), horizon=horizon, gamma=gamma)

    rho = gamma * (1 - k) ** 2
    expected = 0.0
    for t in range(horizon):
        x = (1 - k) ** (t + 1) * s0
        s_n = sum(rho**j for j in range(horizon - t))
        expected += gamma**t * 2 * abs(x) * abs(s_n - c)
    expected /= horizon
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_matches_the_definition_on_pendulum():
    """Against a separate rollout and jax.grad of G(s_t, ·) for every step: same number."""
    env = envs.make("pendulum")
    gamma, horizon = 0.95, 12
    w = jax.random.normal(jax.random.PRNGKey(0), (3,)) * 0.5
    pi = lambda s: jnp.tanh(jnp.array([w @ s]))
    q = lambda s, a: jnp.sin(s @ w + 2.0 * a[0]) * (1.0 + s[2] * a[0]) + a[0] ** 3
    obs0 = env.reset(jax.random.PRNGKey(3)).obs.astype(jnp.float64)
    got = grad_error.rollout_error(env, pi, q, obs0, horizon=horizon, gamma=gamma)

    def g_from(s, a, steps):
        total = 0.0
        for j in range(steps):
            a = a if j == 0 else pi(s)
            s_next = env.true_next_obs(s, a)
            total = total + gamma**j * env.reward_fn(s, a, s_next)
            s = s_next
        return total

    s, terms = obs0, []
    for t in range(horizon):
        a = pi(s)
        grad_g = jax.grad(g_from, argnums=1)(s, a, horizon - t)
        grad_q = jax.grad(q, argnums=1)(s, a)
        terms.append(gamma**t * np.sum(np.abs(grad_g - grad_q)))
        s = env.true_next_obs(s, a)
    np.testing.assert_allclose(got, np.mean(terms), rtol=1e-9)
    assert got > 0


def test_exact_critic_has_zero_error_with_one_step_horizon():
    """H = 1: G(s, a) = r(s, a, f(s, a)), so Q̂ = that reward is exact and the error is 0."""
    env = envs.make("pendulum")
    pi = lambda s: jnp.array([0.4 * s[1]])
    q = lambda s, a: env.reward_fn(s, a, env.true_next_obs(s, a))
    obs0 = env.reset(jax.random.PRNGKey(5)).obs.astype(jnp.float64)
    assert float(grad_error.rollout_error(env, pi, q, obs0, horizon=1, gamma=0.99)) == pytest.approx(0.0, abs=1e-14)
    # And a wrong critic is not: the test can fail.
    assert float(grad_error.rollout_error(env, pi, lambda s, a: 2 * q(s, a), obs0, horizon=1, gamma=0.99)) > 1e-3


def test_termination_ends_the_sum():
    """A linear episode terminal at step 0: only that step counts, with its one-step return."""
    env = _linear_env(done_below=10.0)  # every s' < 10: terminal immediately
    pi = lambda s: -0.3 * s
    q = lambda s, a: jnp.zeros(())
    s0 = 1.5
    got = grad_error.rollout_error(env, pi, q, jnp.array([s0]), horizon=8, gamma=0.9)
    # G_0(a) = −(s0 + a)², ∇ₐG_0 = −2 (s0 + π(s0)) = −2 · 0.7 · 1.5, and H counts one step.
    np.testing.assert_allclose(got, 2 * 0.7 * s0, rtol=1e-12)


def test_mean_error_averages_episodes_from_reset_states():
    env = envs.make("pendulum")
    pi = lambda s: jnp.array([0.2 * s[0]])
    q = lambda s, a: a[0] * s[1]
    key = jax.random.PRNGKey(9)
    got = grad_error.mean_error(env, pi, q, key, episodes=3, gamma=0.99, horizon=5)
    starts = jax.vmap(env.reset)(jax.random.split(key, 3)).obs
    each = [grad_error.rollout_error(env, pi, q, s, horizon=5, gamma=0.99) for s in starts]
    np.testing.assert_allclose(got, np.mean(each), rtol=1e-12)


def test_env_without_oracle_is_refused():
    env = _linear_env()
    env = Env(**{**env.__dict__, "true_next_obs": None})
    with pytest.raises(ValueError, match="true_next_obs"):
        grad_error.rollout_error(env, lambda s: s, lambda s, a: a[0], jnp.ones(1), horizon=2, gamma=0.9)
