"""Table and plot of the cpu-preset sweep (`cpu_preset_sweep.py --report`).

Reads the timing pass (`timing.json`) and every setting's run directory, and writes into the
results folder `sweep.md` (the table), `sweep.json` (the same numbers) and `curves.png` (one panel
per setting that ran: mean, 95 % band and every seed, the -250 threshold dashed).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from magejax.runs import metrics_io, plotting

THRESHOLD = -250.0


def _row(name: str, timing: dict, summary: dict | None) -> dict:
    t = timing.get(name) or timing.get(name.removesuffix("_nonorm"), {})  # a _nonorm twin: same cost
    row = dict(setting=name, ms_per_env_step_5_seeds=t.get("ms_per_env_step"), compile_s=t.get("compile_s"),
               timing_load=t.get("load_1min_before"), timing_of_twin=name not in timing and bool(t))
    if summary is not None:
        hits = summary["first_hit_step"]
        reached = [h for h in hits if h is not None]
        row.update(seeds_reached=summary["seeds_reached"], first_hit_step=hits,
                   median_first_hit=float(np.median(reached)) if reached else None,
                   stopped=summary["stopped"], last_step=summary["last_step"],
                   final_returns=summary["final_returns"], train_s=summary["train_s"],
                   run_load=summary["load_1min_during"], passes=summary["passes"])
    return row


def write(runs: Path, results: Path, settings: dict, plot: bool = True) -> None:
    """plot=False skips curves.png (its bootstrap bands are most of the report's time)."""
    timing = json.loads((results / "timing.json").read_text()) if (results / "timing.json").exists() else {}
    order = sorted(settings, key=lambda n: (timing.get(n) or timing.get(n.removesuffix("_nonorm"), {})).get("ms_per_env_step", float("inf")))
    rows, panels = [], {}
    for name in order:
        # A setting's run directory, or else the copy of its files committed with the table (a
        # fresh checkout has no runs/): the report never forgets a setting that ran.
        source = runs / name if (runs / name / metrics_io.METRICS_FILE).exists() else results / name
        summary_path = source / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        rows.append(_row(name, timing, summary))
        if summary is None and (source / metrics_io.METRICS_FILE).exists():
            run_rows = metrics_io.read_metrics(source)
            rows[-1]["running_at_step"] = max(r["env_step"] for r in run_rows) if run_rows else 0
        if (source / metrics_io.METRICS_FILE).exists():
            if source != results / name:
                # The evaluations themselves are committed with the table (the run dirs are not).
                (results / name).mkdir(parents=True, exist_ok=True)
                for f in (metrics_io.CONFIG_FILE, metrics_io.METRICS_FILE, "summary.json"):
                    if (source / f).exists():
                        shutil.copyfile(source / f, results / name / f)
            steps, values = metrics_io.curves_from_metrics(metrics_io.read_metrics(source))
            if len(steps) > 1:
                status = "" if summary else " (running)"
                panels[f"{name}{status}"] = {"MAGE-TD3": (steps, values)}
    passing = [r for r in rows if r.get("passes")]
    chosen = passing[0]["setting"] if passing else None
    results.mkdir(parents=True, exist_ok=True)
    (results / "sweep.json").write_text(json.dumps(dict(rows=rows, chosen=chosen), indent=1) + "\n")
    fmt = lambda x, f="{:.0f}": "–" if x is None else f.format(x)
    lines = ["| setting | ms / env step (5 seeds) | compile s | seeds ≥ −250 | first hit per seed | "
             "median first hit | stopped at | final returns |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hits = r.get("first_hit_step")
        hit_text = "not run" if hits is None else ", ".join("–" if h is None else str(h) for h in hits)
        if hits is None and "running_at_step" in r:
            hit_text = f"unfinished, evaluated to step {r['running_at_step']}"
        stopped = f"{r['last_step']} ({r['stopped']})" if "stopped" in r else ""
        reached = f"{r['seeds_reached']}/5" if "seeds_reached" in r else "–"
        finals = ", ".join(fmt(x) for x in r["final_returns"]) if "final_returns" in r else ""
        label = r["setting"] + (" **(chosen)**" if r["setting"] == chosen else "")
        twin = " (its twin's, not timed)" if r.get("timing_of_twin") else ""
        lines.append(f"| {label} | {fmt(r['ms_per_env_step_5_seeds'])}{twin} | {fmt(r['compile_s'])}{twin} | {reached} | "
                     f"{hit_text} | {fmt(r.get('median_first_hit'))} | {stopped} | {finals} |")
    (results / "sweep.md").write_text("\n".join(lines) + "\n")
    if plot and panels:
        plotting.plot_panels(panels, results / "curves.png", per_seed=True, hline=THRESHOLD, columns=4)
