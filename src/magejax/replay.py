"""A circular replay buffer as a pytree, usable inside jit, scan and vmap."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


@chex.dataclass
class Transition:
    """One transition, or a batch with a leading axis.

    obs (O,), action (A,), reward (), next_obs (O,) the TRUE next observation (never a reset one),
    terminated () 1.0 if next_obs is terminal, truncated () 1.0 if the time limit ended the episode.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array


@chex.dataclass
class ReplayBuffer:
    """data: a Transition whose leaves have leading axis `capacity`; insert position and fill level."""

    data: Transition
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[0]


def init(capacity: int, obs_size: int, action_size: int) -> ReplayBuffer:
    zeros = jnp.zeros
    data = Transition(obs=zeros((capacity, obs_size)), action=zeros((capacity, action_size)),
                      reward=zeros(capacity), next_obs=zeros((capacity, obs_size)),
                      terminated=zeros(capacity), truncated=zeros(capacity))
    return ReplayBuffer(data=data, position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def insert(buffer: ReplayBuffer, transition: Transition) -> ReplayBuffer:
    """Write one transition at the insert position, overwriting the oldest when full."""
    pos = buffer.position
    data = jax.tree.map(lambda store, x: store.at[pos].set(x), buffer.data, transition)
    return buffer.replace(data=data, position=(pos + 1) % buffer.capacity,
                          size=jnp.minimum(buffer.size + 1, buffer.capacity))


def sample_indices(buffer: ReplayBuffer, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Indices drawn uniformly, with replacement, from the filled part. Needs size > 0."""
    return jax.random.randint(key, shape, 0, jnp.maximum(buffer.size, 1))


def gather(buffer: ReplayBuffer, indices: jax.Array) -> Transition:
    return jax.tree.map(lambda store: store[indices], buffer.data)


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transition:
    """A uniform batch of `batch_size` transitions (leading axis batch_size)."""
    return gather(buffer, sample_indices(buffer, key, (batch_size,)))
