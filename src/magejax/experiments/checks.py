"""Pass/fail checks of a figure's claims ("BAR" lines), computed from condition summaries
(`analysis.statistics.curve_stats`: IQM over seeds with stratified-bootstrap intervals). Each figure script
states its checks with these before its runs; `figures.finish_figure` prints and saves them.

  compare_bar     X's IQM >= Y's (with the probability of improvement P(X > Y) beside it)
  ratio_bar       Y's IQM >= factor × X's (positive metrics: errors)
  iqms_overlap    each IQM inside the other's 95% interval (parity, "loses little")
  ratio_over_time Y / X IQM at points along the run (information only)
"""
from __future__ import annotations

import dataclasses
import math

from magejax.analysis import statistics


@dataclasses.dataclass(frozen=True)
class Bar:
    """A pass/fail check of a claim: `holds` None when its inputs were not run. `info=True`
    marks a line that only reports numbers (no pass/fail)."""

    claim: str
    holds: bool | None
    detail: str
    info: bool = False

    def line(self) -> str:
        if self.info:
            return f"INFO {self.claim}: {self.detail}"
        verdict = {True: "HOLDS", False: "FAILS", None: "NOT EVALUATED"}[self.holds]
        return f"BAR {self.claim}: {verdict} — {self.detail}"


def fmt(stat: dict) -> str:
    """"IQM (lo .. hi)" of a `curve_stats` entry: interquartile mean over seeds, bootstrap 95% CI."""
    iqm, (lo, hi) = stat["iqm"], stat["iqm_ci95"]
    if iqm is None:
        return "n/a"
    return f"{iqm:.4g} ({lo:.4g} .. {hi:.4g})" if lo is not None else f"{iqm:.4g}"


def stat(summaries: dict, name: str, metric: str = "eval_return", which: str = "auc") -> dict | None:
    """summaries[name]["stats"][metric][which], or None if that condition did not run."""
    s = summaries.get(name)
    return None if s is None else s["stats"][metric][which]


def iqms_overlap(a: dict, b: dict) -> bool:
    """Each `curve_stats` entry's IQM lies inside the other's 95% bootstrap interval: the two
    conditions are statistically indistinguishable at this seed count ("loses little", parity)."""
    if a["iqm"] is None or b["iqm"] is None:
        return False
    (alo, ahi), (blo, bhi) = a["iqm_ci95"], b["iqm_ci95"]
    return None not in (alo, ahi, blo, bhi) and alo <= b["iqm"] <= ahi and blo <= a["iqm"] <= bhi


def compare_bar(claim: str, summaries: dict, better: str, worse: str, *, metric: str = "eval_return",
                which: str = "auc", what: str = "AUC of the evaluation return") -> Bar:
    """Holds if `better`'s IQM over seeds of `which` is >= `worse`'s. The detail gives both IQMs
    with their bootstrap CIs and the probability of improvement P(better > worse) with its CI
    (Agarwal et al. 2021); the verdict uses the IQMs alone (fixed before the runs)."""
    a, b = stat(summaries, better, metric, which), stat(summaries, worse, metric, which)
    if a is None or b is None:
        missing = [n for n, x in ((better, a), (worse, b)) if x is None]
        return Bar(claim, None, f"not run: {', '.join(missing)}")
    if a["iqm"] is None or b["iqm"] is None:
        return Bar(claim, False, f"{what}: non-finite ({better} {fmt(a)}, {worse} {fmt(b)})")
    holds = a["iqm"] >= b["iqm"]
    poi = statistics.probability_of_improvement(a["per_seed"], b["per_seed"])
    return Bar(claim, holds, f"{what}: {better} {fmt(a)} {'>=' if holds else '<'} {worse} {fmt(b)} "
                             f"(IQM over seeds, 95% bootstrap CI); P({better} > {worse}) = {poi['p']:.2f} "
                             f"({poi['ci95'][0]:.2f} .. {poi['ci95'][1]:.2f})")


def threshold_bar(claim: str, summaries: dict, name: str, threshold: float, *, metric: str = "eval_return",
                  which: str = "final") -> Bar:
    """Holds if the MEAN over seeds of `name`'s `which` `metric` is >= `threshold` (a bar stated
    on the mean, e.g. "mean final evaluation return >= -250"); the detail adds the IQM and seeds."""
    a = stat(summaries, name, metric, which)
    if a is None:
        return Bar(claim, None, f"not run: {name}")
    mean = a["mean"]
    holds = mean is not None and math.isfinite(mean) and mean >= threshold
    seeds = ", ".join("n/a" if v is None else f"{v:.4g}" for v in a["per_seed"])
    return Bar(claim, holds, f"{which} {metric}: mean over seeds {'n/a' if mean is None else format(mean, '.4g')} "
                             f"{'>=' if holds else 'not >='} {threshold:g}; IQM {fmt(a)}; per seed {seeds}")


def ratio_over_time(claim: str, summaries: dict, low: str, high: str, *, metric: str, points: int = 10) -> Bar:
    """An information line: `high`'s IQM over seeds divided by `low`'s at up to `points` evaluations
    spread over the run (does a ratio settle, or still move at the end?)."""
    a, b = (summaries.get(n, {}).get("stats", {}).get(metric, {}).get("iqm_curve") for n in (low, high))
    if a is None or b is None or a["env_step"] != b["env_step"]:
        return Bar(claim, None, f"not run, or evaluated at other steps: {low}, {high}", info=True)
    steps = a["env_step"]
    picks = sorted({round(i * (len(steps) - 1) / max(points - 1, 1)) for i in range(points)})
    cells = []
    for i in picks:
        lo, hi = a["iqm"][i], b["iqm"][i]
        cells.append(f"{steps[i]}: {'n/a' if lo is None or hi is None or lo <= 0 else format(hi / lo, '.3g')}")
    return Bar(claim, None, f"{metric} IQM {high} / {low} at env step " + ", ".join(cells), info=True)


def ratio_bar(claim: str, summaries: dict, low: str, high: str, factor: float, *, metric: str,
              which: str = "final") -> Bar:
    """Holds if `high`'s IQM over seeds of `which` `metric` is at least `factor` times `low`'s (both > 0)."""
    a, b = stat(summaries, low, metric, which), stat(summaries, high, metric, which)
    if a is None or b is None:
        missing = [n for n, x in ((low, a), (high, b)) if x is None]
        return Bar(claim, None, f"not run: {', '.join(missing)}")
    if a["iqm"] is None or b["iqm"] is None or a["iqm"] < 0 or b["iqm"] <= 0:
        return Bar(claim, False, f"{which} {metric}: not positive and finite ({low} {fmt(a)}, {high} {fmt(b)})")
    ratio = b["iqm"] / a["iqm"] if a["iqm"] > 0 else math.inf
    holds = ratio >= factor
    return Bar(claim, holds, f"{which} {metric}: {high} {fmt(b)} / {low} {fmt(a)} = {ratio:.3g} "
                             f"{'>=' if holds else '<'} {factor:g} (IQM over seeds, 95% bootstrap CI)")
