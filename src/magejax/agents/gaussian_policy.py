"""Stochastic tanh-Gaussian policy (SAC, MAAC): a = tanh(μ(s) + σ(s) ε), ε ~ N(0, I).

The MLP outputs μ and a raw log-std per action dimension; the log-std is squashed smoothly into
[LOG_STD_MIN, LOG_STD_MAX] (a tanh rescale rather than SAC's hard clip, so its gradient never
vanishes at the bounds). Sampling is reparameterised: given ε, the action and its log-density are
differentiable in the parameters and in the observation, which MAAC's pathwise derivative needs.

Shapes: O obs size, A action size; any leading batch axes (...) pass through.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from magejax.agents import networks

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: a jnp constant would be float32 under x64


def init(key: jax.Array, obs_size: int, action_size: int, hidden: Sequence[int]):
    """One MLP obs (O) -> (μ, raw log-std) (2A); Xavier-uniform weights, zero biases."""
    return networks.init_mlp(key, hidden, obs_size, 2 * action_size)


def make_apply(action_size: int, hidden: Sequence[int], precision: str = "f32") -> Callable:
    """`dist(params, obs (..., O)) -> (mean (..., A), log_std (..., A))`, pre-tanh Gaussian;
    `precision`: the matrix products' (`agents.precision`)."""
    hidden = tuple(hidden)

    def dist(params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, raw = jnp.split(networks.apply_mlp(params, obs, hidden, 2 * action_size, precision), 2, axis=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
        return mean, log_std

    return dist


def sample(mean: jax.Array, log_std: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample and its log-density: (..., A) x3 -> action (..., A), log π(a|s) (...).

    log π(a|s) = Σ_j [log N(u_j; μ_j, σ_j²) − log(1 − tanh²(u_j))], u = μ + σ ε, with the
    change-of-variables term in the stable form log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u)).
    """
    u = mean + jnp.exp(log_std) * eps
    gaussian = -0.5 * eps**2 - log_std - 0.5 * _LOG_2PI
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(gaussian - log_det, axis=-1)


def mode(mean: jax.Array) -> jax.Array:
    """The deterministic action used for evaluation: tanh of the Gaussian's mean. (..., A)"""
    return jnp.tanh(mean)
