# Try: the bf16 custom_vjp with its backward products in bf16 output (then cast to f32).
import sys, jax, jax.numpy as jnp
from jax import lax
import magejax.agents.precision as P
bf = jnp.bfloat16
NN = (((1,), (0,)), ((), ())); NT = (((1,), (1,)), ((), ())); TN = (((0,), (0,)), ((), ()))
out_bwd = sys.argv[1]  # "f32" or "bf16": the backward products' output type
def d(a, b, dims, out):
    return lax.dot_general(a.astype(bf), b.astype(bf), dims, preferred_element_type=jnp.float32 if out == "f32" else bf).astype(jnp.float32)
@jax.custom_vjp
def mm(x, w): return d(x, w, NN, "f32")
mm.defvjp(lambda x, w: (mm(x, w), (x, w)), lambda r, g: (d(g, r[1], NT, out_bwd), d(r[0], g, TN, out_bwd)))
def dg(lhs, rhs, dn, precision=None, preferred_element_type=None):
    return mm(lhs.reshape(-1, lhs.shape[-1]), rhs).reshape(lhs.shape[:-1] + (rhs.shape[1],))
orig = P.dot_general
P.dot_general = lambda p: dg if p == "bf16" else orig(p)
from magejax import configs
configs.config.PRECISIONS  # noqa
import magejax.configs.validation as V
V.PRECISIONS = ("f32", "tf32", "bf16")
from magejax.train import make_train
c = configs.preset('pendulum','mage','tiny').replace(precision="bf16", total_steps=200, eval_every=100)
try:
    s, m = jax.jit(make_train(c).train)(jax.random.PRNGKey(0))
    print(out_bwd, "ok", {k: float(v[-1]) for k, v in m.items() if k in ("eval_return", "critic_loss", "td_action_grad_norm")})
except Exception as e:
    print(out_bwd, "FAIL", str(e).splitlines()[0][:120])
