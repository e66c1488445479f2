"""Fig. 2 — sample efficiency: MAGE-TD3 vs Dyna-TD3 vs TD3 vs TD3-UTD.

Paper (Section 4.1, Appendix D.2): the first 1e5 env steps on Pendulum, CartPole, HalfCheetah,
Hopper, Walker2d, Ant, Pusher and Swimmer; λ = 0.2; evaluation every 1000 steps on 10
deterministic episodes; 5 seeds; mean and 95% confidence band. Claim: MAGE-TD3 learns at least
as fast as every baseline on every environment.

--scale paper: exactly that (`configs.preset(env, algo)`, 1e5 steps). The Brax environments
               must be registered in `magejax.envs` (not yet the case for all at the time of
               writing: a condition whose env is missing fails at its config).
--scale cpu:   Pendulum and CartPole swing-up only; 1000 env steps instead of 1e5;
               evaluation every 100 steps (10 episodes); 3 seeds instead of 5; actor
               and critic 2×64 and batch 128 (paper: actor 2×128, critic 2×384, batch 512);
               model 8 × 2×64 (paper 8 × 2×128). The rest is the paper's: 10 updates per env
               step (TD3: 1), model trained every 25 steps on 120 batches of 256, 100 warm-up
               steps, λ = 0.2, RAdam 1e-4. Cost basis: experiments/README.md.
--scale tiny:  seconds, for tests: `configs.TINY` on Pendulum and CartPole swing-up.

Bars: the issue's — at cpu scale MAGE-TD3's AUC ≥ Dyna-TD3's on Pendulum and on CartPole
swing-up; and the paper's claim against TD3 and TD3-UTD, printed alongside.

    python experiments/fig2_sample_efficiency.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import conditions as ex
from magejax.experiments import figures as fig

ALGOS = ("mage", "dyna", "td3", "td3-utd")
LABELS = {"mage": "MAGE-TD3", "dyna": "Dyna-TD3", "td3": "TD3", "td3-utd": "TD3-UTD"}
ENVS = {
    "tiny": ("pendulum", "cartpole_swingup"),
    "cpu": ("pendulum", "cartpole_swingup"),
    "paper": ("pendulum", "cartpole_swingup", "halfcheetah", "hopper", "walker2d", "ant", "pusher",
              "swimmer"),
}
CPU_STEPS, CPU_EVAL_EVERY = 1_000, 100
LAM = 0.2  # the paper's value for this figure (0.05 elsewhere)


def config(scale: str, env: str, algo: str):
    if scale == "paper":
        return ex.scaled_config(scale, env, algo, total_steps=100_000, eval_every=1_000, lam=LAM)
    return ex.scaled_config(scale, env, algo, cpu=dict(total_steps=CPU_STEPS, eval_every=CPU_EVAL_EVERY),
                            lam=LAM)


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"{env}/{algo}", LABELS[algo], env, partial(config, scale, env, algo))
            for env in ENVS[scale] for algo in ALGOS]


def bars(summaries: dict, scale: str) -> list[fig.Bar]:
    out = []
    for env in ENVS[scale]:
        out.append(fig.compare_bar(f"Fig. 2 {env} [{scale}] (issue 7): MAGE-TD3 AUC >= Dyna-TD3 AUC",
                                   summaries, f"{env}/mage", f"{env}/dyna"))
        for base in ("td3", "td3-utd"):
            out.append(fig.compare_bar(f"Fig. 2 {env} [{scale}] (paper's claim): MAGE-TD3 AUC >= {LABELS[base]} AUC",
                                       summaries, f"{env}/mage", f"{env}/{base}"))
    return out


FIGURE = fig.Figure(name="fig2_sample_efficiency",
                    title="Fig. 2: sample efficiency, MAGE-TD3 vs Dyna-TD3, TD3, TD3-UTD",
                    conditions=conditions, seeds={"tiny": 2, "cpu": 3, "paper": 5}, bars=bars)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
