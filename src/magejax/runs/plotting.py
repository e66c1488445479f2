"""Learning-curve plots shared by the CLI and the experiment scripts: the interquartile mean (IQM)
across seeds with its 95% stratified-bootstrap band (`analysis.statistics.iqm_band`), every seed
drawn thinly behind it.

Figures are drawn on an explicit Agg canvas rather than through pyplot, so importing this module
never changes the caller's matplotlib backend and works on headless machines.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from magejax.analysis.statistics import iqm_band
from magejax.runs import metrics_io

def _draw(ax, curves: dict, ylabel: str, xlabel: str, yscale: str, per_seed: bool = True) -> None:
    """Each label's IQM curve and shaded 95% bootstrap band on `ax`; with `per_seed`, every seed's
    curve thinly behind them. (The bootstrap band stays within the seeds' range, where a Student-t
    band from few seeds does not: with 3 seeds it reached +1400 on a task whose returns are <= 0.)"""
    for label, (steps, values) in curves.items():
        steps = np.asarray(steps)
        iqm, lo, hi = iqm_band(values)
        (line,) = ax.plot(steps, iqm, label=f"{label} (IQM, n={np.shape(values)[0]})")
        if np.shape(values)[0] >= 2:
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
        if per_seed:
            for seed_curve in np.asarray(values):
                ax.plot(steps, seed_curve, color=line.get_color(), alpha=0.35, linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale(yscale)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="best", fontsize="small")


def plot_learning_curves(curves: dict, path, title: str, ylabel: str = "evaluation return",
                         xlabel: str = "environment steps", yscale: str = "linear", per_seed: bool = True) -> Path:
    """Draw each label's IQM curve and shaded 95% bootstrap band (and its seeds); save a PNG (dpi 120) to `path`.

    curves: label -> (steps (P,), values (S, P)); labels may have different P and S. Any
    x-axis works (`xlabel`). yscale: "linear" or "log" (non-positive values are then left out
    of the drawing). Returns the path written.
    """
    return plot_panels({title: curves}, path, ylabel=ylabel, xlabel=xlabel, yscale=yscale, per_seed=per_seed)


def plot_panels(panels: dict, path, ylabel: str = "evaluation return", xlabel: str = "environment steps",
                yscale: str = "linear", columns: int = 4, per_seed: bool = True,
                hline: float | None = None) -> Path:
    """One axes per panel (e.g. per environment), laid out in rows of at most `columns`.

    panels: title -> curves, each curves as in `plot_learning_curves`. per_seed: also draw every
    seed thinly; hline: a dashed reference level (e.g. a success threshold). Returns the path.
    """
    if not panels:
        raise ValueError("nothing to plot: no panels")
    cols = min(columns, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(6.4 * cols, 4.2 * rows))
    FigureCanvasAgg(fig)
    for i, (title, curves) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        _draw(ax, curves, ylabel, xlabel, yscale, per_seed)
        if hline is not None:
            ax.axhline(hline, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title)
    fig.tight_layout()
    # Whole or not at all: a full disk leaves the previous plot, never half a PNG.
    return metrics_io.write_whole(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
