"""A circular replay buffer as a pytree, usable inside jit, scan and vmap.

Held-out slice for the dynamics model: every transition stored at a buffer slot whose index is a
multiple of `HOLDOUT_EVERY` (slots 0, 10, 20, ...; with sequential inserts, every 10th transition)
is never used to train the model (`sample_model_indices`) and serves to measure the model's
generalisation (`heldout_indices`). The slice is defined by slot, so it stays fixed when the buffer
wraps around: a slot's transitions are always held out or never. Agent updates still sample every
slot (`sample`), since the slice only concerns the model.
"""
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


HOLDOUT_EVERY = 10
"""Buffer slots i with i % HOLDOUT_EVERY == 0 are the model's held-out slice."""


def sample_model_indices(buffer: ReplayBuffer, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Indices drawn uniformly, with replacement, from the filled slots outside the held-out slice.

    The j-th non-held-out slot is HOLDOUT_EVERY·(j // (HOLDOUT_EVERY−1)) + j % (HOLDOUT_EVERY−1) + 1,
    so no mask of data-dependent size is needed. With fewer than two transitions there is no
    non-held-out one yet and slot 0 is returned.
    """
    per_block = HOLDOUT_EVERY - 1
    count = buffer.size - (buffer.size + per_block) // HOLDOUT_EVERY  # size − ceil(size / 10)
    j = jax.random.randint(key, shape, 0, jnp.maximum(count, 1))
    index = HOLDOUT_EVERY * (j // per_block) + j % per_block + 1
    return jnp.where(count > 0, index, 0)


def heldout_indices(buffer: ReplayBuffer, n: int) -> jax.Array:
    """`n` held-out slots spread evenly over the filled part (static shape, no randomness).

    The k-th held-out slot, k = floor(i·H / n) for i < n where H = ceil(size / 10) is the number
    of held-out transitions: every one of them appears floor(n/H) or ceil(n/H) times when H <= n,
    an evenly spaced subset when H > n. All zeros (slot 0) while the buffer is empty.
    """
    held = (buffer.size + HOLDOUT_EVERY - 1) // HOLDOUT_EVERY
    k = (jnp.arange(n) * held) // n
    return HOLDOUT_EVERY * k
