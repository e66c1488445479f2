"""Running mean and variance (Chan et al.'s parallel merge), usable inside jit/scan/vmap."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


@chex.dataclass
class RunningStats:
    """Statistics of every row seen so far. count (), mean (D,), m2 (D,) sum of squared deviations."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @property
    def std(self) -> jax.Array:
        """Population std, floored so constant features do not divide by zero. (D,)"""
        var = self.m2 / jnp.maximum(self.count, 1.0)
        return jnp.sqrt(jnp.maximum(var, 1e-12)) + 1e-6


def init(size: int) -> RunningStats:
    """Empty statistics; until data arrives they normalise nothing (mean 0, std ~1)."""
    return RunningStats(count=jnp.zeros(()), mean=jnp.zeros(size), m2=jnp.zeros(size))


def update(stats: RunningStats, x: jax.Array) -> RunningStats:
    """Merge a batch of rows `x` (N, D) into `stats`."""
    chex.assert_rank(x, 2)
    n = jnp.asarray(x.shape[0], jnp.float32)
    batch_mean = jnp.mean(x, axis=0)
    batch_m2 = jnp.sum((x - batch_mean) ** 2, axis=0)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / total
    m2 = stats.m2 + batch_m2 + delta**2 * stats.count * n / total
    return RunningStats(count=total, mean=mean, m2=m2)


def normalize(stats: RunningStats, x: jax.Array) -> jax.Array:
    return (x - stats.mean) / jnp.where(stats.count > 0, stats.std, 1.0)


def denormalize(stats: RunningStats, x: jax.Array) -> jax.Array:
    return x * jnp.where(stats.count > 0, stats.std, 1.0) + stats.mean


def observation_slice(stats: RunningStats, size: int) -> RunningStats:
    """The first `size` features of `stats` (the observation part of the (s, a) statistics)."""
    return RunningStats(count=stats.count, mean=stats.mean[:size], m2=stats.m2[:size])


def normalize_agent_input(stats: RunningStats, x: jax.Array) -> jax.Array:
    """The original MAGE code's agent-input normalisation: (x − mean) / std, population std, with
    stds below 1e-6 set to 1 (`normalizer.fix_stdev`), so a constant feature is only centred, never
    blown up by the model's tiny errors on it. Empty statistics (count 0) leave x unchanged.

    Differentiable in x (a fixed affine map), so ∇ₐ through ŝ(a) flows through it. x (..., D)."""
    raw_std = jnp.sqrt(stats.m2 / jnp.maximum(stats.count, 1.0))
    std = jnp.where(raw_std < 1e-6, 1.0, raw_std)
    return (x - stats.mean) / std
