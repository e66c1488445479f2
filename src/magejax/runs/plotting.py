"""Learning-curve plots shared by the CLI and the experiment scripts: mean across seeds with a 95%
confidence band of the mean (Student's t).

Figures are drawn on an explicit Agg canvas rather than through pyplot, so importing this module
never changes the caller's matplotlib backend and works on headless machines.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from magejax.runs import metrics_io

# Two-sided 95% Student's t quantiles (the 0.975 quantile) for 1..30 degrees of freedom. Checked
# against numerical integration of the t density to 6 decimals.
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion around the normal quantile: error < 1e-6 for df > 30, so the
    # band does not jump from 2.04 to 1.96 at 31 seeds.
    z, v = _Z975, float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def confidence_band(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean across seeds and its 95% confidence interval.

    values: (seeds, points). Returns (mean, lo, hi), each (points,). The half-width is
    t_{0.975, S-1} * std(ddof=1) / sqrt(S); with one seed there is no spread estimate, so the band
    collapses to the mean. NaN in a column makes that column's outputs NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"values must have shape (seeds >= 1, points), got {values.shape}")
    seeds = values.shape[0]
    mean = values.mean(axis=0)
    if seeds == 1:
        return mean, mean.copy(), mean.copy()
    half = t_quantile_975(seeds - 1) * values.std(axis=0, ddof=1) / math.sqrt(seeds)
    return mean, mean - half, mean + half


def _draw(ax, curves: dict, ylabel: str, xlabel: str, yscale: str, per_seed: bool = False) -> None:
    """Each label's mean curve and shaded 95% band (from 3 seeds on) on `ax`; with `per_seed`, every
    seed's curve thinly behind them (a band from few seeds can leave the attainable range; the
    seeds cannot)."""
    for label, (steps, values) in curves.items():
        steps = np.asarray(steps)
        mean, lo, hi = confidence_band(values)
        (line,) = ax.plot(steps, mean, label=f"{label} (n={np.shape(values)[0]})")
        # With 2 seeds the t interval (1 degree of freedom, t = 12.7) spans thousands on any task:
        # true, but it hides the curve, so only the seeds themselves are drawn then.
        if np.shape(values)[0] >= 3:
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
                         xlabel: str = "environment steps", yscale: str = "linear", per_seed: bool = False) -> Path:
    """Draw each label's mean curve and shaded 95% band; save a PNG (dpi 120) to `path`.

    curves: label -> (steps (P,), values (S, P)); labels may have different P and S. Any
    x-axis works (`xlabel`). yscale: "linear" or "log" (non-positive values are then left out
    of the drawing). Returns the path written.
    """
    return plot_panels({title: curves}, path, ylabel=ylabel, xlabel=xlabel, yscale=yscale, per_seed=per_seed)


def plot_panels(panels: dict, path, ylabel: str = "evaluation return", xlabel: str = "environment steps",
                yscale: str = "linear", columns: int = 4, per_seed: bool = False,
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
