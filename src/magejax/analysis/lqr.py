"""Discounted linear-quadratic control with a linear policy: the exact return, Q-function and policy
gradient, and MAAC's H-step objective. The ground truth of the gradient-error study of MAAC
(Clavera et al. 2020, §5.2, Fig. 3) on a double integrator.

System x' = A x + B u, reward r(x, u) = −(xᵀ C x + uᵀ R u), policy u = K x, discount γ, start
states with second moment Σ₀ = E[x₀ x₀ᵀ]. For a policy with √γ ρ(A + BK) < 1:

    V(x) = −xᵀ P x,        P = C + KᵀRK + γ (A + BK)ᵀ P (A + BK)              (discrete Lyapunov)
    J(K) = E[Σ_t γ^t r_t] = −tr(P Σ₀)
    ∇_K J = −2 [(R + γ BᵀPB) K + γ BᵀPA] Σ_K,   Σ_K = Σ₀ + γ (A + BK) Σ_K (A + BK)ᵀ

(derivation: dP solves the same Lyapunov equation with C replaced by the symmetric part of
2 dKᵀ(RK + γBᵀP(A + BK)), and tr(dP Σ₀) = tr of that times Σ_K). Shapes: n state size, m action
size; K (m, n); batches of states (N, n) and actions (N, m).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class LinearQuadratic(NamedTuple):
    A: jax.Array       # (n, n)
    B: jax.Array       # (n, m)
    C: jax.Array       # (n, n) state cost, symmetric positive semi-definite
    R: jax.Array       # (m, m) action cost, symmetric positive definite
    gamma: float


def double_integrator(dt: float = 0.2, gamma: float = 0.99, action_cost: float = 1.0) -> LinearQuadratic:
    """Position and velocity driven by a force held for dt: x = (p, v), p' = p + v dt + u dt²/2, v' = v + u dt."""
    return LinearQuadratic(A=jnp.array([[1.0, dt], [0.0, 1.0]]), B=jnp.array([[0.5 * dt**2], [dt]]),
                           C=jnp.eye(2), R=action_cost * jnp.eye(1), gamma=gamma)


def step(system: LinearQuadratic, x: jax.Array, u: jax.Array) -> jax.Array:
    """x (..., n), u (..., m) -> x' (..., n)."""
    return x @ system.A.T + u @ system.B.T


def reward(system: LinearQuadratic, x: jax.Array, u: jax.Array) -> jax.Array:
    """−(xᵀCx + uᵀRu). x (..., n), u (..., m) -> (...)."""
    return -(jnp.einsum("...i,ij,...j->...", x, system.C, x) + jnp.einsum("...i,ij,...j->...", u, system.R, u))


def lyapunov(M: jax.Array, Q: jax.Array, gamma: float) -> jax.Array:
    """X solving X = Q + γ Mᵀ X M, by one linear solve of size n² (fine for small n). Differentiable."""
    n = M.shape[0]
    # Row-major vec(Mᵀ X M) = (Mᵀ ⊗ Mᵀ) vec(X).
    x = jnp.linalg.solve(jnp.eye(n * n, dtype=M.dtype) - gamma * jnp.kron(M.T, M.T), Q.reshape(-1))
    return x.reshape(n, n)


def closed_loop(system: LinearQuadratic, K: jax.Array) -> jax.Array:
    return system.A + system.B @ K


def spectral_radius(system: LinearQuadratic, K: jax.Array) -> jax.Array:
    """ρ(A + BK); the discounted return is finite iff √γ ρ < 1."""
    return jnp.max(jnp.abs(jnp.linalg.eigvals(closed_loop(system, K))))


def value_matrix(system: LinearQuadratic, K: jax.Array) -> jax.Array:
    """P with V(x) = −xᵀPx for the policy u = Kx. (n, n)"""
    return lyapunov(closed_loop(system, K), system.C + K.T @ system.R @ K, system.gamma)


def visitation_matrix(system: LinearQuadratic, K: jax.Array, sigma0: jax.Array) -> jax.Array:
    """Σ_K = Σ_t γ^t E[x_t x_tᵀ] from start second moment sigma0 (n, n). (n, n)"""
    return lyapunov(closed_loop(system, K).T, sigma0, system.gamma)


def expected_return(system: LinearQuadratic, K: jax.Array, sigma0: jax.Array) -> jax.Array:
    """J(K) = −tr(P Σ₀). ()"""
    return -jnp.trace(value_matrix(system, K) @ sigma0)


def policy_gradient(system: LinearQuadratic, K: jax.Array, sigma0: jax.Array) -> jax.Array:
    """The exact ∇_K J (formula in the module docstring). (m, n)"""
    A, B, R, g = system.A, system.B, system.R, system.gamma
    P = value_matrix(system, K)
    return -2.0 * ((R + g * B.T @ P @ B) @ K + g * B.T @ P @ A) @ visitation_matrix(system, K, sigma0)


def q_value(system: LinearQuadratic, K: jax.Array, x: jax.Array, u: jax.Array) -> jax.Array:
    """Q^K(x, u) = r(x, u) + γ V^K(Ax + Bu). x (N, n), u (N, m) -> (N,)."""
    x_next = step(system, x, u)
    return reward(system, x, u) - system.gamma * jnp.einsum("ni,ij,nj->n", x_next, value_matrix(system, K), x_next)


def optimal_gain(system: LinearQuadratic, iterations: int = 2000) -> jax.Array:
    """The discounted LQR gain K* (m, n), by Riccati value iteration from P = C."""
    A, B, R, g = system.A, system.B, system.R, system.gamma

    def riccati(P, _):
        K = -jnp.linalg.solve(R + g * B.T @ P @ B, g * B.T @ P @ A)
        Acl = A + B @ K
        return system.C + K.T @ R @ K + g * Acl.T @ P @ Acl, None

    P, _ = jax.lax.scan(riccati, system.C, None, length=iterations)
    return -jnp.linalg.solve(R + g * B.T @ P @ B, g * B.T @ P @ A)


def maac_objective(K: jax.Array, system: LinearQuadratic, x0: jax.Array, horizon: int,
                   dynamics: Callable[[jax.Array, jax.Array], jax.Array],
                   critic: Callable[[jax.Array, jax.Array], jax.Array]) -> jax.Array:
    """MAAC's J_H(K) = mean over x0 of Σ_{t<H} γ^t r(x_t, Kx_t) + γ^H Q(x_H, Kx_H), x_{t+1} = dynamics(x_t, Kx_t).

    x0 (N, n); dynamics (N, n), (N, m) -> (N, n); critic (N, n), (N, m) -> (N,). Differentiating
    in K back-propagates through the H steps (MAAC's pathwise gradient). The critic enters only
    through its arguments: a learned critic is fixed w.r.t. K, as in every actor-critic.
    """
    def body(carry, _):
        x, total, discount = carry
        u = x @ K.T
        return (dynamics(x, u), total + discount * reward(system, x, u), discount * system.gamma), None

    init = (x0, jnp.zeros(x0.shape[0], x0.dtype), jnp.ones((), x0.dtype))
    (x, total, discount), _ = jax.lax.scan(body, init, None, length=horizon)
    return jnp.mean(total + discount * critic(x, x @ K.T))
