"""`Config.precision`: every network's matrix products ask for what the setting names; "f32" is
Precision.HIGHEST explicitly (JAX's GPU default for float32 is TF32), and on this CPU f32 and tf32
train bit-identically."""
import jax
import jax.extend
import jax.numpy as jnp
import pytest
from jax import lax

from magejax import configs
from magejax.agents import actor, critic, networks
from magejax.models.dynamics import EnsembleModel
from magejax.train import make_train


def _dot_precisions(fn, *args) -> set:
    """The `precision` of every dot_general in fn's jaxpr, nested jaxprs (vmap, grad) included."""
    found = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.add(eqn.params["precision"])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


@pytest.mark.parametrize("precision, expected", [("f32", lax.Precision.HIGHEST), ("tf32", lax.Precision.DEFAULT)])
def test_every_network_asks_for_its_precision(precision, expected):
    key = jax.random.PRNGKey(0)
    obs, action = jnp.ones((4, 3)), jnp.ones((4, 1))
    q_single, twin_q = critic.make_apply((8, 8), precision)
    pi = actor.make_apply(1, (8,), precision)
    critics, actor_params = critic.init(key, 3, 1, (8, 8)), actor.init(key, 3, 1, (8,))
    model = EnsembleModel(obs_size=3, action_size=1, ensemble_size=2, hidden=(8,), precision=precision)
    model_state = model.init(key)
    as_pair = lambda p: (p, p)
    for fn, args in [
        (lambda p: twin_q(p, obs, action), (critics,)),
        # MAGE's second-order gradient: ∂/∂φ of ∇ₐQ, whose transposed dots come from autodiff.
        (jax.grad(lambda p: jnp.sum(jax.grad(lambda a: jnp.sum(twin_q(p, obs, a)))(action) ** 2)), (critics,)),
        (lambda p: pi(p, obs), (actor_params,)),
        (lambda s: model.mean_next_obs(s, obs, action), (model_state,)),
    ]:
        assert _dot_precisions(fn, *args) == {as_pair(expected)}


def test_f32_and_tf32_train_identically_on_a_cpu():
    assert jax.default_backend() == "cpu"  # XLA's CPU backend has no TF32: both are float32
    config = configs.preset("pendulum", "mage", "tiny").replace(total_steps=200, eval_every=100)
    _, m32 = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    _, mtf = jax.jit(make_train(config.replace(precision="tf32")).train)(jax.random.PRNGKey(0))
    for name in m32:
        assert jnp.array_equal(m32[name], mtf[name], equal_nan=True), name


def test_unknown_precision_is_refused():
    with pytest.raises(configs.ConfigError, match="precision: one of f32, tf32, got 'bf16'"):
        configs.validate(configs.preset("pendulum", "mage", "tiny").replace(precision="bf16"))
