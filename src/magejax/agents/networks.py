"""Flax MLPs shared by actor, critic, dynamics model and learned reward.

Weights are Xavier-uniform and biases zero, as in the original MAGE code. Ensembles (twin critics,
the dynamics ensemble) are stacked parameter pytrees with a leading member axis, applied with
`jax.vmap`, so members run as one batched matmul.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from magejax.agents import precision


class MLP(nn.Module):
    """Swish hidden layers, linear output. (..., in) -> (..., out). `precision`: the matrix
    products' (`precision.PRECISIONS`); parameters and activations are float32 under every one."""

    hidden: Sequence[int]
    out: int
    precision: str = "f32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = dict(kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.zeros,
                    dot_general=precision.dot_general(self.precision))
        for width in self.hidden:
            x = nn.swish(nn.Dense(width, **init)(x))
        return nn.Dense(self.out, **init)(x)


def init_mlp(key: jax.Array, hidden: Sequence[int], in_size: int, out_size: int):
    """Parameters of one `MLP(hidden, out_size)` taking `in_size` inputs."""
    return MLP(tuple(hidden), out_size).init(key, jnp.zeros((1, in_size)))


def init_ensemble(key: jax.Array, size: int, hidden: Sequence[int], in_size: int, out_size: int):
    """`size` independent MLPs, parameters stacked on a leading axis of length `size`."""
    keys = jax.random.split(key, size)
    return jax.vmap(lambda k: init_mlp(k, hidden, in_size, out_size))(keys)


def apply_mlp(params, x: jax.Array, hidden: Sequence[int], out_size: int, precision: str = "f32") -> jax.Array:
    return MLP(tuple(hidden), out_size, precision).apply(params, x)


def polyak(target, online, tau: float):
    """target ← (1 − τ) target + τ online, leaf by leaf (the target networks' averaging)."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def optimizer(lr: float, grad_clip: float, grad_scale: float = 1.0) -> optax.GradientTransformation:
    """Every agent's optimiser: gradient clipping by value (as the original code), then RAdam.

    grad_scale multiplies the gradient first: the loss scale on which the clip and RAdam act
    (the MAGE critic's: `update.Agent.critic_loss_scale`)."""
    # One chain layout for every scale (×1 is exact), so optimiser states never depend on λ.
    return optax.chain(optax.scale(grad_scale), optax.clip(grad_clip), optax.radam(lr))
