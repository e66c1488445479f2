"""Probabilistic ensemble dynamics model p_ω(s' | s, a).

Each of E members is an MLP mapping normalised (s, a) to the mean and log-variance of the
normalised state delta s' − s. Log-variances are squashed into [min_logvar, max_logvar] with a
sigmoid. Training minimises the Gaussian NLL; each member sees its own random mini-batches.

`sample_next_obs` evaluates ONE member per sample: the batch is split among the members
(a random permutation, then E equal chunks), which has the same distribution as picking a member
uniformly per sample but costs 1/E of evaluating every member on every sample.

Shapes: B batch, O obs size, A action size, E ensemble size.
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
class ModelState:
    """params: stacked member parameters (leading axis E); opt_state: optax state;
    input_stats / delta_stats: the normalisers the model was last trained with."""

    params: chex.ArrayTree
    opt_state: chex.ArrayTree
    input_stats: RunningStats
    delta_stats: RunningStats


@dataclasses.dataclass(frozen=True)
class EnsembleModel:
    obs_size: int
    action_size: int
    ensemble_size: int = 8
    hidden: Sequence[int] = (512, 512, 512, 512)
    min_logvar: float = -5.0
    max_logvar: float = -1.0
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    precision: str = "f32"   # of the matrix products (`agents.precision`)

    # ---------------------------------------------------------------- construction
    @property
    def optimizer(self) -> optax.GradientTransformation:
        # The original code clips by value, then PyTorch RAdam adds L2 weight decay to the gradient.
        return optax.chain(optax.clip(self.grad_clip), optax.add_decayed_weights(self.weight_decay),
                           optax.scale_by_radam(), optax.scale(-self.lr))

    def init(self, key: jax.Array) -> ModelState:
        params = networks.init_ensemble(key, self.ensemble_size, self.hidden,
                                        self.obs_size + self.action_size, 2 * self.obs_size)
        return ModelState(params=params, opt_state=self.optimizer.init(params),
                          input_stats=normalization.init(self.obs_size + self.action_size),
                          delta_stats=normalization.init(self.obs_size))

    # ---------------------------------------------------------------- prediction
    def member_forward(self, member_params, inputs_norm: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One member on normalised inputs (N, O + A) -> mean (N, O), log-variance (N, O), normalised."""
        out = networks.apply_mlp(member_params, inputs_norm, tuple(self.hidden), 2 * self.obs_size,
                                 self.precision)
        mean, raw = jnp.split(out, 2, axis=-1)
        logvar = self.min_logvar + (self.max_logvar - self.min_logvar) * jax.nn.sigmoid(raw)
        return mean, logvar

    def _inputs(self, state: ModelState, obs: jax.Array, action: jax.Array) -> jax.Array:
        return normalization.normalize(state.input_stats, jnp.concatenate([obs, action], axis=-1))

    def member_assignment(self, key: jax.Array, batch_size: int) -> jax.Array:
        """perm (B,): samples perm[m·B/E : (m+1)·B/E] go to member m."""
        if batch_size % self.ensemble_size:
            raise ValueError(f"batch size {batch_size} is not divisible by the ensemble size "
                             f"{self.ensemble_size}")
        return jax.random.permutation(key, batch_size)

    def sample_next_obs(self, state: ModelState, obs: jax.Array, action: jax.Array,
                        key: jax.Array) -> jax.Array:
        """ŝ = s + denorm(μ_m + σ_m ε), ε ~ N(0, I), one member m per sample, reparameterised.

        obs (B, O), action (B, A) -> next_obs (B, O); differentiable in obs and action.
        """
        chex.assert_rank([obs, action], 2)
        batch = obs.shape[0]
        perm_key, noise_key = jax.random.split(key)
        perm = self.member_assignment(perm_key, batch)
        chunk = batch // self.ensemble_size
        inputs = self._inputs(state, obs, action)[perm].reshape(self.ensemble_size, chunk, -1)
        mean, logvar = jax.vmap(self.member_forward)(state.params, inputs)  # (E, B/E, O) each
        eps = jax.random.normal(noise_key, mean.shape)
        delta_norm = (mean + jnp.exp(0.5 * logvar) * eps).reshape(batch, self.obs_size)
        delta_norm = jnp.zeros_like(delta_norm).at[perm].set(delta_norm)  # back to sample order
        return obs + normalization.denormalize(state.delta_stats, delta_norm)

    def sample_next_obs_by_member(self, state: ModelState, obs: jax.Array, action: jax.Array,
                                  eps: jax.Array) -> jax.Array:
        """Row m of the inputs goes through member m only: ŝ = s + denorm(μ_m + σ_m ε).

        obs (E, M, O), action (E, M, A), eps (E, M, O) -> next_obs (E, M, O); differentiable in
        obs and action. For multi-step rollouts that keep one member per rollout: each member
        evaluates its own M samples, 1/E of the FLOPs of running every member on every sample.
        """
        chex.assert_shape(obs, (self.ensemble_size, None, self.obs_size))
        mean, logvar = jax.vmap(self.member_forward)(state.params, self._inputs(state, obs, action))
        return obs + normalization.denormalize(state.delta_stats, mean + jnp.exp(0.5 * logvar) * eps)

    def sample_next_obs_shared(self, state: ModelState, obs: jax.Array, action: jax.Array,
                               key: jax.Array) -> jax.Array:
        """ŝ = s + denorm(μ_m + σ_m ε) with ONE member m and ONE ε (O,) drawn for the whole batch.

        Every row sees the same sampled model (common random numbers): what a planner needs to
        rank candidate actions by their own merit rather than by which member scored them.
        obs (B, O), action (B, A) -> next_obs (B, O); any B; differentiable in obs and action.
        """
        chex.assert_rank([obs, action], 2)
        member_key, noise_key = jax.random.split(key)
        member = jax.random.randint(member_key, (), 0, self.ensemble_size)
        # One dynamic slice of the parameters per call, never a per-sample gather.
        params = jax.tree.map(lambda p: jax.lax.dynamic_index_in_dim(p, member, keepdims=False),
                              state.params)
        mean, logvar = self.member_forward(params, self._inputs(state, obs, action))
        eps = jax.random.normal(noise_key, (self.obs_size,), mean.dtype)
        return obs + normalization.denormalize(state.delta_stats, mean + jnp.exp(0.5 * logvar) * eps)

    def mean_next_obs(self, state: ModelState, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Every member's mean prediction. obs (B, O), action (B, A) -> (E, B, O)."""
        inputs = self._inputs(state, obs, action)
        mean, _ = jax.vmap(self.member_forward, in_axes=(0, None))(state.params, inputs)
        return obs + normalization.denormalize(state.delta_stats, mean)

    # ---------------------------------------------------------------- training
    def nll_loss(self, params, state: ModelState, obs: jax.Array, action: jax.Array,
                 next_obs: jax.Array) -> tuple[jax.Array, dict]:
        """Gaussian NLL mean((μ − t)²/σ² + log σ²) per member, summed over members.

        obs (E, N, O), action (E, N, A), next_obs (E, N, O): member m trains on row m.
        Summing keeps each member's gradient its own; the reported NLL is the member mean.
        """
        inputs = self._inputs(state, obs, action)
        target = normalization.normalize(state.delta_stats, next_obs - obs)
        mean, logvar = jax.vmap(self.member_forward)(params, inputs)
        nll = jnp.mean((mean - target) ** 2 * jnp.exp(-logvar) + logvar, axis=(1, 2))  # (E,)
        mse = jnp.mean((mean - target) ** 2)
        return jnp.sum(nll), {"model_nll": jnp.mean(nll), "model_mse": mse}

    def train_step(self, state: ModelState, obs: jax.Array, action: jax.Array,
                   next_obs: jax.Array) -> tuple[ModelState, dict]:
        """One optimiser step on member-wise batches (E, N, ·)."""
        chex.assert_shape(obs, (self.ensemble_size, None, self.obs_size))
        grads, metrics = jax.grad(self.nll_loss, has_aux=True)(state.params, state, obs, action, next_obs)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state), metrics

    def with_stats(self, state: ModelState, input_stats: RunningStats,
                   delta_stats: RunningStats) -> ModelState:
        """The model re-normalised with the latest data statistics (done before each training phase)."""
        return state.replace(input_stats=input_stats, delta_stats=delta_stats)
