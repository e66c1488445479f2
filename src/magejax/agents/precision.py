"""Matrix-product precision of every network (`Config.precision`): what a dense layer's dot does.

  f32   full float32 products. On NVIDIA GPUs JAX's default for float32 is TF32 (10-bit mantissa
        operands), which silently changes some trainings (mujoco_playground#86); "f32" asks for
        `Precision.HIGHEST` explicitly, so it means float32 everywhere.
  tf32  the GPU default, `Precision.DEFAULT`: TF32 tensor cores on NVIDIA GPUs from Ampere on.
        On CPUs it is float32 (XLA's CPU backend has no TF32).
  bf16  bfloat16 operands (8-bit mantissa), float32 accumulation: tensor cores on GPUs,
        AVX512-BF16 / AMX on CPUs. Every product a dense layer needs, at every order of
        differentiation (MAGE's critic loss is a gradient of an action-gradient), takes bf16
        operands: the layer's product x·W and its two backward products g·Wᵀ and xᵀ·g are three
        custom-VJP product forms whose derivatives are each other (`_DIMS`), so autodiff never
        falls back to float32 operands. Products output float32, with one exception on XLA's
        CPU backend: the xᵀ·g form (contracting both operands' first dimension, the weight
        gradient) outputs bfloat16 (about 2⁻⁹ relative error), because XLA's CPU runtime leaves
        that form unfused and its DotThunk has no bf16 x bf16 -> f32 kernel (UNIMPLEMENTED in
        MAGE's second-order gradient); XLA then runs it as a float32 product anyway
        (docs/notes/bf16_on_cpu.md: census and timings).

Only the products change: parameters, optimiser states, normalisers, activations, losses,
reductions, the replay buffer and the env stay float32 under every choice.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from magejax.configs import PRECISIONS

_LAX_PRECISION = {"f32": lax.Precision.HIGHEST, "tf32": lax.Precision.DEFAULT}


def dot_general(precision: str) -> Callable:
    """The `lax.dot_general` a dense layer (flax `nn.Dense(dot_general=...)`) uses under
    `precision`, one of `PRECISIONS`: the caller's own `precision` argument is overridden."""
    if precision == "bf16":
        return _bf16_dot
    if precision not in _LAX_PRECISION:
        raise ValueError(f"precision: one of {', '.join(PRECISIONS)}, got {precision!r}")
    fixed = _LAX_PRECISION[precision]

    def dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
        return lax.dot_general(lhs, rhs, dimension_numbers, precision=fixed,
                               preferred_element_type=preferred_element_type)
    return dot


# The three 2-D product forms of a dense layer; each one's derivatives are the other two, so
# every order of differentiation stays in this set (C = form(A, B), G the cotangent of C):
#   NN  C = A·B     (M,K)(K,N)->(M,N)   dA = NT(G, B)   dB = TN(A, G)
#   NT  C = A·Bᵀ    (M,K)(N,K)->(M,N)   dA = NN(G, B)   dB = TN(G, A)
#   TN  C = Aᵀ·B    (M,K)(M,N)->(K,N)   dA = NT(B, G)   dB = NN(A, G)
_DIMS = {"NN": (((1,), (0,)), ((), ())), "NT": (((1,), (1,)), ((), ())), "TN": (((0,), (0,)), ((), ()))}


def _backward_dtype(form: str):
    """Output type of a backward product: float32, except a TN product on XLA's CPU backend."""
    return jnp.bfloat16 if form == "TN" and jax.default_backend() == "cpu" else jnp.float32


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _product(a, b, form: str, out_dtype):
    """form(a, b) with bf16 operands and float32 accumulation, returned as float32."""
    return lax.dot_general(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), _DIMS[form],
                           preferred_element_type=out_dtype).astype(jnp.float32)


def _product_fwd(a, b, form, out_dtype):
    return _product(a, b, form, out_dtype), (a, b)


def _product_bwd(form, out_dtype, residuals, g):
    a, b = residuals
    product = lambda x, y, f: _product(x, y, f, _backward_dtype(f))
    if form == "NN":
        return product(g, b, "NT"), product(a, g, "TN")
    if form == "NT":
        return product(g, b, "NN"), product(g, a, "TN")
    return product(b, g, "NT"), product(a, g, "NN")  # TN


_product.defvjp(_product_fwd, _product_bwd)


def _bf16_dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """A dense layer's product (flax `nn.Dense`: lhs (..., K) · kernel (K, N)) in bf16, float32
    accumulation and result; leading dims of lhs are flattened into one batch of rows."""
    if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or rhs.ndim != 2:
        raise ValueError(f"bf16 products are for dense layers, got dimension_numbers {dimension_numbers}")
    rows = _product(lhs.reshape(-1, lhs.shape[-1]), rhs, "NN", jnp.float32)
    return rows.reshape(lhs.shape[:-1] + (rhs.shape[1],))
