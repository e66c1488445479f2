"""Environment registry: `make(name, backend)` returns an `Env`; `names()` lists the valid names.

Pendulum and CartPole swing-up are pure JAX; the Brax suite (`brax_specs.NAMES`) is built on
Brax's physics, imported only when one of its environments is made.
"""
from __future__ import annotations

from typing import Callable

from magejax.envs import brax_specs, cartpole_swingup, pendulum
from magejax.envs.base import Env, EnvState

_PURE_JAX: dict[str, Callable[[], Env]] = {
    "cartpole_swingup": cartpole_swingup.make,
    "pendulum": pendulum.make,
}


def names() -> tuple[str, ...]:
    return tuple(sorted((*_PURE_JAX, *brax_specs.NAMES)))


def backends(name: str) -> tuple[str, ...]:
    """The physics backends `name` accepts; () for the pure-JAX environments."""
    return brax_specs.SUPPORTED_BACKENDS.get(name, ())


def check_backend(name: str, backend: str | None) -> None:
    """Raise ValueError unless `backend` is None or one that the (known) environment `name` runs on."""
    if backend is None:
        return
    if name in _PURE_JAX:
        raise ValueError(f"environment {name!r} is pure JAX and has no physics backend; "
                         f"got backend {backend!r}, leave it None")
    if backend not in backends(name):
        kind = "unknown backend" if backend not in brax_specs.BACKENDS else "unsupported backend"
        raise ValueError(f"{kind} {backend!r} for {name}; valid: {', '.join(backends(name))}")


def make(name: str, backend: str | None = None) -> Env:
    """The environment called `name`, on the Brax physics `backend` (None: the device's default).

    Raises ValueError for an unknown name or backend (listing the valid ones) and for a backend
    given to a pure-JAX environment.
    """
    if name not in names():
        raise ValueError(f"unknown environment {name!r}; valid: {', '.join(names())}")
    check_backend(name, backend)
    if name in _PURE_JAX:
        return _PURE_JAX[name]()
    from magejax.envs import brax_suite  # imports brax (~2.5 s): only when a Brax env is made

    return brax_suite.make(name, backend)


__all__ = ["Env", "EnvState", "backends", "check_backend", "make", "names"]
