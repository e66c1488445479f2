"""The split between a run's static structure and its traced hyper-parameters.

`TRACED` are the numeric `Config` fields that shape no array and no branch: λ, γ, τ, the three
learning rates and the three noise scales. Everything else (sizes, algorithm, environment,
schedules, flags) stays static: it shapes the compiled program.

A trainer runs with the config's own values as compile-time constants (`hp=None`, what
`magejax train` does), or with `hp`, a dict of the `TRACED` values as float32 arrays, as inputs
of the program (`train.Trainer`'s functions all take it). `jax.vmap` over a leading axis of `hp`
(and of the keys) then trains seeds × values in one compiled program, as rejax does:

    configs = [base.replace(lam=lam) for lam in (0.05, 0.1, 0.2, 1.0)]
    hp = hyperparams.stack(configs, seeds=5)            # {name: (20,)}
    keys = jnp.tile(jax.random.split(key, 5), (4, 1))  # (20, 2): every value gets the same seeds
    state, metrics = jax.jit(jax.vmap(make_train(base).train))(keys, hp)

Values are validated on the host (`configs.validate` of each member's config), never on tracers.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from magejax.configs.config import Config, ConfigError

TRACED = ("lam", "gamma", "tau", "actor_lr", "critic_lr", "model_lr", "exploration_noise",
          "target_noise", "target_noise_clip")
"""Config fields that may differ between the members of one compiled sweep."""


def values(config: Config) -> dict[str, np.ndarray]:
    """config's `TRACED` values as float32 scalars: what `bind` puts back into a config."""
    return {name: np.float32(getattr(config, name)) for name in TRACED}


def stack(configs: list[Config], seeds: int = 1) -> dict[str, np.ndarray]:
    """The `TRACED` values of `configs` (which must differ in nothing else: `check_sweepable`),
    each repeated for `seeds` seeds, member-major. -> {name: (len(configs) · seeds,) float32}"""
    check_sweepable(configs)
    return {name: np.repeat(np.asarray([getattr(c, name) for c in configs], np.float32), seeds)
            for name in TRACED}


def bind(config: Config, hp: dict) -> Config:
    """`config` with its `TRACED` fields replaced by the (possibly traced) values of `hp`.

    Only for building the agent inside a traced function: such a config is never validated,
    hashed or saved (its fields may be tracers)."""
    unknown = sorted(set(hp) - set(TRACED))
    if unknown:
        raise ConfigError(f"hyper-parameters: not traced fields: {', '.join(unknown)}; traced: {', '.join(TRACED)}")
    return dataclasses.replace(config, **hp)


def static_part(config: Config) -> dict:
    """Every field of `config` but the `TRACED` ones: what one compiled program fixes."""
    return {k: v for k, v in config.to_dict().items() if k not in TRACED}


def check_sweepable(configs: list[Config]) -> None:
    """Raise ConfigError unless `configs` (at least one) differ only in `TRACED` fields."""
    if not configs:
        raise ConfigError("sweep: no configurations to run")
    first = static_part(configs[0])
    for c in configs[1:]:
        other = static_part(c)
        differ = [k for k in first if first[k] != other[k]]
        if differ:
            raise ConfigError(f"sweep: members differ in {', '.join(differ)}, which shape the compiled "
                              f"program; only {', '.join(TRACED)} can vary within one sweep")
