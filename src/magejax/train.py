"""The training loop: a whole run is a pure function of (config, key).

`make_train(config)` returns a `Trainer` whose `train(key)` runs acting, the replay buffer, model
(and learned-reward) training every `model_train_every` steps, `num_updates` agent updates per
step and a deterministic evaluation every `eval_every` steps, as one `lax.scan` over evaluation
chunks. `jax.vmap(train)` runs many seeds at once. For host I/O between evaluations (progress,
metrics files) the same pieces are exposed separately: `start(key)` and `run_chunk(state,
chunk_index)`.

Every branch decision (warm-up, model-training steps, delayed actor steps) depends only on the
step index, which is the same for all seeds and never batched under vmap, so `lax.cond` stays a
real branch instead of becoming "compute both and select".

Every function of a `Trainer` takes an optional last argument `hp`, the traced hyper-parameters
(`configs.hyperparams`): vmapping over it runs a hyper-parameter sweep as one program.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp

from magejax import configs, envs, replay
from magejax.agents import planning
from magejax.models import normalization
from magejax.models import training as model_training
from magejax.configs import Config, hyperparams
from magejax.models.dynamics import ModelState
from magejax.envs import Env, EnvState
from magejax.models.normalization import RunningStats
from magejax.replay import ReplayBuffer, Transition
from magejax.models.reward_model import RewardState
from magejax.agents.td3 import Agent, AgentState, make_agent

METRIC_NAMES = ("eval_return", "eval_return_std", "train_return", "critic_loss", "td_error",
                "td_action_grad_norm", "actor_loss", "q_action_grad_norm", "model_nll", "model_mse",
                "model_heldout_nll", "model_heldout_mse", "reward_mse", "reward_heldout_mse",
                "nonfinite_losses", "temperature", "entropy")
"""Per-evaluation metrics every run reports (NaN where an algorithm has no such quantity).
Losses are chunk means over the steps where they were computed; `nonfinite_losses` counts the
steps of the chunk in which a computed loss was NaN or infinite (the means skip NaN, so this
count is what reveals a divergence). `model_heldout_nll` / `model_heldout_mse` are the model's
NLL and MSE (same definitions as `model_nll` / `model_mse`: `EnsembleModel.nll_loss`, normalised
units, member mean) at the evaluation, on `models.training.HELDOUT_BATCH` transitions of the held-out slice
(`replay.heldout_indices`), which model training never samples. `reward_mse` /
`reward_heldout_mse` are the learned reward's MSE in reward units² (`RewardModel.mse_loss`) on
the last training batch and on the same held-out transitions (NaN unless `reward="learned"`).
`temperature` and `entropy` are MAAC's α and its policy's mean −log π(a|s) at buffer states."""
MODEL_METRIC_NAMES = ("model_nll", "model_mse")
REWARD_METRIC_NAMES = ("reward_mse",)


@chex.dataclass
class TrainState:
    agent: AgentState
    model: ModelState | None       # None for model-free algorithms and the oracle
    reward_model: RewardState | None  # None unless reward="learned"
    input_stats: RunningStats      # running statistics of (s, a) and s' − s over all real data
    delta_stats: RunningStats
    buffer: ReplayBuffer
    env_state: EnvState
    episode_return: jax.Array      # return so far of the running training episode
    last_return: jax.Array         # return of the last finished training episode (NaN before)
    key: jax.Array


@dataclasses.dataclass(frozen=True)
class Trainer:
    config: Config
    env: Env
    agent: Agent
    start: Callable[[jax.Array], tuple[TrainState, dict]]
    run_chunk: Callable[[TrainState, jax.Array], tuple[TrainState, dict]]
    # The last chunk when it is shorter (eval_every does not divide total_steps), else run_chunk.
    run_last_chunk: Callable[[TrainState, jax.Array], tuple[TrainState, dict]]
    train: Callable[[jax.Array], tuple[TrainState, dict]]
    # (train_state, key) -> (eval_episodes,) returns: the loop's own evaluation, usable on any
    # state, e.g. a trained one evaluated by a second trainer built with eval_mpc=True.
    evaluate: Callable[[TrainState, jax.Array], jax.Array]

    @property
    def eval_steps(self) -> jax.Array:
        """Env steps at which the metrics rows of `train` are taken. (num_chunks + 1,)"""
        c = self.config
        return jnp.asarray([0] + [c.chunk_end(i) for i in range(c.num_chunks)])


def _where(pred: jax.Array, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _nan_metrics(names) -> dict:
    # Built from known names rather than by tracing the skipped function a second time.
    return {name: jnp.full((), jnp.nan, jnp.float32) for name in names}


def make_train(config: Config) -> Trainer:
    """The `Trainer` of `config`. Its functions take an optional last argument `hp`: None runs
    with the config's own hyper-parameters as constants; a dict of `hyperparams.TRACED` values
    (float32 arrays) makes them inputs of the program, so one compiled program can be vmapped
    over seeds × values (`configs.hyperparams`)."""
    configs.validate(config)
    env = envs.make(config.env, backend=config.env_backend)
    agent = make_agent(config, env)
    constant = _loop(config, env, agent)

    def loop(hp: dict | None) -> "_Loop":
        if hp is None:
            return constant
        bound = hyperparams.bind(config, hp)
        return _loop(bound, env, make_agent(bound, env))

    c = config
    last_steps = c.chunk_steps(c.num_chunks - 1)
    full_chunks = c.num_chunks if last_steps == c.eval_every else c.num_chunks - 1

    def start(key: jax.Array, hp: dict | None = None) -> tuple[TrainState, dict]:
        return loop(hp).start(key)

    def run_chunk(state: TrainState, chunk_index: jax.Array, hp: dict | None = None) -> tuple[TrainState, dict]:
        return loop(hp).chunk_of(c.eval_every)(state, chunk_index)

    def run_last_chunk(state: TrainState, chunk_index: jax.Array, hp: dict | None = None) -> tuple[TrainState, dict]:
        return loop(hp).chunk_of(last_steps)(state, chunk_index)

    def evaluate(train_state: TrainState, key: jax.Array, hp: dict | None = None) -> jax.Array:
        return loop(hp).evaluate(train_state, key)

    def train(key: jax.Array, hp: dict | None = None) -> tuple[TrainState, dict]:
        """A whole run. Returns the final state and metrics with leading axis num_chunks + 1."""
        state, first = start(key, hp)
        state, rows = jax.lax.scan(lambda s, i: run_chunk(s, i, hp), state, jnp.arange(full_chunks))
        if full_chunks < c.num_chunks:  # the shorter remainder, then its evaluation
            state, last = run_last_chunk(state, jnp.asarray(full_chunks), hp)
            rows = jax.tree.map(lambda r, l: jnp.concatenate([r, l[None]]), rows, last)
        return state, jax.tree.map(lambda f, r: jnp.concatenate([f[None], r]), first, rows)

    return Trainer(config=config, env=env, agent=agent, start=start, run_chunk=run_chunk,
                   run_last_chunk=run_last_chunk if last_steps < c.eval_every else run_chunk,
                   train=train, evaluate=evaluate)


@dataclasses.dataclass(frozen=True)
class _Loop:
    """The loop's pieces for one agent (with constant or traced hyper-parameters)."""

    start: Callable[[jax.Array], tuple[TrainState, dict]]
    chunk_of: Callable[[int], Callable[[TrainState, jax.Array], tuple[TrainState, dict]]]
    evaluate: Callable[[TrainState, jax.Array], jax.Array]


def _loop(config: Config, env: Env, agent: Agent) -> _Loop:
    model, reward_model = agent.model, agent.reward_model
    c = config
    num_updates = c.num_updates

    planner = planning.make_planner(c, env, agent) if c.eval_mpc else None


    def evaluate(train_state: TrainState, key: jax.Array) -> jax.Array:
        """Returns of `eval_episodes` episodes acting with the deterministic actor, or with the
        CEM planner in the model when `eval_mpc`. -> (eval_episodes,)"""
        def act(obs, plan_key):
            if planner is None:
                return agent.policy(train_state.agent, obs)
            return planner.act(train_state.agent, train_state.model, obs, plan_key, train_state.reward_model)

        def episode(key):
            # Planning keys only exist with a planner, so actor evaluation keeps its exact keys.
            plan_keys = (None if planner is None
                         else jax.random.split(jax.random.fold_in(key, 1), env.episode_length))

            def body(carry, plan_key):
                state, ret, alive = carry
                next_state = env.step(state, act(state.obs, plan_key))
                ret = ret + alive * next_state.reward
                # Freeze a terminated episode: bare simulators stepped past the end can produce NaN.
                next_state = _where(alive > 0, next_state, state)
                alive = alive * (1.0 - next_state.terminated)
                return (next_state, ret, alive), None

            init = (env.reset(key), jnp.zeros(()), jnp.ones(()))
            (_, ret, _), _ = jax.lax.scan(body, init, plan_keys, length=env.episode_length)
            return ret

        return jax.vmap(episode)(jax.random.split(key, c.eval_episodes))

    def init(key: jax.Array) -> TrainState:
        agent_key, model_key, env_key, key = jax.random.split(key, 4)
        obs_in = env.obs_size + env.action_size
        # fold_in, not a wider split: runs without a learned reward keep their random streams.
        reward_key = jax.random.fold_in(model_key, 1)
        return TrainState(
            agent=agent.init(agent_key),
            model=model.init(model_key) if model is not None else None,
            reward_model=reward_model.init(reward_key) if reward_model is not None else None,
            input_stats=normalization.init(obs_in), delta_stats=normalization.init(env.obs_size),
            buffer=replay.init(c.buffer_size, env.obs_size, env.action_size),
            env_state=env.reset(env_key), episode_return=jnp.zeros(()),
            last_return=jnp.full((), jnp.nan, jnp.float32), key=key)

    def agent_updates(state: TrainState, step: jax.Array, key: jax.Array) -> tuple[AgentState, dict]:
        """`num_updates` update steps on fresh uniform batches; metrics averaged over them."""
        first_update = (step + 1 - c.warmup_steps) * num_updates
        # The networks' input statistics are refreshed from all real data before every update
        # phase (the original's `agent.setup_normalizer(buffer.normalizer)`).
        agent_state = agent.with_obs_stats(state.agent, state.input_stats)

        def body(agent_state, inputs):
            j, key = inputs
            sample_key, update_key = jax.random.split(key)
            batch = replay.sample(state.buffer, sample_key, c.batch_size)
            update_actor = jnp.logical_and(c.train_actor, (first_update + j + 1) % c.actor_delay == 0)
            return agent.update_step(agent_state, state.model, batch, update_key, update_actor,
                                     state.reward_model)

        keys = jax.random.split(key, num_updates)
        agent_state, metrics = jax.lax.scan(body, agent_state, (jnp.arange(num_updates), keys))
        # Actor metrics are NaN by design on critic-only updates; the critic loss never is.
        bad = ~jnp.isfinite(metrics["critic_loss"]) | jnp.isinf(metrics["actor_loss"])
        metrics = jax.tree.map(jnp.nanmean, metrics)
        return agent_state, {**metrics, "nonfinite": jnp.any(bad).astype(jnp.float32)}

    def env_step(state: TrainState, step: jax.Array) -> tuple[TrainState, dict]:
        """Act, store the transition, reset on episode end, train model and agent as scheduled."""
        key, act_key, noise_key, reset_key, model_key, update_key = jax.random.split(state.key, 6)
        obs = state.env_state.obs
        random_action = jax.random.uniform(act_key, (env.action_size,), minval=-1.0, maxval=1.0)
        policy_action = agent.explore(state.agent, obs, noise_key)
        action = jnp.where(step < c.warmup_steps, random_action, policy_action)

        next_env = env.step(state.env_state, action)
        transition = Transition(obs=obs, action=action, reward=next_env.reward, next_obs=next_env.obs,
                                terminated=next_env.terminated, truncated=next_env.truncated)
        done = jnp.maximum(next_env.terminated, next_env.truncated) > 0
        episode_return = state.episode_return + next_env.reward
        state = state.replace(
            buffer=replay.insert(state.buffer, transition),
            input_stats=normalization.update(state.input_stats, jnp.concatenate([obs, action])[None]),
            delta_stats=normalization.update(state.delta_stats, (next_env.obs - obs)[None]),
            # The transition keeps the true final observation; only the loop's state is reset.
            env_state=_where(done, env.reset(reset_key), next_env),
            episode_return=jnp.where(done, 0.0, episode_return),
            last_return=jnp.where(done, episode_return, state.last_return),
            key=key)
        if reward_model is not None:
            state = state.replace(reward_model=reward_model.observe(
                state.reward_model, obs[None], action[None], next_env.obs[None], next_env.reward[None]))

        metrics = {}
        train_now = (step + 1) % c.model_train_every == 0
        if model is not None:
            trained = lambda s: model_training.train_model(c, model, s.model, s.buffer, s.input_stats,
                                                             s.delta_stats, model_key)
            skipped = lambda s: (s.model, {**_nan_metrics(MODEL_METRIC_NAMES), "nonfinite": jnp.zeros(())})
            model_state, model_metrics = jax.lax.cond(train_now, trained, skipped, state)
            state = state.replace(model=model_state)
            model_nonfinite = model_metrics.pop("nonfinite")
            metrics.update(model_metrics, model_nonfinite=model_nonfinite)
        if reward_model is not None:
            # Its own key, derived so that the dynamics model's stream stays what it was.
            trained = lambda s: model_training.train_reward(c, reward_model, s.reward_model, s.buffer,
                                                              jax.random.fold_in(model_key, 1))
            skipped = lambda s: (s.reward_model, {**_nan_metrics(REWARD_METRIC_NAMES),
                                                  "nonfinite": jnp.zeros(())})
            reward_state, reward_metrics = jax.lax.cond(train_now, trained, skipped, state)
            state = state.replace(reward_model=reward_state)
            reward_nonfinite = reward_metrics.pop("nonfinite")
            metrics.update(reward_metrics, reward_nonfinite=reward_nonfinite)

        updated = lambda s: agent_updates(s, step, update_key)
        skipped = lambda s: (s.agent, {**_nan_metrics(agent.metric_names), "nonfinite": jnp.zeros(())})
        agent_state, update_metrics = jax.lax.cond(step + 1 >= c.warmup_steps, updated, skipped, state)
        metrics.update(update_metrics)
        return state.replace(agent=agent_state), metrics

    def summarize(update_metrics: dict, eval_returns: jax.Array, last_return: jax.Array) -> dict:
        update_metrics = dict(update_metrics)
        nonfinite = (update_metrics.pop("nonfinite", 0.0) + update_metrics.pop("model_nonfinite", 0.0)
                     + update_metrics.pop("reward_nonfinite", 0.0))
        row = {name: jnp.full((), jnp.nan) for name in METRIC_NAMES}
        row.update({k: jnp.nanmean(v) for k, v in update_metrics.items()})
        row["nonfinite_losses"] = jnp.sum(nonfinite)
        row.update(eval_return=jnp.mean(eval_returns), eval_return_std=jnp.std(eval_returns),
                   train_return=last_return)
        return row

    def start(key: jax.Array) -> tuple[TrainState, dict]:
        """Initial state and the metrics row of the untrained policy (env step 0)."""
        state = init(key)
        key, eval_key = jax.random.split(state.key)
        returns = evaluate(state, eval_key)
        return state.replace(key=key), summarize({}, returns, state.last_return)

    def chunk_of(length: int):
        def run_chunk(state: TrainState, chunk_index: jax.Array) -> tuple[TrainState, dict]:
            """`length` env steps from chunk_index·eval_every, then an evaluation. chunk_index: () int,
            unbatched under vmap."""
            steps = chunk_index * c.eval_every + jnp.arange(length)
            state, step_metrics = jax.lax.scan(env_step, state, steps)
            key, eval_key = jax.random.split(state.key)
            returns = evaluate(state, eval_key)
            row = {**summarize(step_metrics, returns, state.last_return), **model_training.heldout_metrics(
                c, model, state.model, reward_model, state.reward_model, state.buffer)}
            return state.replace(key=key), row

        return run_chunk

    return _Loop(start=start, chunk_of=chunk_of, evaluate=evaluate)
