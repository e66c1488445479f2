"""Presets: the paper's settings per environment, the 2-core-CPU sizes (`CPU`, chosen by a
measured sweep), CI-sized runs (`TINY`) and MAAC's own settings; `preset(env, algo, size)`."""
from __future__ import annotations

from magejax.configs.config import Config, ConfigError, SIZES
from magejax.configs.validation import validate
from magejax.envs import brax_specs

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
