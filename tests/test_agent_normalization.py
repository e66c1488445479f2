"""Agent input normalisation (the original code's `normalize_data`) and the MAGE critic's loss scale.

The actor and the critics see states standardised with the real states' running statistics; the
model, the reward and the environment keep raw states. With `normalize_obs=False` the losses are
exactly those of the code before normalisation existed (numbers recorded at commit c675c73).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs
from magejax.models import normalization
from magejax.runs import checkpoint
from magejax.train import make_train
from magejax.agents.td3 import Agent
from tests.helpers import small_problem

KEY = jax.random.PRNGKey(3)

# `critic_loss` and `update_step`'s metrics on `small_problem(algo)` with KEY, float64, computed by
# the code at c675c73 (no agent normalisation, critic gradient clipped on the λ-form's scale).
BEFORE_NORMALIZATION = {
    "mage": {"critic_loss": 1.4866854633584654, "td_action_grad_norm": 1.1065918534537202,
             "td_error": 4.85679300548196, "actor_loss": 0.07606271536456229,
             "q_action_grad_norm": 0.11840461873634955},
    "dyna": {"critic_loss": 4.35679300548196, "td_error": 4.85679300548196,
             "actor_loss": 0.07613310759332065, "q_action_grad_norm": 0.1184051247836107},
    "td3": {"critic_loss": 0.011546779613372346, "td_error": 0.12460877377638092,
            "actor_loss": 0.07604017301816585, "q_action_grad_norm": 0.1184057072484816},
}


class UnscaledAgent(Agent):
    """The agent with the critic gradient on the λ-form's scale, as before `critic_loss_scale`."""

    @property
    def critic_loss_scale(self) -> float:
        return 1.0


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("algo", sorted(BEFORE_NORMALIZATION))
def test_flag_off_gives_the_losses_of_the_code_before_normalisation(algo):
    agent, state, model, batch = small_problem(algo, normalize_obs=False)
    agent = UnscaledAgent(config=agent.config, env=agent.env, model=agent.model)
    loss, _ = agent.critic_loss(state.critic_params, state, model, batch, KEY)
    _, metrics = agent.update_step(state, model, batch, KEY, jnp.asarray(True))
    got = {"critic_loss": float(loss), **{k: float(v) for k, v in metrics.items()}}
    assert got.keys() == BEFORE_NORMALIZATION[algo].keys()
    for name, value in BEFORE_NORMALIZATION[algo].items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, err_msg=name)
    # ...and with normalisation on, the same problem gives other losses: the flag does something.
    on, state_on, _, _ = small_problem(algo)
    assert abs(float(on.critic_loss(state_on.critic_params, state_on, model, batch, KEY)[0]) - float(loss)) > 1e-6


def test_actor_and_critic_see_standardised_states():
    agent, state, model, batch = small_problem("td3")
    stats = state.obs_stats
    mean, std = np.asarray(stats.mean), np.sqrt(np.asarray(stats.m2) / float(stats.count))
    assert np.all(np.abs(mean) > 0.05) and np.all(np.abs(std - 1) > 0.3)  # far from the identity
    by_hand = (np.asarray(batch.obs) - mean) / std
    np.testing.assert_allclose(agent.obs_input(state, batch.obs), by_hand, rtol=1e-12)
    np.testing.assert_allclose(agent.policy(state, batch.obs), agent.pi(state.actor_params, by_hand), rtol=1e-12)
    # TD3's loss on raw data with normalisation equals the un-normalised loss on standardised data.
    raw_agent, _, _, _ = small_problem("td3", normalize_obs=False)
    standardised = batch.replace(obs=by_hand, next_obs=(np.asarray(batch.next_obs) - mean) / std)
    np.testing.assert_allclose(agent.critic_loss(state.critic_params, state, None, batch, KEY)[0],
                               raw_agent.critic_loss(state.critic_params, state, None, standardised, KEY)[0],
                               rtol=1e-12)


def test_constant_features_are_centred_not_blown_up():
    """stds below 1e-6 count as 1 (the original's fix_stdev): model noise on a constant feature
    must not become a huge network input."""
    seen = jnp.stack([jnp.linspace(-1.0, 1.0, 10), jnp.full(10, 3.0)], axis=1)
    stats = normalization.update(normalization.init(2), seen)
    x = normalization.normalize_agent_input(stats, jnp.array([[0.0, 3.001]]))
    np.testing.assert_allclose(x[0, 1], 0.001, rtol=1e-6)
    empty = normalization.init(2)
    np.testing.assert_array_equal(normalization.normalize_agent_input(empty, seen), seen)


def test_mage_critic_steps_act_on_the_original_loss_scale():
    """The optimiser sees (1/λ)·∇L: clipping by value at 5 and RAdam's first (un-normalised) steps
    act as in the original code, whose loss is (1/λ)× ours. One step from the same state equals
    the unscaled agent's step on a 1/λ-times-larger loss."""
    lam = 0.2
    agent, state, model, batch = small_problem("mage", lam=lam)
    assert agent.critic_loss_scale == pytest.approx(1 / lam)
    dyna, _, _, _ = small_problem("dyna", lam=lam)
    assert dyna.critic_loss_scale == 1.0

    class OriginalScale(UnscaledAgent):
        def critic_loss(self, *args, **kwargs):
            loss, aux = super().critic_loss(*args, **kwargs)
            return loss / lam, aux

    original = OriginalScale(config=agent.config, env=agent.env, model=agent.model)
    ours, _ = agent.update_step(state, model, batch, KEY, jnp.asarray(False))
    theirs, _ = original.update_step(state, model, batch, KEY, jnp.asarray(False))
    for x, y in zip(jax.tree.leaves(ours.critic_params), jax.tree.leaves(theirs.critic_params)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-14)
    unscaled = UnscaledAgent(config=agent.config, env=agent.env, model=agent.model)
    before, _ = unscaled.update_step(state, model, batch, KEY, jnp.asarray(False))
    assert not all(np.allclose(x, y) for x, y in zip(jax.tree.leaves(before.critic_params),
                                                     jax.tree.leaves(ours.critic_params)))


def test_training_refreshes_the_statistics_and_checkpoints_them(tmp_path):
    """After a run the agent's snapshot is the real states' statistics (refreshed before every
    update phase), and it is part of the checkpointed state, so a resume restores it exactly."""
    config = configs.preset("pendulum", "mage", "tiny")
    trainer = make_train(config)
    with jax.enable_x64(False):
        state, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    expected = normalization.observation_slice(state.input_stats, trainer.env.obs_size)
    for got, want in zip(jax.tree.leaves(state.agent.obs_stats), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(got, want)
    assert float(state.agent.obs_stats.count) == config.total_steps
    assert float(jnp.max(jnp.abs(state.agent.obs_stats.mean))) > 0.01
    stacked = jax.tree.map(lambda x: x[None], state)  # the checkpoint layout: a leading seed axis
    ckpts = checkpoint.RunCheckpoints(tmp_path, checkpoint.identity(config, 1, 0), keep=1)
    from tests.test_checkpoint import _progress
    ckpts.save(stacked, _progress(tmp_path, 100))
    ckpts.close()
    restored, _ = checkpoint.RunCheckpoints(tmp_path, checkpoint.identity(config, 1, 0)).restore(
        jax.eval_shape(lambda: stacked))
    for got, want in zip(jax.tree.leaves(restored.agent.obs_stats), jax.tree.leaves(stacked.agent.obs_stats)):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
