"""Replay buffer and running statistics: shapes, wrap-around, uniform sampling, exact moments."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from magejax import replay
from magejax.models import normalization


def transition(i: float, obs_size=3, action_size=2):
    return replay.Transition(obs=jnp.full(obs_size, i), action=jnp.full(action_size, -i), reward=jnp.asarray(i),
                             next_obs=jnp.full(obs_size, i + 0.5), terminated=jnp.asarray(i % 2 == 0, jnp.float32),
                             truncated=jnp.asarray(i % 3 == 0, jnp.float32))


def test_insert_wraps_around_and_keeps_terminated_and_truncated_apart():
    buf = replay.init(4, 3, 2)
    insert = jax.jit(replay.insert)
    for i in range(6):
        buf = insert(buf, transition(float(i)))
    assert int(buf.size) == 4 and int(buf.position) == 2 and buf.capacity == 4
    np.testing.assert_array_equal(buf.data.reward, [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(buf.data.obs[:, 0], [4.0, 5.0, 2.0, 3.0])
    np.testing.assert_array_equal(buf.data.terminated, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(buf.data.truncated, [0.0, 0.0, 0.0, 1.0])


def test_sample_is_uniform_over_filled_part_only():
    buf = replay.init(100, 3, 2)
    for i in range(10):
        buf = replay.insert(buf, transition(float(i)))
    batch = jax.jit(replay.sample, static_argnums=2)(buf, jax.random.PRNGKey(0), 5000)
    assert batch.obs.shape == (5000, 3) and batch.action.shape == (5000, 2) and batch.reward.shape == (5000,)
    counts = np.bincount(np.asarray(batch.reward).astype(int), minlength=10)
    assert counts.shape == (10,)  # nothing drawn from the empty slots (their reward would be 0 too, so check obs)
    assert float(batch.next_obs.min()) >= 0.5
    assert counts.min() > 400 and counts.max() < 600  # 500 expected per index


def test_buffer_works_under_vmap():
    bufs = jax.vmap(lambda _: replay.init(8, 3, 2))(jnp.arange(3))
    trans = jax.vmap(transition)(jnp.arange(3.0))
    bufs = jax.vmap(replay.insert)(bufs, trans)
    assert bufs.data.obs.shape == (3, 8, 3)
    np.testing.assert_array_equal(bufs.data.reward[:, 0], [0.0, 1.0, 2.0])


def test_running_stats_equal_batch_moments():
    x = jax.random.normal(jax.random.PRNGKey(0), (1000, 4)) * jnp.array([1.0, 2.0, 0.5, 3.0]) + 5.0
    stats = normalization.init(4)
    for chunk in jnp.split(x, [1, 7, 300, 301]):  # uneven chunks, including single rows
        stats = normalization.update(stats, chunk)
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.std, x.std(0), rtol=1e-4)
    z = normalization.normalize(stats, x)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalization.denormalize(stats, z), x, rtol=1e-5)
    # Empty statistics are the identity, not a division by zero.
    empty = normalization.init(4)
    np.testing.assert_allclose(normalization.normalize(empty, x), x)


def test_model_indices_never_in_the_heldout_slice():
    capacity = 45  # not a multiple of 10: the slice wraps like any slot
    buf = replay.init(capacity, 3, 2)
    sample = jax.jit(replay.sample_model_indices, static_argnums=2)
    for size in range(1, capacity + 1):
        idx = np.asarray(sample(buf.replace(size=jnp.int32(size)), jax.random.PRNGKey(size), (4000,)))
        if size == 1:  # no transition outside the slice yet
            assert set(idx.tolist()) == {0}
            continue
        allowed = {i for i in range(size) if i % replay.HOLDOUT_EVERY}
        assert set(idx.tolist()) == allowed  # never held out, never unfilled, every allowed slot


def test_heldout_indices_spread_over_the_slice():
    buf = replay.init(100_000, 3, 2)
    for size, n in ((1, 8), (35, 8), (35, 2), (100_000, 1024)):
        idx = np.asarray(replay.heldout_indices(buf.replace(size=jnp.int32(size)), n))
        assert idx.shape == (n,) and np.all(idx % replay.HOLDOUT_EVERY == 0) and np.all(idx < size)
        held = -(-size // replay.HOLDOUT_EVERY)
        if held <= n:  # every held-out transition, each floor(n/H) or ceil(n/H) times
            counts = np.bincount(idx // replay.HOLDOUT_EVERY, minlength=held)
            assert counts.min() >= n // held and counts.max() <= -(-n // held)
        else:
            assert len(set(idx.tolist())) == n and idx.max() >= size - size // n - replay.HOLDOUT_EVERY
