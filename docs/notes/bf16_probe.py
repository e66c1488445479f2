"""The bf16 probe of docs/notes/bf16_on_cpu.md (not part of the library).

`install(backward_output)` makes `precision="bf16"` a valid Config value whose dense layers use a
custom_vjp product: bf16 operands, float32 accumulation and output in the forward pass; in the
backward pass the two products output `backward_output` ("bf16" or "f32"), then cast to float32.

    python docs/notes/bf16_probe.py bf16|f32   # a tiny MAGE-TD3 run under the probe (f32: crashes)

bf16_accuracy_probe.py, bf16_timing_probe.py and bf16_dot_census.py import it (run them from the
repository root).
"""
import sys

import jax
import jax.numpy as jnp
from jax import lax

NN = (((1,), (0,)), ((), ()))   # x·W
NT = (((1,), (1,)), ((), ()))   # g·Wᵀ
TN = (((0,), (0,)), ((), ()))   # xᵀ·g


def install(backward_output: str) -> None:
    import magejax.agents.precision as precision
    import magejax.configs.validation as validation

    out_type = {"f32": jnp.float32, "bf16": jnp.bfloat16}[backward_output]

    def dot(a, b, dims, out):
        return lax.dot_general(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), dims,
                               preferred_element_type=out).astype(jnp.float32)

    @jax.custom_vjp
    def matmul(x, w):
        return dot(x, w, NN, jnp.float32)

    matmul.defvjp(lambda x, w: (matmul(x, w), (x, w)),
                  lambda r, g: (dot(g, r[1], NT, out_type), dot(r[0], g, TN, out_type)))

    def dense_dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
        return matmul(lhs.reshape(-1, lhs.shape[-1]), rhs).reshape(lhs.shape[:-1] + (rhs.shape[1],))

    library_dot = precision.dot_general
    precision.dot_general = lambda p: dense_dot if p == "bf16" else library_dot(p)
    validation.PRECISIONS = ("f32", "tf32", "bf16")


if __name__ == "__main__":
    install(sys.argv[1])
    from magejax import configs
    from magejax.train import make_train

    c = configs.preset("pendulum", "mage", "tiny").replace(precision="bf16", total_steps=200, eval_every=100)
    try:
        _, m = jax.jit(make_train(c).train)(jax.random.PRNGKey(0))
        print(sys.argv[1], "ok", {k: float(v[-1]) for k, v in m.items()
                                  if k in ("eval_return", "critic_loss", "td_action_grad_norm")})
    except Exception as e:  # noqa: BLE001 — the crash is the finding
        print(sys.argv[1], "FAIL", str(e).splitlines()[0][:120])
