"""Fig. 3 — how well the critic's action-gradient matches the true one: MAGE vs TD critic.

Paper (Section 4.2, Appendix D.2): Pendulum, the true differentiable dynamics in place of the
model ("oracle"), a fixed random policy (the actor is never updated), 200 initial random
transitions, then the algorithms' standard critic training; every 10 env steps the error
`(1/H) Σ_t γ^t ‖∇ₐG(s_t, a_t) − ∇ₐQ̂(s_t, a_t)‖₁` (Eq. 14, `magejax.analysis.grad_error`), averaged
over 10 evaluation episodes; 4 runs; log scale. λ = 0.05 (the paper's value outside Fig. 2).
Claim: the MAGE critic's error is far below the TD (Dyna-TD3) critic's.

Q̂ is the first of the twin critics (see `grad_error.critic_probe`). The paper's text does not
give the run length; we use 5000 env steps at paper scale.

--scale paper: Pendulum as above (5000 steps, evaluation every 10), plus HalfCheetah, Hopper and
               Walker2d (Brax, their `true_next_obs`), evaluated every 100 steps because each
               evaluation differentiates ten 1000-step episodes through the simulator.
--scale cpu:   Pendulum only, at the `cpu` preset (critic 2×64 and batch 128; paper: 2×384,
               512; actor 2×128, at its random initialisation either way); 10,000 env steps,
               evaluation every 100 steps (10 episodes), 5 seeds; long enough to see whether the
               errors settle: the ratio of the two errors is reported along the run.
--scale tiny:  seconds, for tests (`configs.TINY`, Pendulum).

Bar (issue 7): on Pendulum the MAGE critic's final error is at least 5× below the TD critic's;
an information line gives the ratio TD / MAGE error (IQMs over seeds) at ten points of the run.

    python experiments/fig3_action_gradient_error.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex
from magejax.analysis import grad_error

ALGOS = {"mage": "MAGE critic", "dyna": "TD critic (Dyna-TD3)"}
ENVS = {"tiny": ("pendulum",), "cpu": ("pendulum",),
        "paper": ("pendulum", "halfcheetah", "hopper", "walker2d")}
CPU_STEPS, CPU_EVAL_EVERY = 10_000, 100
FACTOR = 5.0
# The study's protocol, at every scale: oracle dynamics, frozen random actor, 200 random steps.
PROTOCOL = dict(model="oracle", train_actor=False, lam=0.05)


def config(scale: str, env: str, algo: str):
    if scale == "paper":
        every = 10 if env == "pendulum" else 100
        return ex.scaled_config(scale, env, algo, total_steps=5_000, eval_every=every, warmup_steps=200,
                                **PROTOCOL)
    if scale == "tiny":
        return ex.scaled_config(scale, env, algo, **PROTOCOL)
    return ex.scaled_config(scale, env, algo, cpu=dict(total_steps=CPU_STEPS, eval_every=CPU_EVAL_EVERY,
                                                       warmup_steps=200), **PROTOCOL)


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"{env}/{algo}", label, env, partial(config, scale, env, algo))
            for env in ENVS[scale] for algo, label in ALGOS.items()]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    out = [checks.ratio_bar(f"Fig. 3 pendulum [{scale}] (issue 7): TD critic's error >= {FACTOR:g} x MAGE critic's",
                         summaries, "pendulum/mage", "pendulum/dyna", FACTOR, metric="action_grad_error"),
           checks.ratio_over_time(f"Fig. 3 pendulum [{scale}]: the error ratio along the run", summaries,
                               "pendulum/mage", "pendulum/dyna", metric="action_grad_error")]
    for env in ENVS[scale][1:]:
        out.append(checks.ratio_bar(f"Fig. 3 {env} [{scale}] (paper's claim, beyond Pendulum): TD error >= MAGE error",
                                 summaries, f"{env}/mage", f"{env}/dyna", 1.0, metric="action_grad_error"))
    return out


FIGURE = fig.Figure(name="fig3_action_gradient_error",
                    title="Fig. 3: critic action-gradient error with oracle dynamics, MAGE vs TD",
                    conditions=conditions, seeds={"tiny": 2, "cpu": ex.CPU_LEARNING_SEEDS, "paper": 4}, bars=bars,
                    plots=(fig.Plot("action_grad_error", "action-gradient error (Eq. 14)", "log"),),
                    metrics=("action_grad_error",), probe=grad_error.critic_probe)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
