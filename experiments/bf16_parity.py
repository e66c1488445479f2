"""Learning parity of bf16 matrix products: MAGE-TD3 on Pendulum, `--precision bf16` against f32.

Issue "Mixed precision that pays", item 3: bf16 becomes a default only where learning parity
holds. Both conditions are Fig. 2's MAGE-TD3 on Pendulum at the cpu preset (critic 2×64, batch
128; the rest the paper's, λ = 0.2) except for `precision`; the f32 one IS Fig. 2's run, copied
when Fig. 2 has finished it (`conditions.adopt_finished_twin`).

--scale cpu:   10,000 env steps, evaluation every 500 (10 episodes), 5 seeds (Fig. 2's
               cpu schedule).
--scale paper: the paper's Pendulum sizes (critic 2×384, batch 512), the same schedule.
--scale tiny:  seconds, for tests.

Checks (fixed before the runs): parity holds for the final return and for the AUC when each
precision's IQM lies inside the other's 95% stratified-bootstrap interval; P(bf16 > f32) is
printed beside it.

    python experiments/bf16_parity.py --scale cpu
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from magejax.experiments import checks, figures as fig
from magejax.experiments import conditions as ex

PRECISIONS = ("f32", "bf16")
LAM = 0.2  # Fig. 2's


def config(scale: str, precision: str):
    schedule = ex.cpu_learning_schedule("pendulum")
    if scale == "paper":
        return ex.scaled_config(scale, "pendulum", "mage", lam=LAM, precision=precision, **schedule)
    return ex.scaled_config(scale, "pendulum", "mage", cpu=schedule, lam=LAM, precision=precision)


def conditions(scale: str) -> list[ex.Condition]:
    return [ex.Condition(f"pendulum/mage-{p}", f"MAGE-TD3, {p}", "pendulum", partial(config, scale, p))
            for p in PRECISIONS]


def bars(summaries: dict, scale: str) -> list[checks.Bar]:
    out = []
    for which in ("final", "auc"):
        claim = f"bf16 parity [{scale}]: MAGE-TD3 bf16 learns as f32 on Pendulum ({which} return)"
        a, b = (checks.stat(summaries, f"pendulum/mage-{p}", which=which) for p in PRECISIONS)
        if a is None or b is None:
            out.append(checks.Bar(claim, None, "not run: pendulum/mage-f32 or pendulum/mage-bf16"))
            continue
        detail = f"bf16 {checks.fmt(b)} vs f32 {checks.fmt(a)}; holds = each IQM inside the other's 95% bootstrap CI"
        out.append(checks.Bar(claim, checks.iqms_overlap(a, b), detail))
        versus = checks.compare_bar(f"bf16 vs f32 [{scale}] ({which})", summaries, "pendulum/mage-bf16",
                                 "pendulum/mage-f32", which=which, what=f"{which} return")
        out.append(dataclasses.replace(versus, info=True))  # P(bf16 > f32), reported, not a verdict
    return out


FIGURE = fig.Figure(name="bf16_parity", title="bf16 parity: MAGE-TD3 on Pendulum, bf16 vs f32 matrix products",
                    conditions=conditions, seeds={"tiny": 2, "cpu": ex.CPU_LEARNING_SEEDS, "paper": 5}, bars=bars)


def main(argv=None) -> dict:
    return fig.run_figure(FIGURE, argv, results=Path(__file__).resolve().parent / "results")


if __name__ == "__main__":
    main()
