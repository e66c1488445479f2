"""Fig. 4 / Fig. 6 — MAGE with a learned reward r̂(s, a, s') in place of the true one.

Paper (Section 4.2, Appendix B.2): Fig. 4 is Pusher, MAGE-TD3 with the true vs a learned reward
(MLP 3×256 swish, MSE on the observed rewards; 1×128 for Pendulum and CartPole); Fig. 6 repeats
it on every environment for MAGE-TD3 and Dyna-TD3. 1e5 env steps, 5 seeds, λ = 0.05.
Claim: with a learned reward MAGE loses little.

--scale paper: Fig. 6 — the Fig. 2 environments × {MAGE-TD3, Dyna-TD3} × {true, learned}.
--scale cpu:   MAGE-TD3 only, on Pendulum and CartPole swing-up, true vs learned reward, at the
               `cpu` preset (critic 2×64, batch 128; the rest the paper's) with Fig. 2's cpu
               schedule: 10,000 env steps on Pendulum, 20,000 on CartPole swing-up, evaluation
               every 500 (10 episodes), 5 seeds; the reward network is the paper's 1×128.
--scale tiny:  seconds, for tests.

No pass/fail bar is set by the issue; the script prints the learned-reward run's AUC
and final return next to the true-reward run's, and whether they are within each other's 95%
confidence intervals ("loses little" made checkable, not tuned).

    python experiments/fig4_learned_reward.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

ENVS = {"tiny": ("pendulum",), "cpu": ("pendulum", "cartpole_swingup"),
        "paper": ("pendulum", "cartpole_swingup", "halfcheetah", "hopper", "walker2d", "ant", "pusher",
                  "swimmer")}
ALGOS = {"tiny": ("mage",), "cpu": ("mage",), "paper": ("mage", "dyna")}
LABELS = {"mage": "MAGE-TD3", "dyna": "Dyna-TD3"}
REWARDS = ("true", "learned")
LAM = 0.05


def config(scale: str, env: str, algo: str, reward: str):
    if scale == "paper":
        return ex.scaled_config(scale, env, algo, total_steps=100_000, eval_every=1_000, lam=LAM, reward=reward)
    return ex.scaled_config(scale, env, algo, cpu=ex.cpu_learning_schedule(env), lam=LAM, reward=reward)


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"{env}/{algo}-{reward}", f"{LABELS[algo]}, {reward} reward", env,
                         partial(config, scale, env, algo, reward))
            for env in ENVS[scale] for algo in ALGOS[scale] for reward in REWARDS]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    out = []
    for env in ENVS[scale]:
        for algo in ALGOS[scale]:
            true, learned = f"{env}/{algo}-true", f"{env}/{algo}-learned"
            claim = f"Fig. 4 {env} [{scale}] (paper's claim, no issue bar): {LABELS[algo]} loses little with a learned reward"
            for which in ("auc", "final"):
                a, b = checks.stat(summaries, true, which=which), checks.stat(summaries, learned, which=which)
                if a is None or b is None:
                    out.append(checks.Bar(f"{claim} ({which})", None, f"not run: {true} or {learned}"))
                    continue
                holds = checks.iqms_overlap(a, b)
                out.append(checks.Bar(f"{claim} ({which})", holds,
                                   f"{which} return: learned {checks.fmt(b)} vs true {checks.fmt(a)}; "
                                   f"holds = each IQM inside the other's 95% bootstrap CI"))
    return out


FIGURE = fig.Figure(name="fig4_learned_reward", title="Fig. 4/6: MAGE with a learned reward",
                    conditions=conditions, seeds={"tiny": 2, "cpu": ex.CPU_LEARNING_SEEDS, "paper": 5}, bars=bars)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
