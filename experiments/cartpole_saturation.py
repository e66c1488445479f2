"""Diagnosis of the CartPole anomaly in Fig. 4: why MAGE-TD3's per-seed returns coincide across
reward models and λ.

At cpu scale (1000 env steps), MAGE-TD3's final CartPole swing-up returns of each seed agree to
about 1e-4 between the true and the learned reward (Fig. 4), and between λ = 0.05 and 0.2 (the
MAAC comparison). This script retrains the Fig. 4 cpu configuration for those conditions with the
same seed keys. Then it rolls out each seed's final deterministic actor for one episode from a fixed
initial state and reports:

* the episode length and return;
* the fraction of steps with |a| > 0.99;
* the mean action and the number of sign changes of the action;
* the cart position where the episode ends (it terminates when |x| > 2.4).

A saturated actor (|a| = 1 at every step, one sign) turns every run into the same bang-bang
action sequence. Its return then depends only on the seed's initial state and the sign, not on
the critic that trained it.

    python experiments/cartpole_saturation.py --seeds 5
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fig4_learned_reward  # noqa: E402  (the Fig. 4 configuration, unchanged)

from magejax.experiments.conditions import CPU_LEARNING_STEPS  # noqa: E402
from magejax.train import make_train  # noqa: E402

CONDITIONS = {
    "true reward, λ 0.05": dict(reward="true"),
    "learned reward, λ 0.05": dict(reward="learned"),
    "true reward, λ 0.2": dict(reward="true", lam=0.2),
}
SATURATED = 0.99


def action_stats(actions: np.ndarray, alive: np.ndarray) -> dict:
    """Statistics of one episode's 1-D actions. actions: (T,), alive: (T,) 1 before termination."""
    n = int(alive.sum())
    a = actions[:n]
    return dict(length=n, frac_saturated=float(np.mean(np.abs(a) > SATURATED)) if n else float("nan"),
                mean_action=float(a.mean()) if n else float("nan"),
                sign_changes=int(np.sum(np.diff(np.sign(a)) != 0)))


def rollout(trainer, agent_state, key):
    """One deterministic-actor episode. -> actions (T,), obs (T, 5), rewards (T,), alive (T,)."""
    env, agent = trainer.env, trainer.agent

    def body(carry, _):
        state, alive = carry
        action = agent.policy(agent_state, state.obs)
        next_state = env.step(state, action)
        return (next_state, alive * (1.0 - next_state.terminated)), (action[0], next_state.obs, next_state.reward,
                                                                     alive)

    _, out = jax.lax.scan(body, (env.reset(key), jnp.ones(())), None, length=env.episode_length)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=CPU_LEARNING_STEPS["cartpole_swingup"])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cartpole_saturation"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, overrides in CONDITIONS.items():
        config = fig4_learned_reward.config("cpu", "cartpole_swingup", "mage", overrides["reward"])
        config = config.replace(total_steps=args.steps, **{k: v for k, v in overrides.items() if k != "reward"})
        trainer = make_train(config)
        # The experiment runner's seed keys (experiment.run_condition with base_seed 0).
        keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
        states, rows = jax.jit(jax.vmap(trainer.train))(keys)
        episode_keys = jax.random.split(jax.random.PRNGKey(7), args.seeds)
        actions, obs, rewards, alive = map(np.asarray, jax.jit(jax.vmap(lambda a, k: rollout(trainer, a, k)))(
            states.agent, episode_keys))
        per_seed = []
        for i in range(args.seeds):
            stats = action_stats(actions[i], alive[i])
            n = stats["length"]
            per_seed.append(dict(seed=i, final_eval_return=float(rows["eval_return"][i, -1]),
                                 episode_return=float((rewards[i] * alive[i]).sum()),
                                 final_x=float(obs[i, n - 1, 0]), **stats))
            print(f"{name:<24} seed {i}: " + ", ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in per_seed[-1].items() if k != "seed"), flush=True)
        results[name] = per_seed
    (out / "results.json").write_text(json.dumps(dict(steps=args.steps, seeds=args.seeds, results=results),
                                                 indent=1))
    print(f"written: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
