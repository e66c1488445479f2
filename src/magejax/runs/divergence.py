"""Divergence: which seeds of an evaluation row have a non-finite return or loss, in one line."""
from __future__ import annotations

import numpy as np

LOSS_METRICS = ("critic_loss", "actor_loss", "td_error", "model_nll", "model_mse", "reward_mse")
"""The losses, named for a seed whose in-chunk count (`nonfinite_losses`) shows a non-finite one."""
UNCHECKED = ("nonfinite_losses", "train_return")
"""Every other metric of a row is checked. `train_return` is NaN until a seed's first training
episode ends, which with terminations differs from seed to seed: NaN there is not divergence."""


def non_finite(row: dict) -> list[tuple[str, np.ndarray]]:
    """(metric, bad seed indices) for each diverged metric of one evaluation row (name -> (S,))."""
    problems = []
    # Counted inside the jitted loop: the loss means below skip NaN, so a single-seed run or a
    # divergence late in a chunk would otherwise go unseen.
    counted = np.asarray(row["nonfinite_losses"], dtype=np.float64) > 0
    if counted.any():
        problems.append(("loss (nonfinite_losses > 0)", np.flatnonzero(counted)))
    for name in row:
        if name in UNCHECKED:
            continue
        v = np.asarray(row[name], dtype=np.float64)
        if name == "eval_return":
            bad = ~np.isfinite(v)
        else:
            # A loss that is NaN in *every* seed is "no such quantity in this chunk" (model-free
            # algorithm, warm-up, no model-training step): schedules depend on the step only,
            # never on the seed. NaN beside finite values, or ±inf, is divergence.
            bad = np.isinf(v) | (np.isnan(v) & np.isfinite(v).any())
        if bad.any():
            problems.append((name, np.flatnonzero(bad)))
    return problems


def describe(env_step: int, row: dict, problems, uses_model: bool, learns_reward: bool = False) -> str:
    """One line naming the env step, each diverged seed and its non-finite losses.

    uses_model / learns_reward: whether the run trains a dynamics model (not under the oracle)
    and a reward model, i.e. whether the `model_*` and `reward_*` losses are computed at all."""
    counts = np.asarray(row["nonfinite_losses"], dtype=np.float64)
    parts = []
    for seed in sorted({int(s) for _, bad in problems for s in bad}):
        names = [name for name, bad in problems if seed in bad and name in row]
        # A loss NaN in every seed (so not in `problems`) is still named for a seed whose count
        # shows a non-finite loss, unless the algorithm never computes it.
        names += [name for name in LOSS_METRICS if name not in names
                  and (uses_model or not name.startswith("model_"))
                  and (learns_reward or not name.startswith("reward_")) and counts[seed] > 0
                  and not np.isfinite(np.asarray(row[name], dtype=np.float64)[seed])]
        what = ", ".join(names) if names else "loss (which one is not visible: the chunk means skip NaN)"
        count = f" (nonfinite_losses {counts[seed]:.0f} in this chunk)" if counts[seed] > 0 else ""
        parts.append(f"seed {seed}: non-finite {what}{count}")
    return f"training diverged at env step {env_step}: " + "; ".join(parts)
