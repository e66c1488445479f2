"""Training with a learned reward, the oracle model and k-step targets; the configurations that
make no sense are refused; the buffer never holds a transition across a reset."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs, envs
from magejax.envs import pendulum
from magejax.train import METRIC_NAMES, make_train
from magejax.agents.td3 import make_agent


def _train(**overrides):
    config = configs.preset("pendulum", "mage", "tiny", **overrides)
    state, metrics = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    assert set(metrics) == set(METRIC_NAMES)
    for name in ("eval_return", "critic_loss", "td_error", "td_action_grad_norm", "q_action_grad_norm"):
        assert np.all(np.isfinite(metrics[name][1:])), name
    assert np.all(metrics["nonfinite_losses"] == 0)
    return config, state, metrics


@pytest.fixture(scope="module")
def learned_reward_run():
    # One compilation for two options: r̂ then enters every step of a 3-step target.
    # 450 steps: past two ends of Pendulum's 200-step episodes.
    return _train(reward="learned", horizon=3, total_steps=450, eval_every=150)


def test_learned_reward_and_three_step_mage_train_with_finite_metrics(learned_reward_run):
    _, state, metrics = learned_reward_run
    assert state.reward_model is not None
    for name in ("reward_mse", "reward_heldout_mse", "model_nll", "model_heldout_nll"):
        assert np.isnan(metrics[name][0]) and np.all(np.isfinite(metrics[name][1:])), name


def test_buffer_holds_no_cross_reset_transition(learned_reward_run):
    """Model and reward train on buffer transitions: each must be one true step of the dynamics,
    never an episode's last observation followed by the next episode's first."""
    config, state, _ = learned_reward_run
    n = int(state.buffer.size)
    assert n == config.total_steps
    data = jax.tree.map(lambda x: x[:n], state.buffer.data)
    assert int(jnp.sum(data.truncated)) == 2  # the run did cross two episode ends
    predicted = jax.vmap(pendulum.true_next_obs)(data.obs, data.action)
    np.testing.assert_allclose(predicted, data.next_obs, atol=1e-4)


def test_oracle_model_trains_and_learns_no_model():
    _, state, metrics = _train(model="oracle")
    assert state.model is None and state.reward_model is None
    for name in ("model_nll", "model_mse", "model_heldout_nll", "model_heldout_mse", "reward_mse",
                 "reward_heldout_mse"):
        assert np.all(np.isnan(metrics[name])), name


@pytest.mark.parametrize("algo, overrides, message", [
    ("td3", dict(reward="learned"), "reward: 'learned' needs a model-based algorithm"),
    ("td3-utd", dict(model="oracle"), "model: 'oracle' needs a model-based algorithm"),
    ("td3", dict(horizon=3), "horizon: 3 needs a model-based algorithm"),
    ("mage", dict(horizon=0), "horizon: algo 'mage' needs at least one model step"),
    ("dyna", dict(horizon=0), "horizon: algo 'dyna' needs at least one model step"),
])
def test_imagination_options_refused_where_meaningless(algo, overrides, message):
    with pytest.raises(configs.ConfigError, match=message):
        configs.preset("pendulum", algo, "tiny", **overrides)


def test_oracle_refused_for_env_without_one(monkeypatch):
    no_oracle = lambda: dataclasses.replace(pendulum.make(), name="no_oracle", true_next_obs=None)
    monkeypatch.setitem(envs._PURE_JAX, "no_oracle", no_oracle)
    configs.preset("no_oracle", "mage", "tiny")  # the env itself is fine with a learned model
    with pytest.raises(configs.ConfigError, match="model: env 'no_oracle' has no differentiable oracle"):
        configs.preset("no_oracle", "mage", "tiny", model="oracle")
    # Also when the agent is built without validating the config first.
    with pytest.raises(configs.ConfigError, match="model: env 'no_oracle' has no differentiable oracle"):
        make_agent(configs.Config(env="no_oracle", model="oracle"), no_oracle())
