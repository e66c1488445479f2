"""The training loop: every algorithm runs, vmap over seeds equals separate runs, one trace."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs
from magejax.agents import td3 as update
from magejax.train import METRIC_NAMES, make_train


@pytest.mark.parametrize("algo", configs.ALGOS)
def test_every_algorithm_trains_and_reports_finite_metrics(algo):
    config = configs.preset("pendulum", algo, "tiny")
    trainer = make_train(config)
    state, metrics = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    assert set(metrics) == set(METRIC_NAMES)
    assert all(v.shape == (config.num_chunks + 1,) for v in metrics.values())
    assert jnp.all(jnp.isfinite(metrics["eval_return"]))
    assert jnp.all(jnp.isfinite(metrics["critic_loss"][1:])) and jnp.isnan(metrics["critic_loss"][0])
    assert jnp.all(jnp.isfinite(metrics["q_action_grad_norm"][1:]))
    uses_model = config.spec.uses_model
    assert bool(jnp.all(jnp.isfinite(metrics["model_nll"][1:]))) == uses_model
    assert bool(jnp.all(jnp.isfinite(metrics["td_action_grad_norm"][1:]))) == (config.spec.critic_loss == "mage")
    assert int(state.buffer.size) == config.total_steps
    # Pendulum episodes are 200 steps and the run is 200 steps: one finished training episode.
    assert jnp.isfinite(state.last_return)
    np.testing.assert_array_equal(trainer.eval_steps, [0, 100, 200])


def test_vmap_over_seeds_equals_separate_runs():
    trainer = make_train(configs.preset("pendulum", "mage", "tiny"))
    keys = jax.random.split(jax.random.PRNGKey(42), 2)
    train = jax.jit(trainer.train)
    _, together = jax.jit(jax.vmap(trainer.train))(keys)
    for i in range(2):
        state_i, alone = train(keys[i])
        for name in METRIC_NAMES:
            np.testing.assert_allclose(together[name][i], alone[name], rtol=2e-5, atol=1e-6, err_msg=name)
    # The seeds really differ (the test would pass trivially if every seed ran the same key).
    assert not np.allclose(together["train_return"][0], together["train_return"][1])


def test_chunked_loop_equals_one_scan_and_traces_the_update_once(monkeypatch):
    config = configs.preset("pendulum", "mage", "tiny", total_steps=300)
    traces = {"update_step": 0}
    original = update.Agent.update_step

    def counting(self, *args):
        traces["update_step"] += 1
        return original(self, *args)

    monkeypatch.setattr(update.Agent, "update_step", counting)
    trainer = make_train(config)
    key = jax.random.PRNGKey(3)
    state, first = jax.jit(trainer.start)(key)
    run_chunk = jax.jit(trainer.run_chunk)
    rows = [first]
    for chunk in range(config.num_chunks):
        state, row = run_chunk(state, jnp.asarray(chunk))
        rows.append(row)
    assert traces["update_step"] == 1  # three chunks, one trace: no recompilation between chunks
    _, whole = jax.jit(trainer.train)(key)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(np.stack([r[name] for r in rows]), whole[name], rtol=2e-5, atol=1e-6, err_msg=name)


def test_no_updates_before_warmup_and_model_trains_on_schedule():
    config = configs.preset("pendulum", "dyna", "tiny", total_steps=100, eval_every=50, warmup_steps=60)
    state, metrics = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    assert jnp.isnan(metrics["critic_loss"][1])          # steps 0..49: still warming up
    assert jnp.isfinite(metrics["critic_loss"][2])       # steps 50..99: updates from step 59 on
    assert jnp.isfinite(metrics["model_nll"][1])         # the model trained at step 25 (and 50)


def test_make_train_rejects_bad_config():
    with pytest.raises(configs.ConfigError, match="lam"):
        make_train(configs.Config(lam=-1.0))
    with pytest.raises(configs.ConfigError, match="batch_size: 2048 is larger than the buffer"):
        make_train(configs.Config(batch_size=2048, buffer_size=1000))


def test_nonfinite_losses_are_counted_per_chunk():
    config = configs.preset("pendulum", "mage", "tiny")
    trainer = make_train(config)
    state, first = trainer.start(jax.random.PRNGKey(0))
    assert float(first["nonfinite_losses"]) == 0.0
    run_chunk = jax.jit(trainer.run_chunk)
    state, row = run_chunk(state, jnp.asarray(0))
    assert float(row["nonfinite_losses"]) == 0.0
    # Poison one critic weight: every later update's loss is NaN, though the chunk means skip NaN.
    poisoned = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.nan), state.agent.critic_params)
    state = state.replace(agent=state.agent.replace(critic_params=poisoned))
    _, row = run_chunk(state, jnp.asarray(1))
    # Every agent update of the chunk, and every model training once NaN actions reach the buffer.
    model_trainings = config.eval_every // config.model_train_every
    assert float(row["nonfinite_losses"]) == config.eval_every + model_trainings


def test_model_never_trains_on_the_heldout_slice():
    """Held-out slots hold NaN next observations: the model still trains finitely, its held-out
    metrics turn NaN; NaN in other slots instead poisons model training (the check can fail)."""
    from magejax import replay

    config = configs.preset("pendulum", "dyna", "tiny", buffer_size=400)
    trainer = make_train(config)
    state, first = jax.jit(trainer.start)(jax.random.PRNGKey(0))
    assert np.isnan(first["model_heldout_nll"]) and np.isnan(first["model_heldout_mse"])  # no data yet
    run_chunk = jax.jit(trainer.run_chunk)

    def full_buffer(poisoned_slots):
        # A full buffer of plausible transitions; the chunk then overwrites slots 0..99.
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
        n = config.buffer_size
        obs = jax.random.normal(k1, (n, 3))
        next_obs = obs + 0.1 * jax.random.normal(k3, (n, 3))
        next_obs = jnp.where(poisoned_slots[:, None], jnp.nan, next_obs)
        data = state.buffer.data.replace(obs=obs, next_obs=next_obs,
                                         action=jax.random.uniform(k2, (n, 1), minval=-1, maxval=1))
        return state.replace(buffer=state.buffer.replace(data=data, size=jnp.int32(n),
                                                         position=jnp.int32(0)))

    slots = jnp.arange(config.buffer_size)
    _, clean = run_chunk(full_buffer(slots < 0), jnp.asarray(1))
    _, heldout_poisoned = run_chunk(full_buffer(slots % replay.HOLDOUT_EVERY == 0), jnp.asarray(1))
    _, others_poisoned = run_chunk(full_buffer(slots % replay.HOLDOUT_EVERY == 5), jnp.asarray(1))

    assert np.isfinite(clean["model_heldout_nll"]) and np.isfinite(clean["model_heldout_mse"])
    assert float(clean["nonfinite_losses"]) == 0
    # Never sampled for training: every model (and agent) loss stays finite ...
    assert np.isfinite(heldout_poisoned["model_nll"]) and float(heldout_poisoned["nonfinite_losses"]) == 0
    # ... though the held-out metrics do read those slots.
    assert np.isnan(heldout_poisoned["model_heldout_nll"])
    assert float(others_poisoned["nonfinite_losses"]) > 0


def test_heldout_metrics_are_nan_without_a_model():
    trainer = make_train(configs.preset("pendulum", "td3", "tiny"))
    state, _ = jax.jit(trainer.start)(jax.random.PRNGKey(0))
    _, row = jax.jit(trainer.run_chunk)(state, jnp.asarray(0))
    assert np.isnan(row["model_heldout_nll"]) and np.isnan(row["model_heldout_mse"])
