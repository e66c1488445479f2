"""Fig. 5 (Appendix B.1) — MAGE-DDPG without the TD term (λ = 0) collapses to ∇ₐQ̂ ≈ 0.

Paper: Pendulum, MAGE-DDPG (one critic, no target-policy smoothing, no actor delay), the true
differentiable dynamics in place of the model ("oracle"), λ = 0 against the full method's
settings; ‖∇ₐQ̂‖ "rapidly" goes to ≈ 0. The text gives neither the run length nor the number of
runs; we use 10,000 env steps and 5 seeds at paper scale, evaluation every 250 steps.
The plotted quantity is `q_action_grad_norm`: the mean over each chunk's actor steps of the
batch mean of ‖∇ₐQ̂(s, π(s))‖₂ on replay states.

--scale paper: MAGE-DDPG, λ ∈ {0, 0.05}, paper Pendulum sizes, oracle model, 10,000 steps.
--scale cpu:   the same two runs with 3000 env steps, evaluation every 100,
               3 seeds, actor and critic 2×64, batch 128 (paper: actor 2×128, critic 2×384,
               batch 512).
--scale tiny:  seconds, for tests.

Bar (issue 7): with λ = 0 the final mean ‖∇ₐQ̂‖ is below 1 % of its λ = 0.05 value.

    python experiments/fig5_lambda_zero.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

LAMS = (0.0, 0.05)
CPU_STEPS, CPU_EVAL_EVERY = 3_000, 100
FRACTION = 0.01


def config(scale: str, lam: float):
    if scale == "paper":
        return ex.scaled_config(scale, "pendulum", "mage-ddpg", total_steps=10_000, eval_every=250,
                                lam=lam, model="oracle")
    return ex.scaled_config(scale, "pendulum", "mage-ddpg", cpu=dict(total_steps=CPU_STEPS, eval_every=CPU_EVAL_EVERY),
                            lam=lam, model="oracle")


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"pendulum/lam{lam:g}", f"MAGE-DDPG, λ = {lam:g}", "pendulum", partial(config, scale, lam))
            for lam in LAMS]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    return [checks.ratio_bar(f"Fig. 5 pendulum [{scale}] (issue 7): ‖∇ₐQ‖ with λ = 0 below {FRACTION:.0%} of λ = 0.05's",
                          summaries, "pendulum/lam0", "pendulum/lam0.05", 1 / FRACTION,
                          metric="q_action_grad_norm")]


FIGURE = fig.Figure(name="fig5_lambda_zero", title="Fig. 5: MAGE-DDPG action-gradient norm, λ = 0 vs 0.05",
                    conditions=conditions, seeds={"tiny": 2, "cpu": 3, "paper": 5}, bars=bars,
                    plots=(fig.Plot("q_action_grad_norm", "mean ‖∇ₐQ(s, π(s))‖", "log"), fig.Plot()),
                    metrics=("q_action_grad_norm",))


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
