"""Test-time model-predictive control: the cross-entropy method in the model (MAAC §5.4).

At every real step the planner searches an open-loop action sequence a_{0:H} (H = mpc_horizon)
that maximises the model's H-step return with the critic as terminal value,

    G(a_{0:H}) = Σ_{t<H} γ^t m_t r(ŝ_t, a_t, ŝ_{t+1}) + γ^H m_H min_i Q_i(ŝ_H, π(ŝ_H)),
    ŝ_0 = s,  ŝ_{t+1} = step(ŝ_t, a_t),  m_0 = 1,  m_{t+1} = m_t (1 − d(ŝ_{t+1})),

and executes the first action of the best sequence found (receding horizon). The search starts
from the policy's own sequence along a model rollout (MAAC seeds CEM with its policy). Model and
reward are the agent's imagination's: the ensemble or the oracle, the env's reward or the learned r̂.

Two choices that make the result never worse than the policy's own plan (under the model):
  - common random numbers: the model step of time t gets the same key for every candidate and
    every CEM iteration, and `EnsembleModel.sample_next_obs_shared` draws one member and one ε
    for the whole batch, so G is a deterministic function of the sequence within one plan;
  - elitism: the current mean (at first the policy's sequence) is always a candidate and the
    best sequence seen is the one executed (as iCEM, Pinneri et al. 2020, does).

Shapes: O obs size, A action size, H planning horizon, N candidates.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from magejax.configs import Config, ConfigError
from magejax.envs import Env

StepFn = Callable[..., jax.Array]
"""step(model_state, obs (N, O), action (N, A), key) -> next_obs (N, O)."""
RewardFn = Callable[..., jax.Array]
"""reward(reward_state, obs (N, O), action (N, A), next_obs (N, O)) -> (N,)."""


def cem(score_fn: Callable[[jax.Array], jax.Array], init_mean: jax.Array, key: jax.Array, *,
        population: int, elites: int, iterations: int, init_std: float, low: float = -1.0,
        high: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Maximise `score_fn` over sequences in [low, high] with the cross-entropy method.

    score_fn: candidates (N, *S) -> scores (N,), N = population; NaN scores count as -inf.
    init_mean: (*S) the seed, clipped into the box. Each iteration scores the current mean plus
    population − 1 Gaussian samples (clipped into the box), and refits mean and per-coordinate std
    to the `elites` best. Returns the best candidate seen (*S) and its score (): never below the
    seed's score when score_fn is deterministic. The std shrinks about geometrically, so CEM
    refines a seed within a few init_std of the optimum rather than searching the whole box.
    """
    if not 1 <= elites <= population or population < 2:
        raise ValueError(f"need population >= 2 and 1 <= elites <= population, got {population}, {elites}")
    init_mean = jnp.clip(init_mean, low, high)

    def iteration(carry, key):
        mean, std, best, best_score = carry
        samples = mean + std * jax.random.normal(key, (population - 1,) + mean.shape, mean.dtype)
        candidates = jnp.concatenate([mean[None], jnp.clip(samples, low, high)])
        scores = score_fn(candidates)
        scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)
        top_scores, top = jax.lax.top_k(scores, elites)
        elite = candidates[top]
        improved = top_scores[0] > best_score  # strict: ties keep the earlier (the seed first)
        best = jnp.where(improved, elite[0], best)
        best_score = jnp.where(improved, top_scores[0], best_score)
        return (jnp.mean(elite, axis=0), jnp.std(elite, axis=0), best, best_score), None

    init = (init_mean, jnp.full_like(init_mean, init_std), init_mean,
            jnp.full((), -jnp.inf, init_mean.dtype))
    (_, _, best, best_score), _ = jax.lax.scan(iteration, init, jax.random.split(key, iterations))
    return best, best_score


@dataclasses.dataclass(frozen=True)
class Planner:
    """CEM planner over a model; `act` is a pure function usable under jit and vmap.

    pi(agent_state, obs (N, O)) -> (N, A) and twin_q(agent_state, obs (N, O), action (N, A)) -> (2, N)
    act on raw observations (the agent normalises its own inputs: `Agent.policy`, `critic_values`);
    step: see `StepFn`; reward: see `RewardFn`; done_fn(next_obs) -> () acts on single transitions
    (the `Env` convention). `model_state` and `reward_state` are passed through to step and reward.
    """

    pi: Callable
    twin_q: Callable
    step: StepFn
    reward: RewardFn
    done_fn: Callable
    horizon: int = 5
    population: int = 512
    elites: int = 64
    iterations: int = 6
    init_std: float = 0.5
    gamma: float = 0.99

    def policy_sequence(self, agent_state, model_state, obs: jax.Array, step_keys: jax.Array) -> jax.Array:
        """The policy's own actions along a model rollout from obs (O,). -> (H, A)"""

        def body(s, key):
            a = self.pi(agent_state, s)
            return self.step(model_state, s, a, key), a[0]

        _, actions = jax.lax.scan(body, obs[None], step_keys)
        return actions

    def returns(self, agent_state, model_state, obs: jax.Array, actions: jax.Array,
                step_keys: jax.Array, reward_state=None) -> jax.Array:
        """G of each candidate from obs (O,). actions (N, H, A), step_keys (H,) -> (N,)."""
        n = actions.shape[0]

        def body(carry, inputs):
            s, ret, alive, discount = carry
            a, key = inputs
            s_next = self.step(model_state, s, a, key)
            ret = ret + discount * alive * self.reward(reward_state, s, a, s_next)
            alive = alive * (1.0 - jax.vmap(self.done_fn)(s_next))
            return (s_next, ret, alive, discount * self.gamma), None

        init = (jnp.broadcast_to(obs, (n,) + obs.shape), jnp.zeros(n, obs.dtype),
                jnp.ones(n, obs.dtype), jnp.ones((), obs.dtype))
        (s_h, ret, alive, discount), _ = jax.lax.scan(body, init, (jnp.swapaxes(actions, 0, 1), step_keys))
        terminal = jnp.min(self.twin_q(agent_state, s_h, self.pi(agent_state, s_h)), axis=0)
        return ret + discount * alive * terminal

    def plan(self, agent_state, model_state, obs: jax.Array, key: jax.Array,
             reward_state=None) -> tuple[jax.Array, dict]:
        """Best sequence (H, A) from obs (O,) and {"seed_return", "plan_return"} (both ())."""
        model_key, cem_key = jax.random.split(key)
        step_keys = jax.random.split(model_key, self.horizon)  # shared by all candidates (see top)
        seed = self.policy_sequence(agent_state, model_state, obs, step_keys)
        score = lambda actions: self.returns(agent_state, model_state, obs, actions, step_keys, reward_state)
        best, best_return = cem(score, seed, cem_key, population=self.population, elites=self.elites,
                                iterations=self.iterations, init_std=self.init_std)
        return best, {"seed_return": score(seed[None])[0], "plan_return": best_return}

    def act(self, agent_state, model_state, obs: jax.Array, key: jax.Array, reward_state=None) -> jax.Array:
        """The first action of the plan from obs (O,), in [-1, 1]. -> (A,)"""
        best, _ = self.plan(agent_state, model_state, obs, key, reward_state)
        return best[0]


def model_step(config: Config, env: Env, agent) -> StepFn:
    """The transition the planner imagines with: the learned ensemble with one sampled member and
    ε per step shared by all candidates, or under `model="oracle"` the environment's true dynamics
    (deterministic, as in the agent's imagination)."""
    if config.model == "oracle":
        return lambda model_state, obs, action, key: jax.vmap(env.true_next_obs)(obs, action)
    return agent.model.sample_next_obs_shared


def imagined_reward(env: Env, agent) -> RewardFn:
    """The reward the agent imagines with: its learned r̂ (`reward="learned"`), else the env's."""
    if agent.reward_model is not None:
        return agent.reward_model.predict
    return lambda reward_state, obs, action, next_obs: jax.vmap(env.reward_fn)(obs, action, next_obs)


def make_planner(config: Config, env: Env, agent) -> Planner:
    """The planner of a model-based agent for `config` (any agent with `policy`, `critic_values`, `model` and
    `reward_model`: MAGE/Dyna's and MAAC's): its deterministic actor and twin critic, its imagined
    transition (`model_step`) and reward (`imagined_reward`)."""
    if not config.spec.uses_model:
        raise ConfigError(f"eval_mpc: algorithm {config.algo!r} has no model to plan with")
    twin_q = lambda agent_state, obs, action: agent.critic_values(agent_state, agent_state.critic_params, obs,
                                                                  action)
    return Planner(pi=agent.policy, twin_q=twin_q, step=model_step(config, env, agent),
                   reward=imagined_reward(env, agent), done_fn=env.done_fn,
                   horizon=config.mpc_horizon, population=config.mpc_population,
                   elites=config.mpc_elites, iterations=config.mpc_iterations,
                   init_std=config.mpc_init_std, gamma=config.gamma)
