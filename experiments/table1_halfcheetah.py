"""Table 1 (Appendix B.5) — asymptotic performance on HalfCheetah: MAGE-TD3, Dyna-TD3, TD3.

Paper: the TD3 paper's protocol — for each trial the maximum over training of the evaluation
return, then mean ± standard deviation over trials. MAGE-TD3 and Dyna-TD3 3e6 env steps and 5
trials, TD3 1e7 steps and 10 trials. Reported: MAGE-TD3 9660.79 ± 2821.31, Dyna-TD3
8372.76 ± 1859.73, TD3 9636.95 ± 859.07. Claim: MAGE-TD3 matches TD3's asymptote in under a
third of the steps; Dyna-TD3 does not. λ = 0.05 (the paper's value outside Fig. 2). The text
does not give the replay buffer size; we keep the last 1e6 transitions (TD3's default).

--scale paper: exactly that (evaluation every 1000 steps on 10 episodes).
--scale cpu:   NOT an asymptote: a short run of 3000 env steps (1000 of them random
               warm-up, as in the paper), evaluation every 500 steps on
               5 episodes (paper 10), 2 trials for every algorithm, actor and
               critic 2×64, batch 128, model 8 × 2×64 (paper: actor 2×384, critic 2×384,
               batch 1024, model 8 × 4×512). It checks that the pipeline runs on HalfCheetah and
               reports the same statistic; its numbers are not comparable to the paper's.
--scale tiny:  seconds, for tests.

No pass/fail bar: the script prints the table beside the paper's.

    python experiments/table1_halfcheetah.py --scale cpu
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

ALGOS = {"mage": "MAGE-TD3", "dyna": "Dyna-TD3", "td3": "TD3"}
PAPER = {"mage": (9660.79, 2821.31, "3e6 steps, 5 trials"), "dyna": (8372.76, 1859.73, "3e6 steps, 5 trials"),
         "td3": (9636.95, 859.07, "1e7 steps, 10 trials")}
PAPER_STEPS = {"mage": 3_000_000, "dyna": 3_000_000, "td3": 10_000_000}
CPU_STEPS, CPU_EVAL_EVERY, CPU_EVAL_EPISODES = 3_000, 500, 5
LAM = 0.05


def config(scale: str, algo: str):
    if scale == "paper":
        return ex.scaled_config(scale, "halfcheetah", algo, total_steps=PAPER_STEPS[algo], eval_every=1_000,
                                buffer_size=1_000_000, lam=LAM)
    return ex.scaled_config(scale, "halfcheetah", algo, cpu=dict(total_steps=CPU_STEPS, eval_every=CPU_EVAL_EVERY,
                                                                 eval_episodes=CPU_EVAL_EPISODES), lam=LAM)


def conditions(scale: str) -> list[ex.Condition]:
    # The paper ran TD3 for 10 trials, the model-based algorithms for 5.
    seeds = {"td3": 10} if scale == "paper" else {}
    return [ex.Condition(f"halfcheetah/{algo}", label, "halfcheetah", partial(config, scale, algo), seeds.get(algo))
            for algo, label in ALGOS.items()]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    """No pass/fail: one informational line per algorithm, ours beside the paper's."""
    out = []
    for algo, label in ALGOS.items():
        s = checks.stat(summaries, f"halfcheetah/{algo}", which="max")
        mean, std, setting = PAPER[algo]
        paper = f"paper {mean:.2f} ± {std:.2f} ({setting})"
        if s is None:
            out.append(checks.Bar(f"Table 1 {label} [{scale}]", None, f"not run; {paper}", info=True))
            continue
        seeds = summaries[f"halfcheetah/{algo}"]["seeds"]
        steps = summaries[f"halfcheetah/{algo}"]["env_steps"]
        ours = "n/a" if s["mean"] is None else f"{s['mean']:.2f} ± {(s['std'] or 0.0):.2f}"
        note = "" if scale == "paper" else " — a short run, NOT an asymptote"
        out.append(checks.Bar(f"Table 1 {label} [{scale}]", None,
                           f"max average return {ours} ({steps} steps, {seeds} trials){note}; {paper}", info=True))
    return out


FIGURE = fig.Figure(name="table1_halfcheetah", title="Table 1: maximum average return on HalfCheetah",
                    conditions=conditions, seeds={"tiny": 2, "cpu": 2, "paper": 5}, bars=bars)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
