"""CartPole swing-up: does the trained actor saturate at a constant ±1, and if so, why?

At the old cpu scale (1000 env steps), MAGE-TD3's CartPole actors saturated at a constant ±1,
which made per-seed returns coincide across reward models and λ. With the learning figures'
length (Fig. 2: 20,000 env steps), this script asks, for finished runs (default: Fig. 2's four
algorithms and Fig. 4's learned-reward MAGE-TD3 on CartPole swing-up), from each seed's newest
checkpoint, without retraining:

1. Behaviour: one deterministic-actor episode from a fixed initial state: the fraction of steps
   with |a| > 0.99, the mean action, sign changes, length and return.
2. Cause, on 2048 states of the seed's own replay buffer, at the actor's action a = π(s):
   * how many states the actor saturates (|a| > 0.99);
   * at those states, whether the critic's action-gradient ∇ₐQ₁(s, a), which the actor follows,
     points outward (same sign as a: "push further into saturation", where tanh's derivative
     1 − a² < 0.02 lets the pre-activation grow without bound and the actor stays stuck);
   * whether the action-gradient target ∇ₐy(a) = ∇ₐ[r(s, a, s') + γ min Q̄(s', π̄(s'))] points
     outward, with s' from the true dynamics (defined for every algorithm) and, for model-based
     runs, from the learned model (what MAGE's critic is trained to match): if the target points
     inward where ∇ₐQ points outward, the critic's action-gradient is wrong there; if both point
     outward, saturation is what the critic was taught;
   * the mean |∇ₐQ| and |∇ₐy| there, for scale.

Writes results.json and results.md to --out.

    python experiments/cartpole_saturation.py
    python experiments/cartpole_saturation.py --runs DIR [DIR ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from magejax import replay
from magejax.runs import trained

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RUNS = [RESULTS / "fig2_sample_efficiency" / "cartpole_swingup" / a for a in ("mage", "dyna", "td3", "td3-utd")]
DEFAULT_RUNS.append(RESULTS / "fig4_learned_reward" / "cartpole_swingup" / "mage-learned")
SATURATED = 0.99
STATES = 2048


def action_stats(actions: np.ndarray, alive: np.ndarray) -> dict:
    """Statistics of one episode's 1-D actions. actions: (T,), alive: (T,) 1 before termination."""
    n = int(alive.sum())
    a = actions[:n]
    return dict(length=n, frac_saturated=float(np.mean(np.abs(a) > SATURATED)) if n else float("nan"),
                mean_action=float(a.mean()) if n else float("nan"),
                sign_changes=int(np.sum(np.diff(np.sign(a)) != 0)))


def rollout(trainer, agent_state, key):
    """One deterministic-actor episode. -> actions (T,), rewards (T,), alive (T,)."""
    env, agent = trainer.env, trainer.agent

    def body(carry, _):
        state, alive = carry
        action = agent.policy(agent_state, state.obs)
        next_state = env.step(state, action)
        return (next_state, alive * (1.0 - next_state.terminated)), (action[0], next_state.reward, alive)

    _, out = jax.lax.scan(body, (env.reset(key), jnp.ones(())), None, length=env.episode_length)
    return out


def gradient_diagnosis(trainer, ts, key) -> dict:
    """∇ₐQ₁ and the action-gradient targets at a = π(s) on buffer states of one seed's TrainState."""
    agent = trainer.agent
    k_batch, k_target = jax.random.split(key)
    obs = replay.sample(ts.buffer, k_batch, STATES).obs
    state = ts.agent
    obs_in = agent.obs_input(state, obs)
    action = agent.pi(state.actor_params, obs_in)                                    # (B, 1)
    q_single = agent.q_fns[0]
    critic_1 = jax.tree.map(lambda x: x[0], state.critic_params)                    # the actor's critic
    grad_q = jax.vmap(jax.grad(lambda o, a: q_single(critic_1, o, a), argnums=1))(obs_in, action)  # (B, 1)
    targets = {"true dynamics": dataclasses.replace(agent, config=agent.config.replace(model="oracle"))}
    if agent.model is not None and agent.config.model == "learned":
        targets["learned model"] = agent

    def target_grad(a):
        fn = a.imagined_target_fn(state, ts.model, obs, k_target, ts.reward_model)
        return jax.grad(lambda x: jnp.sum(fn(x)))(action)  # rows are independent: ∇ of the sum is per row
    grad_y = {name: target_grad(a) for name, a in targets.items()}
    saturated = jnp.abs(action[:, 0]) > SATURATED
    n_sat = jnp.sum(saturated)
    outward = lambda g: jnp.sum(saturated & (jnp.sign(g[:, 0]) == jnp.sign(action[:, 0]))) / jnp.maximum(n_sat, 1)
    mean_abs = lambda g: jnp.sum(jnp.where(saturated, jnp.abs(g[:, 0]), 0.0)) / jnp.maximum(n_sat, 1)
    out = dict(frac_states_saturated=n_sat / STATES, grad_q_outward=outward(grad_q), grad_q_abs=mean_abs(grad_q))
    for name, g in grad_y.items():
        tag = name.replace(" ", "_")
        out[f"target_grad_outward_{tag}"] = outward(g)
        out[f"target_grad_abs_{tag}"] = mean_abs(g)
    return out


def analyse(run_dir: Path) -> dict:
    loaded = trained.load_seeds(run_dir)
    trainer, seeds = loaded.trainer, []
    for i, ts in enumerate(loaded.states):
        actions, rewards, alive = map(np.asarray, jax.jit(lambda s, k: rollout(trainer, s, k))(
            ts.agent, jax.random.PRNGKey(7)))
        diag = jax.jit(lambda s, k: gradient_diagnosis(trainer, s, k))(ts, jax.random.PRNGKey(100 + i))
        seeds.append(dict(seed=i, episode_return=float((rewards * alive).sum()), **action_stats(actions, alive),
                          **{k: float(v) for k, v in diag.items()}))
    config = loaded.run.config
    return dict(run=str(run_dir), algo=config.algo, reward=config.reward, env_step=loaded.env_step, seeds=seeds)


def table(results: list[dict]) -> str:
    cols = [("episode_return", "episode return", ".0f"), ("frac_saturated", "episode: |a|>0.99", ".2f"),
            ("frac_states_saturated", "buffer: |π(s)|>0.99", ".2f"), ("grad_q_outward", "∇ₐQ outward", ".2f"),
            ("target_grad_outward_true_dynamics", "∇ₐy outward (true s')", ".2f"),
            ("target_grad_outward_learned_model", "∇ₐy outward (model s')", ".2f")]
    lines = ["Per seed: " + "; ".join(label for _, label, _ in cols) + " (outward fractions over the saturated states)",
             "", "| run | env steps | seed | " + " | ".join(label for _, label, _ in cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    for r in results:
        for s in r["seeds"]:
            cells = [format(s[k], f) if k in s else "–" for k, _, f in cols]
            lines.append(f"| {r['algo']} ({r['reward']} reward) | {r['env_step']} | {s['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, nargs="+", help="finished run directories (default: those of "
                                                         "Fig. 2's CartPole runs and Fig. 4's learned reward that exist)")
    p.add_argument("--out", type=Path, default=RESULTS / "cartpole_saturation")
    args = p.parse_args(argv)
    runs = args.runs or [d for d in DEFAULT_RUNS if (d / "config.json").exists()]
    missing = [str(d) for d in (args.runs or DEFAULT_RUNS) if not (d / "config.json").exists()]
    if not runs or (args.runs and missing):
        p.error("no run in: " + ", ".join(missing) + " (run the figures first)")
    for d in missing:
        print(f"not run yet, left out: {d}")
    try:
        results = [analyse(d) for d in runs]
    except trained.RunDirectoryError as e:  # no checkpoint, another run's, or a run in progress
        p.error(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
