"""Seeds across devices and hosts, for `magejax train`.

The vmapped training state has a leading seed axis on every leaf. With several JAX devices the
CLI shards that axis over a 1-D `Mesh` named "seeds" (`NamedSharding(mesh, P("seeds"))`), with
the chunk index replicated: each device runs its own seeds and no device ever talks to another
during training (the compiled chunk has no collectives). Per-seed results agree with a
one-device run to float32 rounding, not bit for bit: each device's program is vmapped over
fewer seeds, and XLA may pick other kernels for other batch sizes (tests/test_parallel.py).

Multi-host (`jax.distributed.initialize`, several processes): `jax.devices()` spans every host,
each host holds the seeds of its own devices, and process 0 alone touches the run directory. It
reads settings and checkpoints and broadcasts them (`broadcast_json`, `broadcast_tree`); metrics
rows and the state to checkpoint are gathered to every host (`to_host`), and only process 0
writes them. The other processes need no access to the run directory. See docs/running.md.
"""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "seeds"


def is_main() -> bool:
    """True in the process that writes files (process 0; the only process of a one-host run)."""
    return jax.process_index() == 0


def shard_count(seeds: int, devices: int) -> int:
    """Devices to shard `seeds` over: the largest divisor of `seeds` that is at most `devices`."""
    return max(d for d in range(1, min(seeds, devices) + 1) if seeds % d == 0)


@dataclasses.dataclass(frozen=True)
class SeedPlacement:
    """Where the seeds of a run live. mesh None: one device, JAX's default placement."""

    mesh: Mesh | None
    note: str | None = None  # one line for the user when not every device is used

    @property
    def seeds(self) -> NamedSharding | None:
        """Leading (seed) axis split over the mesh."""
        return None if self.mesh is None else NamedSharding(self.mesh, P(AXIS))

    @property
    def replicated(self) -> NamedSharding | None:
        return None if self.mesh is None else NamedSharding(self.mesh, P())

    @property
    def devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def put(self, tree, sharding: NamedSharding | None = None):
        """Host arrays (the same on every process) -> device arrays, seed axis sharded by default."""
        if self.mesh is None:
            return jax.device_put(tree)
        sharding = sharding or self.seeds

        def leaf(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        return jax.tree.map(leaf, tree)

    def jit(self, fn, in_shardings, out_shardings, **kwargs):
        """`jax.jit` with these shardings, or plain `jax.jit` on one device."""
        if self.mesh is None:
            return jax.jit(fn, **kwargs)
        return jax.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings, **kwargs)


def place_seeds(seeds: int, devices=None) -> SeedPlacement:
    """Shard `seeds` over all devices, or over the most that divide them evenly (with a note).

    Raises ValueError in a multi-host run whose seeds do not divide evenly over all devices (a
    host without seeds would have nothing to do; the caller reports it as bad input).
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if n == 1:
        return SeedPlacement(mesh=None)
    d = shard_count(seeds, n)
    if jax.process_count() > 1 and d != n:
        raise ValueError(f"--seeds: a multi-host run needs a multiple of the {n} devices of all "
                         f"hosts, got {seeds}")
    note = None
    if d < n:
        if d == 1:
            note = (f"{seeds} seed(s) do not split evenly over the {n} devices; running all of "
                    f"them on one device (use a multiple of {n} seeds to use every device)")
        else:
            note = (f"{seeds} seeds do not split evenly over the {n} devices; sharding them over "
                    f"{d} devices, {seeds // d} each (use a multiple of {n} seeds to use every device)")
        if d == 1:
            return SeedPlacement(mesh=None, note=note)
    return SeedPlacement(mesh=Mesh(np.array(devices[:d]), (AXIS,)), note=note)


# ------------------------------------------------------------------------- across processes

def to_host(tree):
    """Device arrays -> numpy arrays holding every seed, on every process (a collective when
    arrays span hosts: all processes must call it together)."""
    leaves = jax.tree.leaves(tree)
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def _broadcast_bytes(data: bytes | None) -> bytes:
    from jax.experimental import multihost_utils
    size = multihost_utils.broadcast_one_to_all(np.array([len(data) if is_main() else 0], np.int32))
    buf = np.frombuffer(data, np.uint8) if is_main() else np.zeros(int(size[0]), np.uint8)
    return np.asarray(multihost_utils.broadcast_one_to_all(buf), np.uint8).tobytes()


def broadcast_json(value=None):
    """Process 0's JSON-able `value`, on every process (the argument is ignored elsewhere)."""
    if jax.process_count() == 1:
        return value
    return json.loads(_broadcast_bytes(json.dumps(value).encode() if is_main() else None))


def broadcast_tree(tree, like):
    """Process 0's pytree of host arrays, bit for bit, on every process.

    like: a tree of the same structure, shapes and dtypes (e.g. `jax.eval_shape` output) that the
    other processes use in place of data they do not have.
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils
    source = tree if is_main() else jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), like)
    # Bytes, not values: the broadcast is a sum with zeros, which would turn -0.0 into +0.0.
    raw = jax.tree.map(lambda x: np.frombuffer(np.ascontiguousarray(x).tobytes(), np.uint8), source)
    raw = multihost_utils.broadcast_one_to_all(raw)
    return jax.tree.map(lambda r, s: np.frombuffer(np.asarray(r, np.uint8).tobytes(),
                                                   np.dtype(s.dtype)).reshape(s.shape), raw, like)
