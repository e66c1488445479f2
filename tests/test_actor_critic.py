"""Actor and critic building blocks: shapes, the fused DPG gradient, TD target, Polyak."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax.agents import actor, critic, networks

OBS, ACT, B = 4, 3, 16


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def nets():
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    pi = actor.make_apply(ACT, (8, 8))
    q_single, twin_q = critic.make_apply((8, 8))
    f64 = lambda t: jax.tree.map(lambda x: x.astype(jnp.float64), t)
    actor_params = f64(actor.init(k[0], OBS, ACT, (8, 8)))
    critic_params = f64(critic.init(k[1], OBS, ACT, (8, 8)))
    obs = jax.random.normal(k[2], (B, OBS), jnp.float64)
    return pi, q_single, twin_q, actor_params, critic_params, obs


def test_shapes_and_tanh_bounds():
    pi, q_single, twin_q, actor_params, critic_params, obs = nets()
    a = pi(actor_params, 100.0 * obs)
    assert a.shape == (B, ACT) and float(jnp.abs(a).max()) <= 1.0
    assert twin_q(critic_params, obs, a).shape == (2, B)
    assert jax.tree.leaves(critic_params)[0].shape[0] == 2
    # The two critics are initialised independently.
    q = twin_q(critic_params, obs, a)
    assert not jnp.allclose(q[0], q[1])


def test_fused_dpg_gradient_equals_autodiff_of_dpg_loss():
    pi, q_single, twin_q, actor_params, critic_params, obs = nets()
    loss, grads, norm = actor.dpg_loss_and_grads(actor_params, critic_params, obs, pi, q_single)
    ref_loss, ref_grads = jax.value_and_grad(actor.dpg_loss)(actor_params, critic_params, obs, pi, twin_q)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    for x, y in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-14)
    # ‖∇ₐQ_i‖ from the fused pass equals per-critic autodiff.
    a = pi(actor_params, obs)
    per_critic = [jax.vmap(jax.grad(lambda a_, s_, i=i: q_single(jax.tree.map(lambda p: p[i], critic_params),
                                                                   s_[None], a_[None])[0]))(a, obs) for i in range(2)]
    expected = np.mean([np.linalg.norm(g, axis=-1) for g in per_critic])
    np.testing.assert_allclose(norm, expected, rtol=1e-10)


def test_td_target_uses_min_of_target_critics_and_masks_terminal():
    pi, q_single, twin_q, actor_params, critic_params, obs = nets()
    reward = jnp.arange(B, dtype=jnp.float64)
    terminated = (jnp.arange(B) % 2).astype(jnp.float64)
    noise = jnp.zeros((B, ACT))
    y = critic.td_target(critic_params, actor_params, reward, obs, terminated, noise, gamma=0.9, pi=pi, twin_q=twin_q)
    q_next = twin_q(critic_params, obs, pi(actor_params, obs)).min(0)
    np.testing.assert_allclose(y, reward + 0.9 * (1 - terminated) * q_next, rtol=1e-12)
    np.testing.assert_allclose(y[1::2], reward[1::2])


def test_smoothing_noise_is_clipped():
    noise = critic.smoothing_noise(jax.random.PRNGKey(0), (10000, 2), 0.2, 0.5)
    assert float(jnp.abs(noise).max()) <= 0.5 and 0.15 < float(noise.std()) < 0.25


def test_polyak_moves_target_by_tau():
    target = {"w": jnp.zeros(3)}
    online = {"w": jnp.ones(3)}
    np.testing.assert_allclose(networks.polyak(target, online, 0.005)["w"], 0.005)
