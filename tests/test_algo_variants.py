"""MAGE-DDPG (one critic, no target smoothing, no actor delay) and the frozen-actor option."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from magejax import configs
from magejax.agents import critic
from magejax.train import make_train
from tests.helpers import ACT, BATCH, small_problem

KEY = jax.random.PRNGKey(11)


def test_mage_ddpg_spec_turns_off_td3s_three_changes():
    ddpg = configs.preset("pendulum", "mage-ddpg", "tiny")
    td3 = configs.preset("pendulum", "mage", "tiny")
    assert (ddpg.spec.num_critics, ddpg.spec.target_smoothing, ddpg.actor_delay) == (1, False, 1)
    assert (td3.spec.num_critics, td3.spec.target_smoothing, td3.actor_delay) == (2, True, 2)
    # Same loss and data as MAGE-TD3: only the TD3 parts differ.
    assert (ddpg.spec.critic_loss, ddpg.spec.transitions, ddpg.num_updates) == ("mage", "imagined", 10)


def test_mage_ddpg_has_one_critic_and_no_smoothing_noise():
    with jax.enable_x64(True):
        agent, state, model, _ = small_problem("mage-ddpg")
        assert all(x.shape[0] == 1 for x in jax.tree.leaves(state.critic_params))
        assert np.all(agent.smoothing_noise(KEY, (BATCH, ACT)) == 0.0)
        agent_td3, *_ = small_problem("mage")
        assert np.any(agent_td3.smoothing_noise(KEY, (BATCH, ACT)) != 0.0)


def test_losses_and_action_grads_with_one_critic_agree_with_each_twin():
    """The critic-count-generic code: the twin loss is the mean of the two one-critic losses."""
    with jax.enable_x64(True):
        agent, state, model, batch = small_problem("mage")
        q_single, _ = agent.q_fns
        obs = batch.obs
        action = agent.policy(state, obs)
        target_fn = agent.imagined_target_fn(state, model, obs, KEY)
        twin_loss, _ = critic.mage_loss(state.critic_params, obs, action, target_fn, q_single=q_single, lam=0.3)
        singles = [jax.tree.map(lambda p, i=i: p[i:i + 1], state.critic_params) for i in range(2)]
        one = [critic.mage_loss(p, obs, action, target_fn, q_single=q_single, lam=0.3)[0] for p in singles]
        np.testing.assert_allclose(twin_loss, np.mean(one), rtol=1e-12)
        q, grads = critic.values_and_action_grads(singles[1], obs, action, q_single=q_single)
        assert q.shape == (1, BATCH) and grads.shape == (1, BATCH, ACT)
        params_1 = jax.tree.map(lambda p: p[1], state.critic_params)
        expected = jax.vmap(jax.grad(lambda a, s: q_single(params_1, s[None], a[None])[0]))(action, obs)
        np.testing.assert_allclose(grads[0], expected, rtol=1e-10)


def test_mage_ddpg_trains_with_finite_metrics():
    config = configs.preset("pendulum", "mage-ddpg", "tiny")
    _, metrics = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    for name in ("eval_return", "critic_loss", "td_action_grad_norm", "q_action_grad_norm", "actor_loss"):
        assert np.all(np.isfinite(metrics[name][1:])), name


def test_frozen_actor_never_moves_while_the_critic_learns():
    config = configs.preset("pendulum", "dyna", "tiny", train_actor=False)
    trainer = make_train(config)
    key = jax.random.PRNGKey(0)
    initial = trainer.agent.init(jax.random.split(key, 4)[0])  # train.init's key split
    state, metrics = jax.jit(trainer.train)(key)
    for a, b in zip(jax.tree.leaves(initial.actor_params), jax.tree.leaves(state.agent.actor_params)):
        np.testing.assert_array_equal(a, b)
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(initial.critic_params),
                                                     jax.tree.leaves(state.agent.critic_params))]
    assert any(moved)
    assert np.all(np.isnan(metrics["actor_loss"])) and np.all(np.isfinite(metrics["critic_loss"][1:]))


@pytest.mark.parametrize("algo", ["mage", "mage-ddpg"])
def test_actor_delay_counts_actor_steps(algo):
    config = configs.preset("pendulum", algo, "tiny", total_steps=100, eval_every=100, warmup_steps=90)
    state, _ = jax.jit(make_train(config).train)(jax.random.PRNGKey(1))
    # Agent updates run from step warmup − 1 on (train.env_step): 11 steps of 10 updates.
    updates = (config.total_steps - config.warmup_steps + 1) * config.num_updates
    # networks.optimizer chains (scale, clip, RAdam): RAdam's step count is in its third state.
    assert int(state.agent.actor_opt_state[2][0].count) == updates // config.actor_delay
