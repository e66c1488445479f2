"""The functional environment interface every magejax environment implements."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import chex
import jax


@chex.dataclass
class EnvState:
    """One environment's state.

    Attributes:
      physics: the simulator's own state (a pytree).
      obs: (obs_size,) the observation of this state.
      reward: () the reward of the step that led here (0 after reset).
      terminated: () 1.0 if this state is terminal (bootstrap with 0), else 0.0.
      truncated: () 1.0 if the time limit ended the episode here (bootstrap normally), else 0.0.
      time: () int32 steps taken in this episode.
    """

    physics: Any
    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    time: jax.Array


@dataclasses.dataclass(frozen=True)
class Env:
    """A pure-JAX environment with its differentiable reward and termination in observation space.

    `reset(key) -> EnvState`; `step(state, action) -> EnvState` with `action` in [-1, 1]^action_size
    (rescaled to the simulator's range inside). `step` does not reset: the training loop does, so
    that the true final observation is kept for the transition.

    `reward_fn(obs, action, next_obs) -> ()` and `done_fn(next_obs) -> ()` reproduce the step's
    reward and termination from observations alone, differentiably in `action` and `next_obs`.
    They act on single transitions; `jax.vmap` them for batches.

    `true_next_obs(obs, action) -> next_obs` (the differentiable oracle) rebuilds the simulator
    state from `obs` and steps the real dynamics, differentiably in both arguments: the ground
    truth for gradient-error studies and the `model="oracle"` option. `None` where an
    environment's observation does not determine its dynamics.
    """

    name: str
    obs_size: int
    action_size: int
    episode_length: int
    reset: Callable[[jax.Array], EnvState]
    step: Callable[[EnvState, jax.Array], EnvState]
    reward_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    done_fn: Callable[[jax.Array], jax.Array]
    true_next_obs: Callable[[jax.Array, jax.Array], jax.Array] | None = None
