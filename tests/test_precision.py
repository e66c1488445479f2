"""`Config.precision`: every network's matrix products ask for what the setting names; "f32" is
Precision.HIGHEST explicitly (JAX's GPU default for float32 is TF32), and on this CPU f32 and tf32
train bit-identically; "bf16" products take bfloat16 operands at every order of differentiation,
stay close to float32, and train every algorithm."""
import json
import sys
from pathlib import Path

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from magejax import configs
from magejax.agents import actor, critic, gaussian_policy, networks
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
    with pytest.raises(configs.ConfigError, match="precision: one of f32, tf32, bf16, got 'fp8'"):
        configs.validate(configs.preset("pendulum", "mage", "tiny").replace(precision="fp8"))


def _dot_dtypes(fn, *args) -> set:
    """(operand dtypes, preferred_element_type) of every dot_general in fn's jaxpr, nested ones included."""
    found = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.add((tuple(str(v.aval.dtype) for v in eqn.invars), str(eqn.params["preferred_element_type"])))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_bf16_products_take_bf16_operands_at_every_order():
    """Forward, backward and MAGE's second-order products: bf16 x bf16, accumulated in float32
    (forward) or rounded to bf16 (backward products on the CPU backend), never float32 operands."""
    key = jax.random.PRNGKey(0)
    obs, action = jax.random.normal(key, (16, 3)), jax.random.uniform(key, (16, 1), minval=-1, maxval=1)
    _, twin_q = critic.make_apply((8, 8), "bf16")
    critics = critic.init(key, 3, 1, (8, 8))
    forward = _dot_dtypes(lambda p: twin_q(p, obs, action), critics)
    assert forward == {(("bfloat16", "bfloat16"), "float32")}
    second_order = _dot_dtypes(jax.grad(lambda p: jnp.sum(jax.grad(lambda a: jnp.sum(twin_q(p, obs, a)))(action) ** 2)),
                               critics)
    assert {operands for operands, _ in second_order} == {("bfloat16", "bfloat16")}
    assert {out for _, out in second_order} == {"float32", "bfloat16"}  # CPU: backward products in bf16
    model = EnsembleModel(obs_size=3, action_size=1, ensemble_size=2, hidden=(8,), precision="bf16")
    pi = actor.make_apply(1, (8,), "bf16")
    maac_policy = gaussian_policy.make_apply(1, (8,), "bf16")
    for fn, arg in [(lambda s: model.mean_next_obs(s, obs, action), model.init(key)),
                    (lambda p: pi(p, obs), actor.init(key, 3, 1, (8,))),
                    (lambda p: maac_policy(p, obs), gaussian_policy.init(key, 3, 1, (8,)))]:
        assert _dot_dtypes(fn, arg) == {(("bfloat16", "bfloat16"), "float32")}


def test_bf16_gradients_are_close_to_float32_but_not_equal():
    """MAGE's critic gradient (a gradient of an action-gradient) under bf16 is within 2 % of float32
    (bf16 has an 8-bit mantissa: ~0.4 % per rounding), and is not float32 in disguise."""
    key = jax.random.PRNGKey(1)
    obs, action = jax.random.normal(key, (64, 3)), jax.random.uniform(key, (64, 1), minval=-1, maxval=1)
    critics = critic.init(jax.random.PRNGKey(2), 3, 1, (64, 64))
    grads = {}
    for p in ("f32", "bf16"):
        _, twin_q = critic.make_apply((64, 64), p)
        loss = lambda params: jnp.sum(jax.grad(lambda a: jnp.sum(twin_q(params, obs, a)))(action) ** 2)
        grads[p] = jnp.concatenate([x.ravel() for x in jax.tree.leaves(jax.jit(jax.grad(loss))(critics))])
    rel = float(jnp.linalg.norm(grads["bf16"] - grads["f32"]) / jnp.linalg.norm(grads["f32"]))
    assert 1e-5 < rel < 2e-2, rel


def test_a_bf16_run_trains_and_its_accuracy_is_reported(tmp_path):
    """A bf16 MAGE-TD3 run with a learned reward (actor, twin critics, dynamics ensemble, reward
    network: every network TD3, Dyna-TD3 and MAGE have) trains to finite losses; then
    experiments/bf16_accuracy.py reports bf16 against f32 on each of its seeds."""
    from magejax.runs import driver, metrics_io

    config = configs.preset("pendulum", "mage", "tiny").replace(precision="bf16", reward="learned")
    driver.run(config, tmp_path / "run", seeds=2, seed=0)
    last = [r for r in metrics_io.read_metrics(tmp_path / "run") if r["env_step"] == config.total_steps]
    assert len(last) == 2 and all(np.isfinite(r[k]) for r in last for k in ("critic_loss", "actor_loss", "eval_return"))

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import bf16_accuracy

    assert bf16_accuracy.main(["--sizes", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert [r["case"] for r in rows] == [f"{tmp_path.name}/run seed {s}, trained 200 env steps" for s in (0, 1)]
    for r in rows:
        assert all(0 < r[k] < 0.1 for k in ("grad_a_delta", "critic_gradient", "grad_a_q", "grad_a_target")), r
    assert "error ∇ₐδ" in (tmp_path / "out" / "results.md").read_text()
