"""One episode of a trained policy, rolled out under `jit` with its simulator states kept for drawing.

Rendering stays out of the jitted path: `make_rollout` steps the environment with `lax.scan` and
returns every state's `physics` (Pendulum's (θ, θ̇), Brax's pipeline state, ...); the frames are
drawn from them on the host afterwards (`painters`).

The episode is exactly one of the episodes `Trainer.evaluate` scores, acting with the
deterministic actor: `episode_key(seed, seeds, i)` is the key of the first episode that
`magejax eval --episodes 1 --seed seed` runs for run seed i, so the two report the same return.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from magejax.envs import Env, EnvState


@dataclasses.dataclass(frozen=True)
class Episode:
    """A finished episode on the host. T = the steps taken (episode_length, or fewer when it
    terminated).

    physics: the simulator states s_0 .. s_T, every leaf with a leading axis of T + 1.
    rewards: (T,) the reward of each step.
    """

    physics: Any
    rewards: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))


def episode_key(seed: int, seeds: int, seed_index: int) -> jax.Array:
    """The reset key of the episode shown for run seed `seed_index` of `seeds` under evaluation
    seed `seed`: `split(split(PRNGKey(seed), seeds)[seed_index], 1)[0]`, the key `Trainer.evaluate`
    gives its first (and, with one episode, only) episode when `magejax eval --seed seed` calls it
    with that run seed's key."""
    per_seed = jax.random.split(jax.random.PRNGKey(seed), seeds)[seed_index]
    return jax.random.split(per_seed, 1)[0]


def make_rollout(env: Env, policy: Callable[[Any, jax.Array], jax.Array]) -> Callable[[Any, jax.Array], Episode]:
    """`rollout(agent_state, key) -> Episode`: one episode from `env.reset(key)` acting with
    `policy(agent_state, obs (obs_size,)) -> action (action_size,)`, compiled once per call of
    `make_rollout`. Like `Trainer.evaluate`, a terminated episode is frozen (stepping a bare
    simulator past its end can produce NaN) and later steps are cut off here."""

    def scan(agent_state, key):
        def body(carry: tuple[EnvState, jax.Array], _):
            state, alive = carry
            next_state = env.step(state, policy(agent_state, state.obs))
            reward = alive * next_state.reward
            next_state = jax.tree.map(lambda a, b: jnp.where(alive > 0, a, b), next_state, state)
            return (next_state, alive * (1.0 - next_state.terminated)), (next_state.physics, reward, alive)

        first = env.reset(key)
        _, (physics, rewards, alive) = jax.lax.scan(body, (first, jnp.ones(())), None,
                                                    length=env.episode_length)
        physics = jax.tree.map(lambda s0, rest: jnp.concatenate([s0[None], rest]), first.physics, physics)
        return physics, rewards, alive

    scan_jit = jax.jit(scan)

    def rollout(agent_state, key: jax.Array) -> Episode:
        physics, rewards, alive = jax.device_get(scan_jit(agent_state, key))
        steps = int(np.sum(alive))  # alive is 1 up to and including the terminating step
        return Episode(physics=jax.tree.map(lambda x: np.asarray(x)[: steps + 1], physics),
                       rewards=np.asarray(rewards)[:steps])

    return rollout
