"""`validate(config)`: every field checked, the first bad one named with what is allowed."""
from __future__ import annotations

import dataclasses
import math

from magejax.configs.config import ALGO_SPECS, ALGOS, MODELS, PRECISIONS, REWARDS, Config, ConfigError


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
    for field in dataclasses.fields(c):  # inf and NaN pass every range check below, so first this
        value = getattr(c, field.name)
        _require(not isinstance(value, float) or math.isfinite(value),
                 f"{field.name}: must be a finite number, got {value}")
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
    _require(c.precision in PRECISIONS,
             f"precision: one of {', '.join(PRECISIONS)}, got {c.precision!r}")
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
