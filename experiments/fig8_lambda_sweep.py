"""Fig. 8 (Appendix B.4) — MAGE-TD3's robustness to λ: λ ∈ {0.05, 0.1, 0.2, 1} vs Dyna-TD3.

Paper: HalfCheetah, MAGE-TD3 with four values of λ (the weight of the TD term) against Dyna-TD3
(which has no λ); 1e5 steps, 5 seeds; the figure plots the median return. Claim: MAGE beats
Dyna-TD3 for every λ.

--scale paper: exactly that, on HalfCheetah.
--scale cpu:   Pendulum instead of HalfCheetah, at the `cpu` preset (configs.preset(env, algo,
               "cpu")); Fig. 2's cpu schedule: 10,000 env steps, evaluation every 500 (10 episodes),
               5 seeds. λ = 0.2 and Dyna-TD3 are then Fig. 2's Pendulum runs: a finished Fig. 2
               is copied, not rerun (`conditions.adopt_finished_twin`).
--scale tiny:  seconds, for tests.

The four λ values differ only in a traced hyper-parameter, so they train as ONE compiled program
(values × seeds vmapped: `figures.program_groups`, `driver.run_sweep`); Dyna-TD3 is a second one.
`--one-program-per-condition` compiles each on its own (to measure what sharing saves).

We plot the IQM and its 95% bootstrap band like the other figures (the paper's Fig. 8 shows
medians). Check (the paper's claim; the issue sets no bar): MAGE-TD3's AUC IQM ≥ Dyna-TD3's for
every λ.

    python experiments/fig8_lambda_sweep.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

LAMS = (0.05, 0.1, 0.2, 1.0)
ENV = {"tiny": "pendulum", "cpu": "pendulum", "paper": "halfcheetah"}


def config(scale: str, algo: str, lam: float):
    if scale == "paper":
        return ex.scaled_config(scale, ENV[scale], algo, total_steps=100_000, eval_every=1_000, lam=lam)
    return ex.scaled_config(scale, ENV[scale], algo, cpu=ex.cpu_learning_schedule(ENV[scale]), lam=lam)


def conditions(scale: str) -> list[ex.Condition]:
    env = ENV[scale]
    mage = [ex.Condition(f"{env}/mage-lam{lam:g}", f"MAGE-TD3, λ = {lam:g}", env, partial(config, scale, "mage", lam))
            for lam in LAMS]
    # Dyna-TD3's loss has no λ: one run (its config keeps the default λ, which it never reads).
    return mage + [ex.Condition(f"{env}/dyna", "Dyna-TD3", env, partial(config, scale, "dyna", 0.2))]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    env = ENV[scale]
    return [checks.compare_bar(f"Fig. 8 {env} [{scale}] (paper's claim, no issue bar): MAGE-TD3 λ = {lam:g} AUC >= Dyna-TD3 AUC",
                            summaries, f"{env}/mage-lam{lam:g}", f"{env}/dyna") for lam in LAMS]


FIGURE = fig.Figure(name="fig8_lambda_sweep", title="Fig. 8: MAGE-TD3 for λ in {0.05, 0.1, 0.2, 1} vs Dyna-TD3",
                    conditions=conditions, seeds={"tiny": 2, "cpu": ex.CPU_LEARNING_SEEDS, "paper": 5}, bars=bars)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
