"""The MAGE critic gradient is right: finite differences, the paper's Eq. 13, and what must not move."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from magejax.agents import critic
from tests.helpers import ACT, BATCH, small_problem

KEY = jax.random.PRNGKey(7)


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def test_critic_loss_gradient_matches_central_differences():
    agent, state, model, batch = small_problem("mage")
    flat, unravel = ravel_pytree(state.critic_params)
    assert flat.dtype == jnp.float64

    def loss(flat_params):
        return agent.critic_loss(unravel(flat_params), state, model, batch, KEY)[0]

    grad = jax.grad(loss)(flat)
    assert jnp.all(jnp.isfinite(grad)) and jnp.linalg.norm(grad) > 1e-3
    eps = 1e-6
    rng = np.random.default_rng(0)
    # Random directions and single coordinates.
    directions = [rng.normal(size=flat.shape) for _ in range(4)]
    for i in rng.choice(flat.size, 16, replace=False):
        e = np.zeros(flat.shape)
        e[i] = 1.0
        directions.append(e)
    for d in directions:
        d = jnp.asarray(d)
        numeric = (loss(flat + eps * d) - loss(flat - eps * d)) / (2 * eps)
        np.testing.assert_allclose(jnp.dot(grad, d), numeric, rtol=1e-5, atol=1e-8)


def test_action_gradient_of_td_error_matches_eq13():
    """∇ₐδ = dr/da + γ ∂ŝ/∂a (∂Q̄/∂ŝ + ∂π̄/∂ŝ ∂Q̄/∂a') − ∂Q/∂a, each Jacobian computed on its own."""
    # No smoothing noise, so a' = π̄(ŝ) exactly and the test needs no knowledge of the noise draw.
    agent, state, model, batch = small_problem("mage", target_noise=0.0)
    cfg, env = agent.config, agent.env
    q_single, twin_q = agent.q_fns
    obs = batch.obs
    action = agent.policy(state, obs)
    target_fn = agent.imagined_target_fn(state, model, obs, KEY)
    delta, grad_a = critic.td_errors_and_action_grads(state.critic_params, agent.obs_input(state, obs), action,
                                                      target_fn,
                                                      q_single=q_single)
    assert delta.shape == (2, BATCH) and grad_a.shape == (2, BATCH, ACT)

    # ŝ(a) with the same member assignment and ε (imagined_target_fn's documented key split).
    model_key, _ = jax.random.split(KEY)
    next_obs_fn = lambda a: agent.model.sample_next_obs(model, obs, a, model_key)
    next_obs = next_obs_fn(action)
    full_jac = jax.jacfwd(next_obs_fn)(action)  # (B, O, B, A)
    ds_da = jnp.stack([full_jac[b, :, b, :] for b in range(BATCH)])  # (B, O, A)
    # Cross-sample blocks are zero: sample b's next state depends on its own action only.
    off_diag = full_jac.at[jnp.arange(BATCH), :, jnp.arange(BATCH), :].set(0.0)
    assert jnp.max(jnp.abs(off_diag)) == 0.0

    for b in range(BATCH):
        s, a, s_next = obs[b], action[b], next_obs[b]
        dr_da = jax.grad(env.reward_fn, argnums=1)(s, a, s_next)
        dr_ds = jax.grad(env.reward_fn, argnums=2)(s, a, s_next)
        # The networks see normalised states; each derivative below goes through that map too.
        norm = lambda s_: agent.obs_input(state, s_[None])
        a_next = agent.pi(state.actor_target, norm(s_next))[0]
        q_next = twin_q(state.critic_target, norm(s_next), a_next[None])[:, 0]
        i = int(jnp.argmin(q_next))  # min(Q̄1, Q̄2) passes the gradient of the smaller one
        q_target_i = lambda s_, a_: q_single(jax.tree.map(lambda p: p[i], state.critic_target), norm(s_), a_[None])[0]
        dq_ds = jax.grad(q_target_i, argnums=0)(s_next, a_next)
        dq_da_next = jax.grad(q_target_i, argnums=1)(s_next, a_next)
        dpi_ds = jax.jacobian(lambda s_: agent.pi(state.actor_target, norm(s_))[0])(s_next)  # (A, O)
        dy_da = dr_da + ds_da[b].T @ dr_ds + cfg.gamma * ds_da[b].T @ (dq_ds + dpi_ds.T @ dq_da_next)
        for c in range(2):
            q_online = lambda a_: q_single(jax.tree.map(lambda p: p[c], state.critic_params), norm(s), a_[None])[0]
            expected = dy_da - jax.grad(q_online)(a)
            np.testing.assert_allclose(grad_a[c, b], expected, rtol=1e-9, atol=1e-12)


def test_outer_gradient_is_zero_for_model_actor_and_targets():
    agent, state, model, batch = small_problem("mage")
    grads_state, grads_model = jax.grad(agent.critic_loss, argnums=(1, 2), has_aux=True, allow_int=True)(
        state.critic_params, state, model, batch, KEY)[0]
    # Only the explicit critic_params argument may carry gradient; state and model enter frozen.
    float_leaves = [x for x in jax.tree.leaves((grads_state, grads_model)) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert len(float_leaves) > 10
    for leaf in float_leaves:
        assert jnp.all(leaf == 0.0)
    grad_critic = jax.grad(lambda p: agent.critic_loss(p, state, model, batch, KEY)[0])(state.critic_params)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad_critic)) > 0
    # ...although the loss does depend on all of them: the zero is a stop, not an absence.
    loss = lambda s, m: agent.critic_loss(state.critic_params, s, m, batch, KEY)[0]
    bump = lambda tree: jax.tree.map(lambda x: x * 1.1 if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)
    base = loss(state, model)
    assert loss(state, model.replace(params=bump(model.params))) != base
    assert loss(state.replace(actor_params=bump(state.actor_params)), model) != base
    assert loss(state.replace(actor_target=bump(state.actor_target)), model) != base
    assert loss(state.replace(critic_target=bump(state.critic_target)), model) != base


def test_update_step_changes_only_critic_when_actor_is_not_updated():
    agent, state, model, batch = small_problem("mage")
    new_state, metrics = agent.update_step(state, model, batch, KEY, jnp.asarray(False))
    assert jnp.isnan(metrics["actor_loss"])
    same = lambda a, b: all(jnp.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert same(new_state.actor_params, state.actor_params)
    assert same(new_state.actor_target, state.actor_target)
    assert not same(new_state.critic_params, state.critic_params)
    # Polyak: Q̄ ← (1 − τ) Q̄ + τ φ_new.
    tau = agent.config.tau
    expected = jax.tree.map(lambda t, o: (1 - tau) * t + tau * o, state.critic_target, new_state.critic_params)
    for x, y in zip(jax.tree.leaves(new_state.critic_target), jax.tree.leaves(expected)):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    with_actor, metrics = agent.update_step(state, model, batch, KEY, jnp.asarray(True))
    assert jnp.isfinite(metrics["actor_loss"]) and not same(with_actor.actor_params, state.actor_params)


def test_lambda_only_loss_is_dyna_loss():
    mage_agent, state, model, batch = small_problem("mage")
    dyna_agent, _, _, _ = small_problem("dyna")
    q_single, _ = mage_agent.q_fns
    obs = mage_agent.obs_input(state, batch.obs)
    action = mage_agent.pi(state.actor_params, obs)
    target_fn = mage_agent.imagined_target_fn(state, model, batch.obs, KEY)

    def lambda_only(params):
        return critic.mage_loss(params, obs, action, target_fn, q_single=q_single, lam=1.0, grad_weight=0.0)[0]

    def dyna(params):
        return dyna_agent.critic_loss(params, state, model, batch, KEY)[0]

    np.testing.assert_allclose(lambda_only(state.critic_params), dyna(state.critic_params), rtol=1e-12)
    for x, y in zip(jax.tree.leaves(jax.grad(lambda_only)(state.critic_params)),
                    jax.tree.leaves(jax.grad(dyna)(state.critic_params))):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-14)
    # With the gradient term the losses differ: the test above is not vacuous.
    full = critic.mage_loss(state.critic_params, obs, action, target_fn, q_single=q_single, lam=1.0)[0]
    assert abs(full - dyna(state.critic_params)) > 1e-6


def test_safe_norm_gradient_is_zero_at_zero_and_exact_elsewhere():
    g = jax.grad(lambda x: critic.safe_norm(x))(jnp.zeros(3))
    assert jnp.all(g == 0.0)
    x = jnp.array([3.0, 4.0, 0.0])
    np.testing.assert_allclose(critic.safe_norm(x), 5.0)
    np.testing.assert_allclose(jax.grad(critic.safe_norm)(x), x / 5.0)
    # The MAGE loss stays finite when ∇ₐδ is exactly zero (a critic equal to its target's slope).
    loss = lambda x: critic.huber(critic.safe_norm(x))
    assert jnp.all(jnp.isfinite(jax.grad(loss)(jnp.zeros((4, 2)).sum(0))))
