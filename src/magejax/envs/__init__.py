"""Environment registry: `make(name)` returns an `Env`; `names()` lists the valid names."""
from __future__ import annotations

from typing import Callable

from magejax.envs import cartpole_swingup, pendulum
from magejax.envs.base import Env, EnvState

_REGISTRY: dict[str, Callable[[], Env]] = {
    "cartpole_swingup": cartpole_swingup.make,
    "pendulum": pendulum.make,
}


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def make(name: str) -> Env:
    """The environment called `name`; an unknown name raises ValueError listing the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; valid: {', '.join(names())}")
    return _REGISTRY[name]()


__all__ = ["Env", "EnvState", "make", "names"]
