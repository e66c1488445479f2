"""Matrix-product precision of every network (`Config.precision`): what a dense layer's dot does.

  f32   full float32 products. On NVIDIA GPUs JAX's default for float32 is TF32 (10-bit mantissa
        operands), which silently changes some trainings (mujoco_playground#86); "f32" asks for
        `Precision.HIGHEST` explicitly, so it means float32 everywhere.
  tf32  the GPU default, `Precision.DEFAULT`: TF32 tensor cores on NVIDIA GPUs from Ampere on.
        On CPUs it is float32 (XLA's CPU backend has no TF32).

Only the products change: parameters, optimiser states, normalisers, activations, losses,
reductions, the replay buffer and the env stay float32 under every choice.
"""
from __future__ import annotations

from typing import Callable

from jax import lax

from magejax.configs import PRECISIONS

_LAX_PRECISION = {"f32": lax.Precision.HIGHEST, "tf32": lax.Precision.DEFAULT}


def dot_general(precision: str) -> Callable:
    """The `lax.dot_general` a dense layer (flax `nn.Dense(dot_general=...)`) uses under
    `precision`, one of `PRECISIONS`: the caller's own `precision` argument is overridden."""
    if precision not in _LAX_PRECISION:
        raise ValueError(f"precision: one of {', '.join(PRECISIONS)}, got {precision!r}")
    fixed = _LAX_PRECISION[precision]

    def dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
        return lax.dot_general(lhs, rhs, dimension_numbers, precision=fixed,
                               preferred_element_type=preferred_element_type)
    return dot
