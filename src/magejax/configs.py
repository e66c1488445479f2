"""Run configuration: one frozen dataclass, the paper's presets, and validation.

A `Config` is hashable and static: everything that shapes the compiled program lives here, and
nothing else does, so `make_train(config)` compiles once per config.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from magejax.envs import brax_specs

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
_PAPER_SIZES = {
    "pendulum": dict(warmup_steps=100, batch_size=512, actor_hidden=(128, 128), model_hidden=(128, 128),
                     reward_hidden=(128,)),
    "cartpole_swingup": dict(warmup_steps=100, batch_size=512, actor_hidden=(128, 128),
                             model_hidden=(128, 128), reward_hidden=(128,)),
}
# Every Brax environment: warm-up 1000, batch 1024, actor and critic 2×384, model ensemble 8 × 4×512.
_PAPER_SIZES.update({name: dict(warmup_steps=1000, batch_size=1024, actor_hidden=(384, 384),
                                critic_hidden=(384, 384), model_hidden=(512, 512, 512, 512), ensemble_size=8)
                     for name in brax_specs.NAMES})

# The `cpu` preset: the paper's Pendulum/CartPole settings with the critic width and batch size of
# the cheapest setting whose MAGE-TD3 reached an evaluation return of -250 in at least 4 of 5
# Pendulum seeds within 10,000 steps, in a measured sweep of critic {384, 256, 128, 64} x batch
# {512, 256, 128} on the 2-core CPU (experiments/cpu_preset_sweep.py; table, plot and timings in
# experiments/results/cpu_preset_sweep/). Everything else (10 updates per step, actor 2x128, the
# model and its schedule, lambda) stays the paper's. CartPole swing-up shares Pendulum's sizes.
CPU_CRITIC, CPU_BATCH = (64, 64), 128
CPU = {env: dict(critic_hidden=CPU_CRITIC, batch_size=CPU_BATCH) for env in ("pendulum", "cartpole_swingup")}

# A configuration small enough for CI: tiny networks, few steps.
TINY = dict(total_steps=200, warmup_steps=50, eval_every=100, eval_episodes=2, buffer_size=1000,
            batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16), ensemble_size=4,
            model_hidden=(16, 16), model_train_every=25, model_train_batches=4, model_batch_size=16,
            reward_hidden=(16,))


# MAAC's own settings. The MAAC paper states none of these numbers; where the authors' code
# (github.com/iclavera/meta-mb, run_scripts/maac_run_sweep.py and meta_mb/algos/maac.py at
# commit 065ab3a) has one, it is used, else the choice is ours:
#   horizon 3          authors' HalfCheetah sweep: actor horizon T + 1 = 3 (critic expansion 2);
#                      the paper uses one H for both, so do we, with the actor's value
#   rollout_samples 5  paper Fig. 5 ablates "a single sample … 5x batch size"; authors' sweeps 5, 10
#   lr 3e-4           authors' code (actor, critics and temperature); we keep RAdam and value
#                      clipping (grad_clip) of the other agents instead of their Adam
#   policy_delay 1     SAC / authors' code: the actor and α update on every critic update
#   10 updates/step    authors' sweep (n_train_repeats 10); = MAGE's (ALGO_SPECS)
#   α₀ = 1, H̄ = −|A|   authors' code (log α = 0, target_entropy 1 → −1·|A|); see maac.py
# Everything else (network sizes, batch, warm-up, γ, τ, the ensemble and its training) is the
# MAGE setting of the environment, so that comparisons with MAGE isolate the algorithm. The
# authors' differences there: 256×256 networks, batch 256, an 8 × 4 × 200 ensemble trained to
# convergence with early stopping, 5 % real data in critic batches, STEVE weighting.
#   normalize_obs off  neither the MAAC paper nor this implementation normalises agent inputs
_MAAC = dict(horizon=3, rollout_samples=5, actor_lr=3e-4, critic_lr=3e-4, policy_delay=1,
             normalize_obs=False)


def preset(env: str = "pendulum", algo: str = "mage", size: str = "paper", **overrides) -> Config:
    """The paper's configuration for `env` and `algo` (`size="paper"`), the 2-core-CPU one
    (`"cpu"`: Pendulum and CartPole swing-up, see `CPU`), or a CI-sized one (`"tiny"`).

    λ is 0.2, the value of the paper's headline sample-efficiency figure (0.05 elsewhere in the
    paper: pass `lam=0.05`). MAAC adds `_MAAC` (its sources and our choices are listed there).
    """
    if size not in SIZES:
        raise ConfigError(f"size: unknown preset {size!r}; valid: {', '.join(SIZES)}")
    if size == "cpu" and env not in CPU:
        raise ConfigError(f"size: the cpu preset exists for {', '.join(CPU)} (chosen by a measured sweep), "
                          f"not for {env!r}; use paper or tiny")
    fields = dict(env=env, algo=algo)
    fields.update(_PAPER_SIZES.get(env, {}))
    if algo == "maac":
        fields.update(_MAAC)
    if size == "cpu":
        fields.update(CPU[env])
    if size == "tiny":
        fields.update(TINY)
    fields.update(overrides)
    config = Config(**fields)
    validate(config)
    return config


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _validate_imagination(c: Config) -> None:
    """reward, model and horizon shape imagination, so only model-based algorithms may set them."""
    from magejax import envs

    if not c.spec.uses_model:
        why = f"algo {c.algo!r} learns from real transitions only and never imagines"
        _require(c.reward == "true", f"reward: {c.reward!r} needs a model-based algorithm; {why}")
        _require(c.model == "learned", f"model: {c.model!r} needs a model-based algorithm; {why}")
        _require(c.horizon == 1, f"horizon: {c.horizon} needs a model-based algorithm; {why}")
        return
    # MAAC's H = 0 is SAC; MAGE's and Dyna's targets need at least one model step.
    _require(c.horizon >= 1 or c.algo == "maac",
             f"horizon: algo {c.algo!r} needs at least one model step, got {c.horizon}")
    if c.model == "oracle":
        # Built only here: making an env can be costly (Brax), and only the oracle needs one.
        _require(envs.make(c.env).true_next_obs is not None,
                 f"model: env {c.env!r} has no differentiable oracle (true_next_obs), so model='oracle' "
                 "is not available for it; use model='learned'")


def validate(config: Config) -> Config:
    """Check every field; raise `ConfigError` naming the first bad field and what is allowed."""
    from magejax import envs  # local import: envs imports nothing from here

    c = config
    _require(c.env in envs.names(), f"env: unknown environment {c.env!r}; valid: {', '.join(envs.names())}")
    try:
        envs.check_backend(c.env, c.env_backend)
    except ValueError as e:
        raise ConfigError(f"env_backend: {e}") from None
    _require(c.algo in ALGOS, f"algo: unknown algorithm {c.algo!r}; valid: {', '.join(ALGOS)}")
    for name in ("total_steps", "eval_every", "eval_episodes", "buffer_size", "batch_size",
                 "policy_delay", "ensemble_size", "model_train_every", "model_train_batches",
                 "model_batch_size", "rollout_samples"):
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
    _require(isinstance(c.normalize_obs, bool), f"normalize_obs: must be true or false, got {c.normalize_obs!r}")
    if c.algo == "maac":
        _require(not c.normalize_obs, "normalize_obs: maac's networks take raw observations; "
                 "agent input normalisation is implemented for the TD3 family only, set it to false")
        _require(c.reward == "true", f"reward: maac supports only reward='true' so far, got {c.reward!r}")
        _require(c.model == "learned", f"model: maac supports only model='learned' so far, got {c.model!r}")
    _validate_imagination(c)
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
    _require(all(h > 0 for h in c.actor_hidden + c.critic_hidden + c.model_hidden + c.reward_hidden),
             "hidden sizes: every layer width must be positive")
    _require(isinstance(c.eval_mpc, bool), f"eval_mpc: must be true or false, got {c.eval_mpc!r}")
    _require(not c.eval_mpc or c.spec.uses_model,
             f"eval_mpc: test-time MPC plans in the learned model, and algorithm {c.algo!r} has none "
             f"(model-based: {', '.join(a for a in ALGOS if ALGO_SPECS[a].uses_model)})")
    for name in ("mpc_horizon", "mpc_elites", "mpc_iterations"):
        value = getattr(c, name)
        _require(isinstance(value, int) and value > 0, f"{name}: must be a positive integer, got {value!r}")
    _require(isinstance(c.mpc_population, int) and c.mpc_population >= 2,
             f"mpc_population: must be an integer >= 2 (the policy's plan and at least one sample), "
             f"got {c.mpc_population!r}")
    _require(c.mpc_elites <= c.mpc_population,
             f"mpc_elites: {c.mpc_elites} is more than the population ({c.mpc_population})")
    _require(c.mpc_init_std > 0, f"mpc_init_std: must be > 0, got {c.mpc_init_std}")
    if c.spec.uses_model:
        _require(c.batch_size % c.ensemble_size == 0,
                 f"batch_size: {c.batch_size} must be divisible by ensemble_size ({c.ensemble_size}), "
                 "since imagination splits the batch among the members")
    return c
