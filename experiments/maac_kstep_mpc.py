"""MAAC vs MAGE-TD3 vs k-step MAGE (k = 3), and test-time MPC at the end of training.

Not a figure of the MAGE paper: the comparison the reviewers asked for (`../shared/mage-notes.md`)
and MAAC's §5.4 planner. MAAC (Clavera et al., ICLR 2020) trains a stochastic policy through H
model steps; MAGE-k trains the critic on the action-gradient of a k-step model target; both are
judged with the same loop, model, buffer and evaluation. At the end of training each condition's
final state is evaluated twice on the same initial states: with its deterministic actor and with
the CEM planner over its learned model, seeded by the actor, min Q as terminal value
(`planning.py`, `--eval-mpc`).

--scale paper: Pendulum and CartPole swing-up, 5 seeds, 1e5 env steps, evaluation every 1000 on
               10 episodes; the paper's sizes (MAAC: the library's `_MAAC` preset, H = 3);
               λ = 0.2 (the paper's Fig. 2 value); MPC at the end on 10 episodes.
--scale cpu:   the same conditions, 5 seeds, 1000 env steps, evaluation every 100 on 10
               episodes; actor and critic 2×64, batch 128, model 8 × 2×64 (the cpu scale of
               every script); MPC and the paired actor evaluation on 4 episodes per seed.
--scale tiny:  seconds, for tests.

No bar is set by the issue: the script prints each algorithm's AUC and final return and, per
condition, the MPC return beside the actor's on the same episodes (paired difference, 95% CI).

    python experiments/maac_kstep_mpc.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

ENVS = {"tiny": ("pendulum",), "cpu": ("pendulum", "cartpole_swingup"), "paper": ("pendulum", "cartpole_swingup")}
# name -> (algo, horizon, label); MAAC's horizon is its preset's (H = 3).
ALGOS = {"maac": ("maac", None, "MAAC (H = 3)"), "mage": ("mage", 1, "MAGE-TD3"),
         "mage-k3": ("mage", 3, "MAGE-TD3, k = 3")}
CPU_STEPS, CPU_EVAL_EVERY = 1_000, 100
MPC_EPISODES = {"tiny": 2, "cpu": 4, "paper": 10}


def config(scale: str, env: str, name: str):
    algo, horizon, _ = ALGOS[name]
    extra = {} if horizon is None else dict(horizon=horizon)
    if scale == "paper":
        return ex.scaled_config(scale, env, algo, total_steps=100_000, eval_every=1_000, **extra)
    return ex.scaled_config(scale, env, algo, cpu=dict(total_steps=CPU_STEPS, eval_every=CPU_EVAL_EVERY), **extra)


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"{env}/{name}", label, env, partial(config, scale, env, name))
            for env in ENVS[scale] for name, (_, _, label) in ALGOS.items()]


def mpc_probe(episodes: int, trainer):
    """(state, key) -> actor_return, mpc_return and their difference, means over `episodes`.

    A second trainer built with eval_mpc=True evaluates the trained state with the planner; both
    evaluations reset from the same keys, so each episode pair starts from the same state."""
    from magejax.train import make_train

    c = trainer.config
    actor = make_train(c.replace(eval_episodes=episodes))
    mpc = make_train(c.replace(eval_episodes=episodes, eval_mpc=True))

    def probe(state, key):
        a, m = actor.evaluate(state, key), mpc.evaluate(state, key)
        return {"actor_return": a.mean(), "mpc_return": m.mean(), "mpc_minus_actor": (m - a).mean()}

    return probe


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    out = []
    for env in ENVS[scale]:
        for which in ("auc", "final"):
            stats = {name: checks.stat(summaries, f"{env}/{name}", which=which) for name in ALGOS}
            if any(s is None for s in stats.values()):
                missing = [f"{env}/{n}" for n, s in stats.items() if s is None]
                out.append(checks.Bar(f"{env} [{scale}] {which} return", None, f"not run: {', '.join(missing)}", info=True))
                continue
            ranked = sorted(stats, key=lambda n: -np.inf if stats[n]["mean"] is None else stats[n]["mean"],
                            reverse=True)
            out.append(checks.Bar(f"{env} [{scale}] {which} return", None,
                               "; ".join(f"{ALGOS[n][2]} {checks.fmt(stats[n])}" for n in ranked)
                               + " (mean over seeds, 95% CI; best first)", info=True))
        for name in ALGOS:
            final = (summaries.get(f"{env}/{name}") or {}).get("final_probe")
            if final is None:
                out.append(checks.Bar(f"{env}/{name} [{scale}] MPC vs actor at the end", None, "not run", info=True))
                continue
            out.append(checks.Bar(f"{env}/{name} [{scale}] MPC vs actor at the end", None,
                               f"MPC {checks.fmt(final['mpc_return'])}, actor {checks.fmt(final['actor_return'])}, "
                               f"paired MPC − actor {checks.fmt(final['mpc_minus_actor'])}", info=True))
    return out


FIGURE = fig.Figure(name="maac_kstep_mpc", title="MAAC vs MAGE-TD3 vs MAGE-TD3 (k = 3); MPC at the end",
                    conditions=conditions, seeds={"tiny": 2, "cpu": 5, "paper": 5}, bars=bars,
                    final_probe={scale: partial(mpc_probe, n) for scale, n in MPC_EPISODES.items()})


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
