"""MAAC (Clavera, Fu, Abbeel, ICLR 2020): a max-entropy actor-critic whose policy gradient is the
pathwise derivative of an H-step imagined return through the learned ensemble.

One update step, with H = config.horizon, K = config.rollout_samples, α = exp(log α), B the batch:

Critic (twin Q, ½ squared error, target critics Q̄, Polyak τ). From every real transition
(s, a, r, s', d) one imagined rollout of H steps starts at ŝ_0 = s' (current policy, one ensemble
member per rollout). Along it, `maac_rollout.soft_values` with terminal value min_i Q̄_i(ŝ_H, a_H)
gives the soft value estimates G_t (H − t model steps, then the target critics). The critic trains
on B·(1 + H) transitions, each with the same weight:
  real       (s, a)       y = r + γ (1 − d) G_0                        (H-step value expansion, MVE)
  imagined   (ŝ_t, a_t)   y_t = r_t + γ (1 − d(ŝ_{t+1})) G_{t+1}, t < H  (the rest of the rollout)
imagined transitions only while the rollout is alive (d = 0 for the real step and for ŝ_1 … ŝ_t).
The expansion uses a fixed horizon: STEVE's inverse-variance weighting over horizons and members
(the paper's wording) is not implemented. H = 0 gives SAC's target r + γ (1 − d) (min Q̄(s', a') −
α log π(a'|s')) on real transitions only.

Actor (every `policy_delay`-th update). From the B buffer states s, K rollouts each (N = K·B), the
objective J(θ) = mean over rollouts of G_0 with the online critics' min_i Q_i at ŝ_H:
  J(θ) = E[ Σ_{t<H} γ^t m_t (r(ŝ_t, a_t, ŝ_{t+1}) − α log π_θ(a_t|ŝ_t)) + γ^H m_H (min_i Q_i(ŝ_H, a_H) − α log π_θ(a_H|ŝ_H)) ]
with alive masks m_t from `done_fn`, differentiated by backpropagation through the H steps of
policy, model and reward (reparameterised ε and ξ held fixed). H = 0 gives SAC's actor loss.

Temperature: loss −log α · mean(log π(a_0|s) + H̄) with target entropy H̄ = −|A|, stop-gradient on
log π (SAC v2), on the actor objective's start-state samples; α is a constant of the actor and
critic losses.

Networks are updated in that order: critic step, Polyak update of Q̄, then actor and temperature
steps (the actor sees the updated critics, as in the TD3-style agents of `update.py`).

Where this differs from the authors' code (github.com/iclavera/meta-mb, meta_mb/algos/maac.py):
there, the actor objective has the entropy term at t = 0 only and no termination masks, the
actor's and the critic's horizons are separate settings, STEVE weights the critic's targets, and
critic batches are 5 % real transitions (MBPO-style model buffer). Here the entropy enters at
every step, so that J is the H-step expansion of the same soft value the critics are trained on.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp
import optax

from magejax.agents import critic, gaussian_policy, maac_rollout, networks
from magejax.configs import Config
from magejax.models.dynamics import EnsembleModel, ModelState
from magejax.envs import Env
from magejax.agents.maac_rollout import RolloutNoise
from magejax.replay import Transition

INIT_LOG_ALPHA = 0.0
"""α starts at 1, as in SAC's and the MAAC authors' code (log α initialised to 0)."""


@chex.dataclass
class MaacState:
    actor_params: chex.ArrayTree     # tanh-Gaussian policy (no target policy: SAC has none)
    critic_params: chex.ArrayTree    # twin critics, leading axis 2
    critic_target: chex.ArrayTree
    log_alpha: jax.Array             # () log temperature
    actor_opt_state: chex.ArrayTree
    critic_opt_state: chex.ArrayTree
    alpha_opt_state: chex.ArrayTree


@dataclasses.dataclass(frozen=True)
class MaacAgent:
    """The static parts of MAAC; the same interface as `update.Agent`."""

    config: Config
    env: Env
    model: EnsembleModel
    reward_model = None  # MAAC imagines with env.reward_fn only (configs.validate enforces it)

    metric_names = ("critic_loss", "td_error", "actor_loss", "q_action_grad_norm", "temperature",
                    "entropy")
    """Keys of the metrics `update_step` returns (scalars); entropy = mean −log π(a|s) at buffer states."""

    # ------------------------------------------------------------ networks
    @property
    def dist(self) -> Callable:
        return gaussian_policy.make_apply(self.env.action_size, self.config.actor_hidden, self.config.precision)

    def pi(self, params, obs: jax.Array) -> jax.Array:
        """Deterministic action tanh(μ(s)) (evaluation). obs (..., O) -> (..., A)."""
        return gaussian_policy.mode(self.dist(params, obs)[0])

    def policy(self, state: MaacState, obs: jax.Array) -> jax.Array:
        """`pi` with the state's actor (MAAC's networks see raw observations). obs (..., O) -> (..., A)."""
        return self.pi(state.actor_params, obs)

    def explore(self, state: MaacState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """A sample of the stochastic policy (acting). obs (..., O) -> (..., A)."""
        mean, log_std = self.dist(state.actor_params, obs)
        return gaussian_policy.sample(mean, log_std, jax.random.normal(key, mean.shape))[0]

    def critic_values(self, state: MaacState, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q_i(s, a) of both critics. obs (B, O), action (B, A) -> (2, B)."""
        return self.q_fns[1](critic_params, obs, action)

    def with_obs_stats(self, state: MaacState, input_stats) -> MaacState:
        """MAAC's networks take raw observations (`Config.normalize_obs` is off for it): unchanged."""
        return state

    @property
    def q_fns(self) -> tuple[Callable, Callable]:
        return critic.make_apply(self.config.critic_hidden, self.config.precision)

    @property
    def target_entropy(self) -> float:
        return -float(self.env.action_size)

    @property
    def actor_optimizer(self) -> optax.GradientTransformation:
        return networks.optimizer(self.config.actor_lr, self.config.grad_clip)

    @property
    def critic_optimizer(self) -> optax.GradientTransformation:
        return networks.optimizer(self.config.critic_lr, self.config.grad_clip)

    @property
    def alpha_optimizer(self) -> optax.GradientTransformation:
        # The authors' code trains α with the policy's learning rate.
        return networks.optimizer(self.config.actor_lr, self.config.grad_clip)

    def init(self, key: jax.Array) -> MaacState:
        actor_key, critic_key = jax.random.split(key)
        env, c = self.env, self.config
        actor_params = gaussian_policy.init(actor_key, env.obs_size, env.action_size, c.actor_hidden)
        critic_params = critic.init(critic_key, env.obs_size, env.action_size, c.critic_hidden)
        log_alpha = jnp.full((), INIT_LOG_ALPHA, jnp.float32)
        return MaacState(actor_params=actor_params, critic_params=critic_params,
                         critic_target=critic_params, log_alpha=log_alpha,
                         actor_opt_state=self.actor_optimizer.init(actor_params),
                         critic_opt_state=self.critic_optimizer.init(critic_params),
                         alpha_opt_state=self.alpha_optimizer.init(log_alpha))

    # ------------------------------------------------------------ rollouts
    def draw_noise(self, key: jax.Array, num_rollouts: int) -> RolloutNoise:
        return maac_rollout.draw_noise(key, self.model, num_rollouts, self.config.horizon)

    def rollout(self, actor_params, model: ModelState, start_obs: jax.Array,
                noise: RolloutNoise) -> maac_rollout.Rollout:
        transition = maac_rollout.member_transition(self.model, model)
        return maac_rollout.rollout(self.dist, actor_params, transition, self.env.reward_fn,
                                    self.env.done_fn, start_obs, noise)

    # ------------------------------------------------------------ losses
    def actor_objective(self, actor_params, critic_params, alpha: jax.Array, model: ModelState,
                        obs: jax.Array, noise: RolloutNoise) -> tuple[jax.Array, dict]:
        """−J(θ), J the soft H-step objective (module docstring); obs (B, O) buffer states.

        noise: for N = K·B rollouts; start state of rollout r is obs tiled K times, row perm[r].
        Returns (loss (), aux) with aux: log_prob (N,) log π(a_0|ŝ_0), terminal_obs (N, O) and
        terminal_action (N, A) where the critic is evaluated.
        """
        _, twin_q = self.q_fns
        start = jnp.tile(obs, (self.config.rollout_samples, 1))[noise.perm]
        roll = self.rollout(actor_params, model, start, noise)
        q = jnp.min(twin_q(critic_params, roll.obs[-1], roll.action[-1]), axis=0)
        g = maac_rollout.soft_values(roll, q, alpha, self.config.gamma)
        return -jnp.mean(g[0]), {"log_prob": roll.log_prob[0], "terminal_obs": roll.obs[-1],
                                 "terminal_action": roll.action[-1]}

    def critic_loss(self, critic_params, state: MaacState, model: ModelState, batch: Transition,
                    noise: RolloutNoise) -> tuple[jax.Array, dict]:
        """Mean over both critics and the valid transitions of ½ (Q_i − y)² (module docstring).

        batch: B real transitions; noise: for B rollouts of H steps from their next states.
        Everything but critic_params enters through stop_gradient.
        """
        state, model = jax.lax.stop_gradient((state, model))
        c = self.config
        _, twin_q = self.q_fns
        alpha = jnp.exp(state.log_alpha)
        batch = jax.tree.map(lambda x: x[noise.perm], batch)  # rollout r uses member r // M
        roll = self.rollout(state.actor_params, model, batch.next_obs, noise)
        q_end = jnp.min(twin_q(state.critic_target, roll.obs[-1], roll.action[-1]), axis=0)
        g = maac_rollout.soft_values(roll, q_end, alpha, c.gamma)  # (H + 1, B)
        live = 1.0 - batch.terminated
        y_real = batch.reward + c.gamma * live * g[0]
        y_imagined = g[:-1] + alpha * roll.log_prob[:-1]  # = r_t + γ (1 − d_{t+1}) G_{t+1}
        weight = jnp.concatenate([jnp.ones_like(live)[None], live[None] * maac_rollout.alive_masks(roll)])
        target = jnp.concatenate([y_real[None], y_imagined])          # (H + 1, B)
        obs = jnp.concatenate([batch.obs[None], roll.obs[:-1]])       # (H + 1, B, O)
        action = jnp.concatenate([batch.action[None], roll.action[:-1]])
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        target, weight = jax.lax.stop_gradient((flat(target), flat(weight)))
        delta = target[None] - twin_q(critic_params, flat(obs), flat(action))  # (2, (H + 1) B)
        norm = 2.0 * jnp.sum(weight)
        loss = jnp.sum(weight * 0.5 * delta**2) / norm
        return loss, {"critic_loss": loss, "td_error": jnp.sum(weight * jnp.abs(delta)) / norm}

    def temperature_loss(self, log_alpha: jax.Array, log_prob: jax.Array) -> jax.Array:
        """−log α · mean(log π + H̄): descent raises α while the entropy −log π is below H̄."""
        return -log_alpha * jnp.mean(jax.lax.stop_gradient(log_prob) + self.target_entropy)

    # ------------------------------------------------------------ the update step
    def update_step(self, state: MaacState, model: ModelState, batch: Transition, key: jax.Array,
                    update_actor: jax.Array, reward: None = None) -> tuple[MaacState, dict]:
        """Critic step and Polyak target; if `update_actor`, actor and temperature steps.

        batch: Transition with leading axis B. update_actor: bool scalar, unbatched under vmap
        (see `update.Agent.update_step`). Actor metrics are NaN when no actor step ran.
        `reward` is the learned-reward state slot of that interface, always None here.
        """
        c = self.config
        critic_key, actor_key = jax.random.split(key)
        (_, critic_metrics), grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            state.critic_params, state, model, batch, self.draw_noise(critic_key, batch.obs.shape[0]))
        state = critic.optimizer_step(state, grads, self.critic_optimizer, c.tau)
        q_single, _ = self.q_fns

        def actor_step(state: MaacState) -> tuple[MaacState, dict]:
            alpha = jnp.exp(state.log_alpha)
            noise = self.draw_noise(actor_key, c.rollout_samples * batch.obs.shape[0])
            (loss, aux), grads = jax.value_and_grad(self.actor_objective, has_aux=True)(
                state.actor_params, state.critic_params, alpha, model, batch.obs, noise)
            updates, actor_opt_state = self.actor_optimizer.update(grads, state.actor_opt_state,
                                                                   state.actor_params)
            alpha_grad = jax.grad(self.temperature_loss)(state.log_alpha, aux["log_prob"])
            alpha_updates, alpha_opt_state = self.alpha_optimizer.update(alpha_grad, state.alpha_opt_state)
            # ‖∇ₐQ_i‖ where the actor's gradient enters the critics, on B of the N rollouts (a
            # diagnostic: the full N would add a critic backward pass as large as the actor's).
            end = lambda x: jax.lax.stop_gradient(x[: batch.obs.shape[0]])
            _, dq_da = critic.values_and_action_grads(state.critic_params, end(aux["terminal_obs"]),
                                                      end(aux["terminal_action"]), q_single=q_single)
            state = state.replace(actor_params=optax.apply_updates(state.actor_params, updates),
                                  actor_opt_state=actor_opt_state,
                                  log_alpha=optax.apply_updates(state.log_alpha, alpha_updates),
                                  alpha_opt_state=alpha_opt_state)
            return state, {"actor_loss": loss, "q_action_grad_norm": jnp.mean(critic.safe_norm(dq_da)),
                           "temperature": alpha, "entropy": -jnp.mean(aux["log_prob"])}

        def no_actor_step(state: MaacState) -> tuple[MaacState, dict]:
            nan = jnp.full((), jnp.nan, state.log_alpha.dtype)
            return state, {"actor_loss": nan, "q_action_grad_norm": nan,
                           "temperature": jnp.exp(state.log_alpha), "entropy": nan}

        state, actor_metrics = jax.lax.cond(update_actor, actor_step, no_actor_step, state)
        return state, {**critic_metrics, **actor_metrics}


def make_maac_agent(config: Config, env: Env, model: EnsembleModel) -> MaacAgent:
    if model is None:
        raise ValueError("MAAC needs the dynamics ensemble (config.spec.uses_model)")
    return MaacAgent(config=config, env=env, model=model)
