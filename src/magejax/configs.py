"""Run configuration: one frozen dataclass, the paper's presets, and validation.

A `Config` is hashable and static: everything that shapes the compiled program lives here, and
nothing else does, so `make_train(config)` compiles once per config.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

ALGOS = ("mage", "dyna", "td3", "td3-utd", "mage-ddpg")
"""Every algorithm: the four of the MAGE paper's sample-efficiency comparison (Fig. 2), then
MAGE-DDPG, the variant of its λ = 0 study (Appendix B.1, Fig. 5)."""

CriticLoss = Literal["td", "mage"]
TransitionSource = Literal["real", "imagined"]


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """What distinguishes the algorithms: critic loss, transition source, updates per step, and
    whether TD3's three changes to DDPG are on (MAGE-DDPG turns all three off)."""

    critic_loss: CriticLoss
    transitions: TransitionSource
    updates_per_step: int
    num_critics: int = 2             # TD3's clipped double Q (min over critics); DDPG has one
    target_smoothing: bool = True    # TD3's target-policy smoothing noise
    delayed_actor: bool = True       # TD3's actor step every `policy_delay` critic steps

    @property
    def uses_model(self) -> bool:
        return self.transitions == "imagined"


ALGO_SPECS = {
    "mage": AlgoSpec("mage", "imagined", 10),
    "dyna": AlgoSpec("td", "imagined", 10),
    "td3": AlgoSpec("td", "real", 1),
    "td3-utd": AlgoSpec("td", "real", 10),
    "mage-ddpg": AlgoSpec("mage", "imagined", 10, num_critics=1, target_smoothing=False,
                          delayed_actor=False),
}


REWARDS = ("true", "learned")
"""Where imagination's reward comes from: the env's exact `reward_fn`, or a learned MLP."""
MODELS = ("learned", "oracle")
"""Where imagination's next state comes from: the learned ensemble, or the env's `true_next_obs`."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a training run depends on besides its PRNG key.

    Defaults are the MAGE paper's settings for Pendulum (Appendix D.2); `preset()` gives the
    paper's settings for other environments.
    """

    env: str = "pendulum"
    algo: str = "mage"
    total_steps: int = 10_000
    warmup_steps: int = 100          # random actions and no agent updates before this many steps
    eval_every: int = 1_000
    eval_episodes: int = 10
    buffer_size: int = 100_000
    batch_size: int = 512
    updates_per_step: int | None = None  # None: the algorithm's own (10, or 1 for td3)

    # TD3 / MAGE
    gamma: float = 0.99
    tau: float = 0.005               # Polyak step; the paper's "decay 0.995"
    lam: float = 0.2                 # weight of the TD term in the MAGE loss (Fig. 2 setting)
    policy_delay: int = 2
    exploration_noise: float = 0.1
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    actor_lr: float = 1e-4
    critic_lr: float = 1e-4
    grad_clip: float = 5.0           # clip gradients by value, as the original code does
    train_actor: bool = True         # False: the actor stays at its initialisation (the paper's
                                     # gradient-error study evaluates critics of a fixed policy)
    actor_hidden: tuple[int, ...] = (128, 128)
    critic_hidden: tuple[int, ...] = (384, 384)

    # Environment and imagination
    env_backend: str | None = None   # Brax physics backend; None: the suite's default for the device
    reward: str = "true"             # "true": env.reward_fn; "learned": an MLP r̂(s, a, s')
    model: str = "learned"           # "learned": the ensemble; "oracle": env.true_next_obs
    horizon: int = 1                 # model steps before bootstrapping (k-step MAGE; MAAC's H)

    # Dynamics model
    ensemble_size: int = 8
    model_hidden: tuple[int, ...] = (128, 128)
    model_lr: float = 1e-4
    model_weight_decay: float = 1e-4
    model_train_every: int = 25
    model_train_batches: int = 120
    model_batch_size: int = 256
    min_logvar: float = -5.0
    max_logvar: float = -1.0

    @property
    def spec(self) -> AlgoSpec:
        return ALGO_SPECS[self.algo]

    @property
    def num_updates(self) -> int:
        """Agent updates per environment step."""
        if self.updates_per_step is not None:
            return self.updates_per_step
        return self.spec.updates_per_step

    @property
    def actor_delay(self) -> int:
        """Critic steps per actor step: `policy_delay`, or 1 for algorithms without TD3's delay."""
        return self.policy_delay if self.spec.delayed_actor else 1

    @property
    def num_chunks(self) -> int:
        """Evaluation chunks in a run (an evaluation closes each chunk)."""
        return self.total_steps // self.eval_every

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


# Paper settings (MAGE Appendix D.2) by environment; fields not named keep the Config defaults.
# Every environment besides Pendulum and CartPole (the MuJoCo tasks) gets `_MUJOCO_SIZES`.
_MUJOCO_SIZES = dict(warmup_steps=1000, batch_size=1024, actor_hidden=(384, 384),
                     model_hidden=(512, 512, 512, 512))
_PAPER_SIZES = {
    "pendulum": dict(warmup_steps=100, batch_size=512, actor_hidden=(128, 128), model_hidden=(128, 128)),
    "cartpole_swingup": dict(warmup_steps=100, batch_size=512, actor_hidden=(128, 128),
                             model_hidden=(128, 128)),
    "halfcheetah": _MUJOCO_SIZES,
}

# A configuration small enough for CI: tiny networks, few steps.
TINY = dict(total_steps=200, warmup_steps=50, eval_every=100, eval_episodes=2, buffer_size=1000,
            batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16), ensemble_size=4,
            model_hidden=(16, 16), model_train_every=25, model_train_batches=4, model_batch_size=16)


def preset(env: str = "pendulum", algo: str = "mage", size: str = "paper", **overrides) -> Config:
    """The paper's configuration for `env` and `algo` (`size="paper"`), or a CI-sized one (`"tiny"`).

    λ is 0.2, the value of the paper's headline sample-efficiency figure (0.05 elsewhere in the
    paper: pass `lam=0.05`).
    """
    if size not in ("paper", "tiny"):
        raise ConfigError(f"size: unknown preset {size!r}; valid: paper, tiny")
    fields = dict(env=env, algo=algo)
    fields.update(_PAPER_SIZES.get(env, _MUJOCO_SIZES))
    if size == "tiny":
        fields.update(TINY)
    fields.update(overrides)
    config = Config(**fields)
    validate(config)
    return config


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(config: Config) -> Config:
    """Check every field; raise `ConfigError` naming the first bad field and what is allowed."""
    from magejax import envs  # local import: envs imports nothing from here

    c = config
    _require(c.env in envs.names(), f"env: unknown environment {c.env!r}; valid: {', '.join(envs.names())}")
    _require(c.algo in ALGOS, f"algo: unknown algorithm {c.algo!r}; valid: {', '.join(ALGOS)}")
    for name in ("total_steps", "eval_every", "eval_episodes", "buffer_size", "batch_size",
                 "policy_delay", "ensemble_size", "model_train_every", "model_train_batches",
                 "model_batch_size"):
        value = getattr(c, name)
        _require(isinstance(value, int) and value > 0, f"{name}: must be a positive integer, got {value!r}")
    _require(c.warmup_steps >= 0, f"warmup_steps: must be >= 0, got {c.warmup_steps}")
    _require(c.updates_per_step is None or c.updates_per_step > 0,
             f"updates_per_step: must be a positive integer, got {c.updates_per_step}")
    for name in ("actor_lr", "critic_lr", "model_lr", "grad_clip"):
        value = getattr(c, name)
        _require(value > 0, f"{name}: must be > 0, got {value}")
    for name in ("exploration_noise", "target_noise", "target_noise_clip", "model_weight_decay"):
        value = getattr(c, name)
        _require(value >= 0, f"{name}: must be >= 0, got {value}")
    _require(c.reward in REWARDS, f"reward: unknown reward {c.reward!r}; valid: {', '.join(REWARDS)}")
    _require(c.model in MODELS, f"model: unknown model {c.model!r}; valid: {', '.join(MODELS)}")
    _require(isinstance(c.horizon, int) and c.horizon >= 0,
             f"horizon: must be a non-negative integer, got {c.horizon!r}")
    _require(c.lam >= 0, f"lam: λ must be >= 0, got {c.lam}")
    _require(isinstance(c.train_actor, bool), f"train_actor: must be true or false, got {c.train_actor!r}")
    _require(0 < c.gamma <= 1, f"gamma: must be in (0, 1], got {c.gamma}")
    _require(0 < c.tau <= 1, f"tau: must be in (0, 1], got {c.tau}")
    _require(c.eval_every <= c.total_steps,
             f"eval_every: {c.eval_every} is larger than the run ({c.total_steps} steps)")
    _require(c.total_steps % c.eval_every == 0,
             f"eval_every: must divide total_steps ({c.total_steps}), got {c.eval_every}")
    _require(c.warmup_steps < c.total_steps,
             f"warmup_steps: {c.warmup_steps} is not shorter than the run ({c.total_steps} steps)")
    _require(c.batch_size <= c.buffer_size,
             f"batch_size: {c.batch_size} is larger than the buffer can hold (buffer_size={c.buffer_size})")
    _require(c.model_batch_size <= c.buffer_size,
             f"model_batch_size: {c.model_batch_size} is larger than the buffer can hold "
             f"(buffer_size={c.buffer_size})")
    _require(c.min_logvar < c.max_logvar,
             f"min_logvar: must be below max_logvar, got {c.min_logvar} >= {c.max_logvar}")
    _require(all(h > 0 for h in c.actor_hidden + c.critic_hidden + c.model_hidden),
             "hidden sizes: every layer width must be positive")
    if c.spec.uses_model:
        _require(c.batch_size % c.ensemble_size == 0,
                 f"batch_size: {c.batch_size} must be divisible by ensemble_size ({c.ensemble_size}), "
                 "since imagination splits the batch among the members")
    return c
