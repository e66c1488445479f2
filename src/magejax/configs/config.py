"""`Config`: one frozen dataclass of everything a run depends on besides its PRNG key, and the
static choices that distinguish the algorithms (`ALGO_SPECS`).

A `Config` is hashable and static: everything that shapes the compiled program lives here, and
nothing else does, so `make_train(config)` compiles once per config.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

ALGOS = ("mage", "dyna", "td3", "td3-utd", "mage-ddpg", "maac")
"""Every algorithm: the four of the MAGE paper's sample-efficiency comparison (Fig. 2), then
MAGE-DDPG, the variant of its λ = 0 study (Appendix B.1, Fig. 5), and MAAC (Clavera et al., 2020)."""

CriticLoss = Literal["td", "mage", "expansion"]
TransitionSource = Literal["real", "imagined"]


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """What distinguishes the algorithms: critic loss, transition source, updates per step, and
    whether TD3's three changes to DDPG are on (MAGE-DDPG turns all three off).

    `expansion` (MAAC): squared TD error with H-step value-expansion targets on real and imagined
    transitions, and a stochastic policy trained through the model (see `maac.py`)."""

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
    "maac": AlgoSpec("expansion", "imagined", 10),
}


REWARDS = ("true", "learned")
"""Where imagination's reward comes from: the env's exact `reward_fn`, or a learned MLP."""
MODELS = ("learned", "oracle")
"""Where imagination's next state comes from: the learned ensemble, or the env's `true_next_obs`."""
PRECISIONS = ("f32", "tf32", "bf16")
"""Matrix-product precision of the networks (`agents.precision` says what each means)."""


SIZES = ("paper", "cpu", "tiny")
"""Presets: the paper's settings, the 2-core-CPU sizes (`CPU`), CI-sized (`TINY`)."""


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
    grad_clip: float = 5.0           # clip gradients by value, as the original code does (the MAGE
                                     # critic's on the original's loss scale: Agent.critic_loss_scale)
    normalize_obs: bool = True       # actor and critics see states standardised with the buffer's
                                     # running mean and std, as in the original code (not MAAC)
    precision: str = "f32"           # matrix products of every network: f32 (full, also on GPUs)
                                     # | tf32 (the GPU default) | bf16 (bf16 operands,
                                     # float32 accumulation) (`agents.precision`)
    train_actor: bool = True         # False: the actor stays at its initialisation (the paper's
                                     # gradient-error study evaluates critics of a fixed policy)
    actor_hidden: tuple[int, ...] = (128, 128)
    critic_hidden: tuple[int, ...] = (384, 384)

    # Environment and imagination
    env_backend: str | None = None   # Brax physics backend; None: the suite's default for the device
    reward: str = "true"             # "true": env.reward_fn; "learned": an MLP r̂(s, a, s')
    model: str = "learned"           # "learned": the ensemble; "oracle": env.true_next_obs
    horizon: int = 1                 # model steps before bootstrapping (k-step MAGE; MAAC's H)
    rollout_samples: int = 5         # MAAC: imagined rollouts per buffer state in the actor objective

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

    # Learned reward r̂(s, a, s') (reward="learned"); trained with the model's lr, weight decay
    # and schedule. 3 × 256 is the paper's size; the Pendulum/CartPole presets use 1 × 128.
    reward_hidden: tuple[int, ...] = (256, 256, 256)

    # Test-time MPC (MAAC §5.4; `planning.py`): evaluation acts with a CEM planner in the model,
    # seeded by the policy, with min Q as terminal value. MAAC gives no CEM settings; horizon,
    # population, elites and iterations are TD-MPC's (Hansen et al. 2022), which also plans with a
    # terminal critic; the initial std is PETS's (Chua et al. 2018): a quarter of the action range.
    eval_mpc: bool = False
    mpc_horizon: int = 5
    mpc_population: int = 512
    mpc_elites: int = 64
    mpc_iterations: int = 6
    mpc_init_std: float = 0.5

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
        """Evaluation chunks in a run (an evaluation closes each chunk). When `eval_every` does not
        divide `total_steps`, the last chunk is the shorter remainder."""
        return -(-self.total_steps // self.eval_every)

    def chunk_steps(self, chunk: int) -> int:
        """Env steps in chunk `chunk` (0-based): `eval_every`, or the remainder for the last one."""
        return min(self.eval_every, self.total_steps - chunk * self.eval_every)

    def chunk_end(self, chunk: int) -> int:
        """The env step at which chunk `chunk`'s evaluation is taken."""
        return min((chunk + 1) * self.eval_every, self.total_steps)

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
