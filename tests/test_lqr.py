"""Linear-quadratic ground truth of the gradient-error study: the exact return matches simulation,
the analytic policy gradient matches finite differences, and MAAC's H-step objective has exactly
the true gradient for every H when the dynamics and the policy's own Q are exact. All in float64."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax.analysis import lqr

HORIZONS = (0, 1, 2, 5, 10)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@functools.cache  # built once, inside the x64 fixture of the first test
def _problem():
    system = lqr.double_integrator(dt=0.2, gamma=0.99)
    K = 0.5 * lqr.optimal_gain(system)
    x0 = jax.random.normal(jax.random.PRNGKey(0), (64, 2), jnp.float64)
    return system, K, x0, x0.T @ x0 / x0.shape[0]


def test_expected_return_matches_a_long_simulation():
    system, K, x0, sigma0 = _problem()
    assert float(jnp.sqrt(system.gamma) * lqr.spectral_radius(system, K)) < 1.0

    def body(carry, t):
        x, total = carry
        u = x @ K.T
        return (lqr.step(system, x, u), total + system.gamma**t * lqr.reward(system, x, u)), None

    (_, total), _ = jax.lax.scan(body, (x0, jnp.zeros(64)), jnp.arange(3000))
    np.testing.assert_allclose(jnp.mean(total), lqr.expected_return(system, K, sigma0), rtol=1e-9)


def test_analytic_policy_gradient_matches_finite_differences():
    system, K, _, sigma0 = _problem()
    K = K + jnp.array([[0.1, -0.05]])  # not a special point
    grad = lqr.policy_gradient(system, K, sigma0)
    h = 1e-6
    fd = np.zeros(K.shape)
    for i in np.ndindex(K.shape):
        e = jnp.zeros(K.shape).at[i].set(h)
        fd[i] = (lqr.expected_return(system, K + e, sigma0) - lqr.expected_return(system, K - e, sigma0)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    assert float(jnp.min(jnp.abs(grad))) > 1.0  # a non-trivial gradient
    # At the LQR optimum it vanishes.
    np.testing.assert_allclose(lqr.policy_gradient(system, lqr.optimal_gain(system), sigma0), 0.0, atol=1e-8)


@pytest.mark.parametrize("horizon", HORIZONS)
def test_maac_gradient_with_true_dynamics_and_the_policys_own_q_is_the_true_gradient(horizon):
    """Q = Q^K as a function of K: then J_H(K) = J(K) for every K, so their gradients agree."""
    system, K, x0, sigma0 = _problem()
    dynamics = lambda x, u: lqr.step(system, x, u)

    def objective(K):
        return lqr.maac_objective(K, system, x0, horizon, dynamics, lambda x, u: lqr.q_value(system, K, x, u))

    np.testing.assert_allclose(objective(K), lqr.expected_return(system, K, sigma0), rtol=1e-10)
    np.testing.assert_allclose(jax.grad(objective)(K), lqr.policy_gradient(system, K, sigma0), rtol=1e-9)


@pytest.mark.parametrize("horizon", HORIZONS)
def test_maac_gradient_with_a_fixed_exact_critic_is_the_truncated_dpg_sum(horizon):
    """Q^{K₀} held fixed (as a learned critic is): ∇J_H = Σ_{t≤H} γ^t E[∇ₐQ(x_t, Kx_t) x_tᵀ], the
    deterministic policy gradient cut after H + 1 steps, which tends to ∇J as H grows."""
    system, K, x0, sigma0 = _problem()
    dynamics = lambda x, u: lqr.step(system, x, u)
    fixed_q = lambda x, u: lqr.q_value(system, K, x, u)
    maac_grad = jax.jit(jax.grad(lqr.maac_objective), static_argnums=(3, 4, 5))
    maac = maac_grad(K, system, x0, horizon, dynamics, fixed_q)

    dq_da = jax.vmap(jax.grad(lambda x, u: lqr.q_value(system, K, x[None], u[None])[0], argnums=1))

    def dpg_term(x, t):  # γ^t E[∇ₐQ(x_t, Kx_t) x_tᵀ] and x_{t+1}
        term = system.gamma**t * jnp.mean(dq_da(x, x @ K.T)[:, :, None] * x[:, None, :], axis=0)
        return lqr.step(system, x, x @ K.T), term

    _, terms = jax.lax.scan(dpg_term, x0, jnp.arange(horizon + 1))
    np.testing.assert_allclose(maac, jnp.sum(terms, axis=0), rtol=1e-9)

    true = lqr.policy_gradient(system, K, sigma0)
    assert float(jnp.sum(jnp.abs(maac - true))) > 1e-3 * float(jnp.sum(jnp.abs(true)))  # biased ...
    long = maac_grad(K, system, x0, 300, dynamics, fixed_q)
    np.testing.assert_allclose(long, true, rtol=1e-3)  # ... and the bias vanishes with H
