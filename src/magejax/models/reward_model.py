"""Learned reward r̂(s, a, s'): an MLP trained by MSE on real transitions (MAGE paper, Fig. 4 and 6).

Imagination differentiates the reward w.r.t. the action and the next state, so `predict` is a
smooth function of all three inputs. Inputs (s, a, s') and the target r are normalised with the
running statistics of the real data: the network fits a unit-scale target whatever the reward's
scale (Pendulum's rewards reach −16), and its output is mapped back to reward units.
Like the dynamics model, the normaliser is a snapshot (`with_stats`) taken before each training
phase, so between phases the function the critic sees does not drift with the data.

Shapes: B batch, O obs size, A action size; rows of the statistics are (s, a, s', r), 2O + A + 1.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import chex
import jax
import jax.numpy as jnp
import optax

from magejax.agents import networks
from magejax.models import normalization
from magejax.models.normalization import RunningStats


@chex.dataclass
class RewardState:
    """params: MLP parameters; opt_state: optax state; stats: the normaliser the params were
    trained with; data_stats: running statistics of every real (s, a, s', r) seen so far."""

    params: chex.ArrayTree
    opt_state: chex.ArrayTree
    stats: RunningStats
    data_stats: RunningStats


@dataclasses.dataclass(frozen=True)
class RewardModel:
    obs_size: int
    action_size: int
    hidden: Sequence[int] = (256, 256, 256)
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    precision: str = "f32"   # of the matrix products (`agents.precision`)

    @property
    def in_size(self) -> int:
        return 2 * self.obs_size + self.action_size

    @property
    def optimizer(self) -> optax.GradientTransformation:
        # The dynamics model's optimiser: clip by value, L2 weight decay, RAdam.
        return optax.chain(optax.clip(self.grad_clip), optax.add_decayed_weights(self.weight_decay),
                           optax.scale_by_radam(), optax.scale(-self.lr))

    def init(self, key: jax.Array) -> RewardState:
        params = networks.init_mlp(key, tuple(self.hidden), self.in_size, 1)
        stats = normalization.init(self.in_size + 1)
        return RewardState(params=params, opt_state=self.optimizer.init(params), stats=stats,
                           data_stats=stats)

    # ---------------------------------------------------------------- statistics
    @staticmethod
    def rows(obs: jax.Array, action: jax.Array, next_obs: jax.Array, reward: jax.Array) -> jax.Array:
        """(N, O), (N, A), (N, O), (N,) -> (N, 2O + A + 1), the rows the statistics describe."""
        return jnp.concatenate([obs, action, next_obs, reward[:, None]], axis=-1)

    def observe(self, state: RewardState, obs, action, next_obs, reward) -> RewardState:
        """Merge real transitions (N, ·) into the running statistics (not into the normaliser)."""
        return state.replace(data_stats=normalization.update(state.data_stats,
                                                             self.rows(obs, action, next_obs, reward)))

    def with_stats(self, state: RewardState) -> RewardState:
        """Normalise with the statistics of all data so far (done before each training phase)."""
        return state.replace(stats=state.data_stats)

    def _split_stats(self, stats: RunningStats) -> tuple[RunningStats, RunningStats]:
        """The (s, a, s') part and the r part of the statistics."""
        n = self.in_size
        return (RunningStats(count=stats.count, mean=stats.mean[:n], m2=stats.m2[:n]),
                RunningStats(count=stats.count, mean=stats.mean[n:], m2=stats.m2[n:]))

    # ---------------------------------------------------------------- prediction and training
    def predict_normalized(self, params, state: RewardState, obs: jax.Array, action: jax.Array,
                           next_obs: jax.Array) -> jax.Array:
        """The network's output (B,), in normalised reward units."""
        input_stats, _ = self._split_stats(state.stats)
        x = normalization.normalize(input_stats, jnp.concatenate([obs, action, next_obs], axis=-1))
        return networks.apply_mlp(params, x, tuple(self.hidden), 1, self.precision)[..., 0]

    def predict(self, state: RewardState, obs: jax.Array, action: jax.Array,
                next_obs: jax.Array) -> jax.Array:
        """r̂(s, a, s') in reward units. (B, O), (B, A), (B, O) -> (B,); differentiable in all three."""
        _, reward_stats = self._split_stats(state.stats)
        out = self.predict_normalized(state.params, state, obs, action, next_obs)
        return normalization.denormalize(reward_stats, out[:, None])[:, 0]

    def mse_loss(self, params, state: RewardState, obs, action, next_obs,
                 reward) -> tuple[jax.Array, dict]:
        """MSE in normalised units (what is minimised) and, as `reward_mse`, in reward units².

        The two differ by the constant factor std(r)², so they have the same minimiser.
        """
        _, reward_stats = self._split_stats(state.stats)
        target = normalization.normalize(reward_stats, reward[:, None])[:, 0]
        pred = self.predict_normalized(params, state, obs, action, next_obs)
        loss = jnp.mean((pred - target) ** 2)
        raw = normalization.denormalize(reward_stats, pred[:, None])[:, 0]
        return loss, {"reward_mse": jnp.mean((raw - reward) ** 2)}

    def train_step(self, state: RewardState, obs, action, next_obs, reward) -> tuple[RewardState, dict]:
        """One optimiser step on a batch (N, ·)."""
        grads, metrics = jax.grad(self.mse_loss, has_aux=True)(state.params, state, obs, action,
                                                               next_obs, reward)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state), metrics
