"""Ensemble dynamics: one member per sample, reparameterised sampling, NLL learning a linear system."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from magejax.models import normalization
from magejax.models.dynamics import EnsembleModel

OBS, ACT, E = 3, 2, 4


def fitted_model(key, **kwargs):
    model = EnsembleModel(obs_size=OBS, action_size=ACT, ensemble_size=E, hidden=(16, 16), **kwargs)
    state = model.init(key)
    x = jax.random.normal(jax.random.PRNGKey(1), (256, OBS + ACT))
    d = jax.random.normal(jax.random.PRNGKey(2), (256, OBS))
    state = model.with_stats(state, normalization.update(normalization.init(OBS + ACT), x),
                             normalization.update(normalization.init(OBS), d))
    return model, state


def test_sample_uses_exactly_one_member_per_sample_in_equal_shares():
    # A vanishing variance makes each sample equal its member's mean, so the member is identifiable.
    model, state = fitted_model(jax.random.PRNGKey(0), min_logvar=-60.0, max_logvar=-59.0)
    obs = jax.random.normal(jax.random.PRNGKey(3), (64, OBS))
    action = jax.random.uniform(jax.random.PRNGKey(4), (64, ACT), minval=-1, maxval=1)
    sample = model.sample_next_obs(state, obs, action, jax.random.PRNGKey(5))
    means = model.mean_next_obs(state, obs, action)  # (E, B, O)
    assert sample.shape == (64, OBS) and means.shape == (E, 64, OBS)
    dist = jnp.max(jnp.abs(means - sample[None]), axis=-1)  # (E, B)
    member = jnp.argmin(dist, axis=0)
    assert float(jnp.max(jnp.min(dist, axis=0))) < 1e-5          # each sample is one member's prediction
    assert float(jnp.min(jnp.sort(dist, axis=0)[1])) > 1e-3        # and not any other member's
    np.testing.assert_array_equal(np.bincount(np.asarray(member), minlength=E), [64 // E] * E)
    # The assignment is random: another key gives another assignment.
    other = model.sample_next_obs(state, obs, action, jax.random.PRNGKey(6))
    assert not jnp.allclose(other, sample)


def test_sample_evaluates_one_member_per_sample_not_all():
    """Count the matmul work in the jaxpr: B rows in total per layer, not E·B."""
    model, state = fitted_model(jax.random.PRNGKey(0))
    obs, action = jnp.zeros((64, OBS)), jnp.zeros((64, ACT))
    jaxpr = jax.make_jaxpr(model.sample_next_obs)(state, obs, action, jax.random.PRNGKey(0))

    def dot_flops(jaxpr):
        total = 0
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                out = eqn.outvars[0].aval.shape
                (lhs_contract, _), _ = eqn.params["dimension_numbers"]
                k = np.prod([eqn.invars[0].aval.shape[d] for d in lhs_contract])
                total += 2 * np.prod(out) * k
            for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else []:
                total += dot_flops(sub)
            if "jaxpr" in eqn.params:
                inner = eqn.params["jaxpr"]
                total += dot_flops(getattr(inner, "jaxpr", inner))
        return total

    per_sample = 2 * ((OBS + ACT) * 16 + 16 * 16 + 16 * 2 * OBS)
    assert dot_flops(jaxpr.jaxpr) == 64 * per_sample  # E·64·per_sample if all members ran


def test_sample_is_reparameterised_and_differentiable_in_action():
    model, state = fitted_model(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(3), (8, OBS))
    action = jnp.zeros((8, ACT))
    key = jax.random.PRNGKey(9)
    f = lambda a: model.sample_next_obs(state, obs, a, key)
    np.testing.assert_array_equal(f(action), f(action))  # same key: same ε and members
    jac = jax.jacfwd(f)(action)
    assert jac.shape == (8, OBS, 8, ACT) and jnp.all(jnp.isfinite(jac)) and float(jnp.abs(jac).max()) > 0


def test_log_variance_is_bounded():
    model, state = fitted_model(jax.random.PRNGKey(0), min_logvar=-5.0, max_logvar=-1.0)
    params0 = jax.tree.map(lambda p: p[0] * 100.0, state.params)  # huge raw outputs
    _, logvar = model.member_forward(params0, 10 * jax.random.normal(jax.random.PRNGKey(1), (100, OBS + ACT)))
    assert float(logvar.min()) >= -5.0 and float(logvar.max()) <= -1.0


def test_nll_decreases_on_a_known_linear_system():
    rng = np.random.default_rng(0)
    A = np.eye(OBS) + 0.1 * rng.normal(size=(OBS, OBS))
    B = rng.normal(size=(ACT, OBS))
    s = rng.normal(size=(4096, OBS)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(4096, ACT)).astype(np.float32)
    s_next = (s @ A.T + a @ B + 0.01 * rng.normal(size=(4096, OBS))).astype(np.float32)
    model = EnsembleModel(obs_size=OBS, action_size=ACT, ensemble_size=E, hidden=(32, 32), lr=3e-3)
    state = model.init(jax.random.PRNGKey(0))
    state = model.with_stats(state, normalization.update(normalization.init(OBS + ACT), np.concatenate([s, a], 1)),
                             normalization.update(normalization.init(OBS), s_next - s))
    step = jax.jit(model.train_step)
    rows = np.arange(4096)
    hold = lambda st: model.nll_loss(st.params, st, *(np.broadcast_to(x[:512], (E,) + x[:512].shape)
                                                      for x in (s, a, s_next)))[1]
    before = hold(state)
    for i in range(300):
        idx = np.stack([rng.choice(rows, 64) for _ in range(E)])  # each member its own batch
        state, metrics = step(state, s[idx], a[idx], s_next[idx])
    after = hold(state)
    assert float(after["model_nll"]) < float(before["model_nll"]) - 1.0
    assert float(after["model_mse"]) < 0.1 * float(before["model_mse"])
    # The members were trained on different batches, so they differ.
    assert not jnp.allclose(state.params["params"]["Dense_0"]["kernel"][0],
                            state.params["params"]["Dense_0"]["kernel"][1])
