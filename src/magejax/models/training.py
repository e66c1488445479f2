"""The training loop's model phases, on the replay buffer: the dynamics ensemble's and the learned
reward's training steps every `model_train_every` env steps, and their held-out metrics at every
evaluation. Pure functions of (config, model, states, buffer, key); `train.py` calls them."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from magejax import replay
from magejax.configs import Config
from magejax.models.dynamics import EnsembleModel, ModelState
from magejax.models.normalization import RunningStats
from magejax.models.reward_model import RewardModel, RewardState
from magejax.replay import ReplayBuffer

HELDOUT_BATCH = 1024
"""Held-out transitions (`replay.heldout_indices`) the evaluation-time model metrics use."""


def _finite_last(metrics: dict, name: str) -> dict:
    """The last step's metrics, and `nonfinite` 1.0 if any step's `name` was NaN or infinite."""
    bad = jnp.any(~jnp.isfinite(metrics[name])).astype(jnp.float32)
    return {**jax.tree.map(lambda m: m[-1], metrics), "nonfinite": bad}


def train_model(c: Config, model: EnsembleModel, model_state: ModelState, buffer: ReplayBuffer,
                input_stats: RunningStats, delta_stats: RunningStats, key: jax.Array) -> tuple[ModelState, dict]:
    """`model_train_batches` NLL steps, each member on its own uniform mini-batch (E, N) of the
    buffer, with the model's input and output statistics refreshed first."""
    model_state = model.with_stats(model_state, input_stats, delta_stats)
    # Never the held-out slice: it measures generalisation (`heldout_metrics`).
    indices = replay.sample_model_indices(buffer, key, (c.model_train_batches, c.ensemble_size, c.model_batch_size))

    def body(model_state, idx):
        batch = replay.gather(buffer, idx)  # leaves (E, N, ·)
        return model.train_step(model_state, batch.obs, batch.action, batch.next_obs)

    model_state, metrics = jax.lax.scan(body, model_state, indices)
    return model_state, _finite_last(metrics, "model_nll")


def train_reward(c: Config, reward_model: RewardModel, reward_state: RewardState, buffer: ReplayBuffer,
                 key: jax.Array) -> tuple[RewardState, dict]:
    """`model_train_batches` MSE steps of the learned reward on uniform mini-batches (N,)."""
    reward_state = reward_model.with_stats(reward_state)
    # Never the held-out slice, as for the dynamics model.
    indices = replay.sample_model_indices(buffer, key, (c.model_train_batches, c.model_batch_size))

    def body(reward_state, idx):
        b = replay.gather(buffer, idx)
        return reward_model.train_step(reward_state, b.obs, b.action, b.next_obs, b.reward)

    reward_state, metrics = jax.lax.scan(body, reward_state, indices)
    return reward_state, _finite_last(metrics, "reward_mse")


def heldout_metrics(c: Config, model: EnsembleModel | None, model_state: ModelState | None,
                    reward_model: RewardModel | None, reward_state: RewardState | None,
                    buffer: ReplayBuffer) -> dict:
    """Model NLL and MSE (every member on the same `HELDOUT_BATCH` transitions) and the learned
    reward's MSE on the held-out slice; NaN for what the run does not learn (or an empty buffer)."""
    nan = jnp.full((), jnp.nan, jnp.float32)
    batch = replay.gather(buffer, replay.heldout_indices(buffer, HELDOUT_BATCH))
    empty = buffer.size == 0
    metrics = {"model_heldout_nll": nan, "model_heldout_mse": nan, "reward_heldout_mse": nan}
    if model is not None:
        tile = lambda x: jnp.broadcast_to(x, (c.ensemble_size,) + x.shape)  # (E, N, ·)
        _, m = model.nll_loss(model_state.params, model_state, tile(batch.obs), tile(batch.action),
                              tile(batch.next_obs))
        metrics.update(model_heldout_nll=jnp.where(empty, nan, m["model_nll"]),
                       model_heldout_mse=jnp.where(empty, nan, m["model_mse"]))
    if reward_model is not None:
        _, m = reward_model.mse_loss(reward_state.params, reward_state, batch.obs, batch.action,
                                     batch.next_obs, batch.reward)
        metrics.update(reward_heldout_mse=jnp.where(empty, nan, m["reward_mse"]))
    return metrics
