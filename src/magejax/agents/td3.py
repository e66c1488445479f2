"""One agent update — critic step, delayed actor step, Polyak targets — for every algorithm.

The algorithm is fixed by two static choices (see `configs.ALGO_SPECS`):
  critic loss        `td` (Huber TD error)  |  `mage` (Huber ‖∇ₐδ‖ + λ Huber δ)
  transition source  `real` (buffer s, a, r, s')  |  `imagined` (buffer s, a = π(s), ŝ ~ model)
MAGE-TD3 = mage + imagined, Dyna-TD3 = td + imagined, TD3 and TD3-UTD = td + real.
MAGE-DDPG = mage + imagined with one critic and no target-policy smoothing (its actor steps
every update: `Config.actor_delay`).
Imagination's next state comes from the ensemble or the env's oracle (`config.model`), its reward
from the env or a learned r̂ (`config.reward`); with `config.horizon = k > 1` the target rolls
the model k steps before bootstrapping (k-step MAGE; k-step Dyna is MVE-like).

`Agent.update_step(state, model, batch, key, update_actor) -> (state, metrics)` is pure.

Agent input normalisation (`config.normalize_obs`, on by default as in the original code): the
actor and the critics see observations standardised with the running mean and std of the real
states in the buffer. `AgentState.obs_stats` holds the snapshot they use; the training loop
refreshes it from the buffer's statistics before every update phase (`with_obs_stats`), as the
original's `agent.setup_normalizer(buffer.normalizer)` does. `pi` and `q_fns` are the bare networks
on normalised inputs; `policy`, `explore` and every loss take raw observations and normalise them,
so the model, the reward and the environment stay in raw observation space.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp
import optax

from magejax.agents import actor, critic, networks
from magejax.models import normalization
from magejax.configs import Config, ConfigError
from magejax.models.dynamics import EnsembleModel, ModelState
from magejax.envs import Env
from magejax.agents.maac import MaacAgent, make_maac_agent
from magejax.models.normalization import RunningStats
from magejax.replay import Transition
from magejax.models.reward_model import RewardModel, RewardState


@chex.dataclass
class AgentState:
    actor_params: chex.ArrayTree
    actor_target: chex.ArrayTree
    critic_params: chex.ArrayTree   # leading axis: number of critics (2 twin, 1 for DDPG)
    critic_target: chex.ArrayTree
    actor_opt_state: chex.ArrayTree
    critic_opt_state: chex.ArrayTree
    obs_stats: RunningStats         # the real states' statistics the networks' inputs are normalised
                                    # with (a snapshot: see `Agent.with_obs_stats`); (O,) leaves


@dataclasses.dataclass(frozen=True)
class Agent:
    """The static parts of an actor-critic agent: its networks, optimisers and losses."""

    config: Config
    env: Env
    model: EnsembleModel | None              # None for model-free algorithms and the oracle
    reward_model: RewardModel | None = None  # None: imagination uses env.reward_fn

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Keys of the metrics `update_step` returns (all scalars)."""
        critic = ("critic_loss", "td_error")
        if self.config.spec.critic_loss == "mage":
            critic += ("td_action_grad_norm",)
        return critic + ("actor_loss", "q_action_grad_norm")

    # ------------------------------------------------------------ networks and optimisers
    @property
    def pi(self) -> Callable:
        """The bare actor network `pi(params, obs_in)` on NORMALISED inputs (`obs_input`)."""
        return actor.make_apply(self.env.action_size, self.config.actor_hidden, self.config.precision)

    def obs_input(self, state: AgentState, obs: jax.Array) -> jax.Array:
        """What the networks see of raw observations obs (..., O): standardised with
        `state.obs_stats` (`normalization.normalize_agent_input`), or obs itself when
        `normalize_obs` is off. An affine map, so gradients w.r.t. obs flow through it."""
        if not self.config.normalize_obs:
            return obs
        return normalization.normalize_agent_input(state.obs_stats, obs)

    def with_obs_stats(self, state: AgentState, input_stats: RunningStats) -> AgentState:
        """`state` with its input statistics refreshed from the loop's running (s, a) statistics."""
        return state.replace(obs_stats=normalization.observation_slice(input_stats, self.env.obs_size))

    def policy(self, state: AgentState, obs: jax.Array) -> jax.Array:
        """The deterministic actor on raw observations. obs (..., O) -> (..., A) in (-1, 1)."""
        return self.pi(state.actor_params, self.obs_input(state, obs))

    def explore(self, state: AgentState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """The acting policy clip(π(s) + N(0, σ²), ±1), σ = exploration_noise. obs (..., O) -> (..., A)."""
        noise = self.config.exploration_noise * jax.random.normal(key, obs.shape[:-1] + (self.env.action_size,))
        return jnp.clip(self.policy(state, obs) + noise, -1.0, 1.0)

    def critic_values(self, state: AgentState, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q_i(s, a) of every critic on raw observations. obs (B, O), action (B, A) -> (C, B)."""
        _, twin_q = self.q_fns
        return twin_q(critic_params, self.obs_input(state, obs), action)

    @property
    def q_fns(self) -> tuple[Callable, Callable]:
        return critic.make_apply(self.config.critic_hidden, self.config.precision)

    @property
    def actor_optimizer(self) -> optax.GradientTransformation:
        return networks.optimizer(self.config.actor_lr, self.config.grad_clip)

    @property
    def critic_loss_scale(self) -> float | jax.Array:
        """Factor from this library's MAGE loss, huber(‖∇ₐδ‖) + λ·huber(δ), to the original code's,
        huber(δ) + (1/λ)·huber(‖∇ₐδ‖): 1/λ (1 for the TD loss, and for λ = 0, where the original's
        form has no finite weight). The critic's gradient is multiplied by it before clipping by
        value and RAdam, so clipping at `grad_clip` and RAdam's scale-dependent first steps act
        exactly as in the original; the reported `critic_loss` stays on this library's scale."""
        c = self.config
        if c.spec.critic_loss != "mage":
            return 1.0
        if isinstance(c.lam, (int, float)):  # a constant: exactly the Python value, as before
            return 1.0 / c.lam if c.lam > 0 else 1.0
        # A traced λ (`configs.hyperparams`): the same choice as data, never dividing by 0.
        positive = c.lam > 0
        return jnp.where(positive, 1.0 / jnp.where(positive, c.lam, 1.0), 1.0)

    @property
    def critic_optimizer(self) -> optax.GradientTransformation:
        return networks.optimizer(self.config.critic_lr, self.config.grad_clip, self.critic_loss_scale)

    def init(self, key: jax.Array) -> AgentState:
        actor_key, critic_key = jax.random.split(key)
        env, c = self.env, self.config
        actor_params = actor.init(actor_key, env.obs_size, env.action_size, c.actor_hidden)
        critic_params = critic.init(critic_key, env.obs_size, env.action_size, c.critic_hidden,
                                    c.spec.num_critics)
        return AgentState(actor_params=actor_params, actor_target=actor_params,
                          critic_params=critic_params, critic_target=critic_params,
                          actor_opt_state=self.actor_optimizer.init(actor_params),
                          critic_opt_state=self.critic_optimizer.init(critic_params),
                          obs_stats=normalization.init(env.obs_size))

    # ------------------------------------------------------------ imagination
    def smoothing_noise(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """TD3's target-policy smoothing noise; zeros for algorithms without it (DDPG)."""
        c = self.config
        scale = c.target_noise if c.spec.target_smoothing else 0.0
        return critic.smoothing_noise(key, shape, scale, c.target_noise_clip)

    def imagined_next_obs(self, model: ModelState | None, obs: jax.Array, action: jax.Array,
                          key: jax.Array) -> jax.Array:
        """ŝ' (B, O) from obs (B, O), action (B, A): the ensemble's reparameterised sample, or,
        under `model="oracle"`, the env's true dynamics (deterministic, `key` unused)."""
        if self.config.model == "oracle":
            return jax.vmap(self.env.true_next_obs)(obs, action)
        return self.model.sample_next_obs(model, obs, action, key)

    def imagined_reward(self, reward: RewardState | None, obs: jax.Array, action: jax.Array,
                        next_obs: jax.Array) -> jax.Array:
        """r(s, a, ŝ') (B,): the env's exact `reward_fn`, or the learned r̂ under `reward="learned"`."""
        if self.reward_model is not None:
            return self.reward_model.predict(reward, obs, action, next_obs)
        return jax.vmap(self.env.reward_fn)(obs, action, next_obs)

    def imagined_target_fn(self, state: AgentState, model: ModelState | None, obs: jax.Array,
                           key: jax.Array, reward: RewardState | None = None
                           ) -> Callable[[jax.Array], jax.Array]:
        """a (B, A) -> y(a) (B,): the k-step TD target through the model (k = config.horizon),
        with fixed noise (reparameterised), so y is a deterministic, differentiable function of a.

          ŝ_0 = s, a_0 = a, ŝ_{t+1} ~ p(·|ŝ_t, a_t), r_t = r(ŝ_t, a_t, ŝ_{t+1}), d_t = d(ŝ_{t+1}),
          a_t = π̄(ŝ_t) for t ≥ 1,
          y(a) = Σ_{t<k} γ^t Π_{j<t}(1 − d_j) r_t + γ^k Π_{j<k}(1 − d_j) min_i Q̄_i(ŝ_k, a'_k),
          a'_k = clip(π̄(ŝ_k) + clip(ε, ±c), ±1)  (TD3's smoothed target action).

        The later actions come from the target actor π̄, without smoothing noise: the bootstrap
        Q̄(ŝ_k, π̄(ŝ_k)) values π̄, so rolling out π̄ makes the k-step return an estimate for one
        and the same policy, and π̄ moves slowly, like Q̄, so the target does too. The smoothing
        noise only regularises the bootstrap, as in TD3. ∇ₐ reaches every step through ŝ_1 and the
        later actions π̄(ŝ_t). k = 1 is TD3's one-step target and runs exactly the ops of
        `critic.td_target` on one model step (bit-identical to the 1-step code).

        Uses only target networks, the model and the reward: never the online critic or actor.
        `key` splits into (model_key, noise_key): the model's member assignment and ε (for k > 1,
        `split(model_key, k)`, a fresh draw per step) and the smoothing noise, fixed for every a.
        """
        model_key, noise_key = jax.random.split(key)
        c, env = self.config, self.env
        noise = self.smoothing_noise(noise_key, (obs.shape[0], env.action_size))
        _, twin_q = self.q_fns
        k = c.horizon
        step_keys = [model_key] if k == 1 else list(jax.random.split(model_key, k))

        def target(action):
            # Σ_{s<t} γ^s Π_{j<s}(1 − d_j) r_s and γ^t Π_{j<t}(1 − d_j), after t model steps.
            partial_return, discount = 0.0, 1.0
            obs_t, action_t = obs, action
            for t in range(k - 1):  # every step but the last: rewards accumulate
                next_obs = self.imagined_next_obs(model, obs_t, action_t, step_keys[t])
                partial_return = partial_return + discount * self.imagined_reward(reward, obs_t, action_t,
                                                                                  next_obs)
                discount = discount * c.gamma * (1.0 - jax.vmap(env.done_fn)(next_obs))
                obs_t, action_t = next_obs, self.pi(state.actor_target, self.obs_input(state, next_obs))
            # The last step bootstraps: r_{k−1} + γ (1 − d_{k−1}) min_i Q̄_i(ŝ_k, a'_k).
            next_obs = self.imagined_next_obs(model, obs_t, action_t, step_keys[k - 1])
            reward_t = self.imagined_reward(reward, obs_t, action_t, next_obs)
            terminated = jax.vmap(env.done_fn)(next_obs)
            tail = critic.td_target(state.critic_target, state.actor_target, reward_t,
                                    self.obs_input(state, next_obs), terminated, noise, gamma=c.gamma,
                                    pi=self.pi, twin_q=twin_q)
            return tail if k == 1 else partial_return + discount * tail

        return target

    # ------------------------------------------------------------ critic loss
    def critic_loss(self, critic_params, state: AgentState, model: ModelState | None,
                    batch: Transition, key: jax.Array,
                    reward: RewardState | None = None) -> tuple[jax.Array, dict]:
        """The algorithm's critic loss as a function of the online critic parameters only.

        Everything else (actor, targets, model, learned reward) enters through `stop_gradient`, so
        the loss's gradient w.r.t. them is exactly zero and no code path can differentiate into them.
        """
        state, model, reward = jax.lax.stop_gradient((state, model, reward))
        c, spec = self.config, self.config.spec
        q_single, twin_q = self.q_fns
        if spec.transitions == "real":
            noise = self.smoothing_noise(key, batch.action.shape)
            target = critic.td_target(state.critic_target, state.actor_target, batch.reward,
                                      self.obs_input(state, batch.next_obs), batch.terminated, noise,
                                      gamma=c.gamma, pi=self.pi, twin_q=twin_q)
            return critic.td_loss(critic_params, self.obs_input(state, batch.obs), batch.action, target,
                                  twin_q=twin_q)

        # Imagined transitions start at buffer states with the actor's own action (original code).
        obs = batch.obs
        obs_in = self.obs_input(state, obs)
        action = self.pi(state.actor_params, obs_in)
        target_fn = self.imagined_target_fn(state, model, obs, key, reward)  # raw obs: model space
        if spec.critic_loss == "td":
            return critic.td_loss(critic_params, obs_in, action, target_fn(action), twin_q=twin_q)
        return critic.mage_loss(critic_params, obs_in, action, target_fn, q_single=q_single, lam=c.lam)

    # ------------------------------------------------------------ the update step
    def update_step(self, state: AgentState, model: ModelState | None, batch: Transition,
                    key: jax.Array, update_actor: jax.Array,
                    reward: RewardState | None = None) -> tuple[AgentState, dict]:
        """Critic step; if `update_actor`, a DPG actor step and its Polyak target; Polyak critic target.

        batch: Transition with leading axis B (imagined algorithms use only batch.obs).
        update_actor: bool scalar. Keep it unbatched under vmap (derive it from a step counter
        shared by all seeds) so that `lax.cond` skips the actor work instead of computing both.
        model / reward: the dynamics model's and the learned reward's states (None where unused).
        Returns the new state and scalar metrics (actor metrics are NaN when no actor step ran).
        """
        c = self.config
        (_, critic_metrics), grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            state.critic_params, state, model, batch, key, reward)
        state = critic.optimizer_step(state, grads, self.critic_optimizer, c.tau)

        q_single, _ = self.q_fns

        def actor_step(state: AgentState) -> tuple[AgentState, dict]:
            loss, grads, grad_norm = actor.dpg_loss_and_grads(state.actor_params, state.critic_params,
                                                              self.obs_input(state, batch.obs), self.pi,
                                                              q_single)
            updates, opt_state = self.actor_optimizer.update(grads, state.actor_opt_state,
                                                             state.actor_params)
            params = optax.apply_updates(state.actor_params, updates)
            return state.replace(actor_params=params, actor_opt_state=opt_state,
                                 actor_target=networks.polyak(state.actor_target, params, c.tau)), \
                {"actor_loss": loss, "q_action_grad_norm": grad_norm}

        def no_actor_step(state: AgentState) -> tuple[AgentState, dict]:
            nan = jnp.full((), jnp.nan)
            return state, {"actor_loss": nan, "q_action_grad_norm": nan}

        state, actor_metrics = jax.lax.cond(update_actor, actor_step, no_actor_step, state)
        return state, {**critic_metrics, **actor_metrics}


def make_agent(config: Config, env: Env) -> Agent | MaacAgent:
    """The agent of `config`, with the dynamics model and learned reward its imagination needs."""
    if config.spec.uses_model and config.model == "oracle" and env.true_next_obs is None:
        # configs.validate says the same; this guards agents built around validation (custom envs).
        raise ConfigError(f"model: env {env.name!r} has no differentiable oracle (true_next_obs), "
                          "so model='oracle' is not available for it; use model='learned'")
    model = reward_model = None
    if config.spec.uses_model and config.model == "learned":
        model = EnsembleModel(obs_size=env.obs_size, action_size=env.action_size,
                              ensemble_size=config.ensemble_size, hidden=tuple(config.model_hidden),
                              min_logvar=config.min_logvar, max_logvar=config.max_logvar,
                              lr=config.model_lr, weight_decay=config.model_weight_decay,
                              grad_clip=config.grad_clip, precision=config.precision)
    if config.algo == "maac":
        return make_maac_agent(config, env, model)
    if config.spec.uses_model and config.reward == "learned":
        reward_model = RewardModel(obs_size=env.obs_size, action_size=env.action_size,
                                   hidden=tuple(config.reward_hidden), lr=config.model_lr,
                                   weight_decay=config.model_weight_decay, grad_clip=config.grad_clip,
                                   precision=config.precision)
    return Agent(config=config, env=env, model=model, reward_model=reward_model)
