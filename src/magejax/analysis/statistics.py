"""Statistics of a handful of RL runs, as a reviewer accepts them (Agarwal et al., "Deep RL at the
edge of the statistical precipice", NeurIPS 2021), computed with their `rliable` package:

  iqm_interval(x)                 the interquartile mean of per-seed scores and its stratified-
                                  bootstrap 95% CI (percentile), and the mean with its bootstrap CI
  iqm_band(values)                the same per evaluation point of a learning curve (S, P)
  iqm_curve(values)               the IQM alone per evaluation point (S, P) -> (P,), no interval
  probability_of_improvement(x, y)  P(a run of x scores above a run of y), with its bootstrap CI
  curve_stats(steps, values)      a learning curve's final, AUC and max per seed, each as
                                  score_summary: IQM and mean over seeds with their intervals
  mean_t_interval(values)         the mean and its Student-t 95% CI (the CLI's quick summaries)

With one task, rliable's stratified bootstrap resamples the runs of that task. Bootstrap draws
use a fixed seed (and leave NumPy's global generator as they found it), so a summary is
reproducible. NaN or infinite scores give NaN estimates: a
diverged seed is never silently dropped.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

CI_REPS = 2_000
"""Bootstrap replications of an interval. rliable's default is 50,000, but its resamples are
computed one Python call at a time: 11 s per interval on the 2-core machine, minutes per figure
summary. 2,000 (rliable's own choice for its learning-curve bands; Efron and Tibshirani advise at
least 1,000 for percentile intervals) takes 0.4 s."""
BAND_REPS = 2_000
"""Bootstrap replications per learning curve (every evaluation point at once)."""
SEED = 0

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


def mean_t_interval(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean across seeds and its 95% Student-t confidence interval.

    values: (seeds, points). Returns (mean, lo, hi), each (points,). The half-width is
    t_{0.975, S-1} * std(ddof=1) / sqrt(S); with one seed there is no spread estimate, so the
    interval collapses to the mean. NaN in a column makes that column's outputs NaN.
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


@contextlib.contextmanager
def _seeded():
    """rliable 1.2 draws its resampling indices from NumPy's global generator (`np.random.choice`
    in `StratifiedBootstrap.update_indices`), ignoring `random_state`: seed that one, for
    reproducible intervals, and give the caller's global state back afterwards."""
    saved = np.random.get_state()
    np.random.seed(SEED)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _interval_estimates(scores: dict, func, reps: int):
    from rliable import library

    with _seeded(), warnings.catch_warnings():
        # arch deprecates the `random_state` argument rliable passes; the draws are seeded above.
        warnings.simplefilter("ignore", FutureWarning)
        return library.get_interval_estimates(scores, func, reps=reps)


def _as_runs(per_seed) -> np.ndarray:
    x = np.asarray(per_seed, dtype=np.float64).reshape(-1)
    if x.size < 1:
        raise ValueError("no scores: need at least one seed")
    return x


def iqm_interval(per_seed) -> dict:
    """IQM and mean of per-seed scores (S,), each with its stratified-bootstrap 95% CI.

    -> {"iqm", "iqm_ci95": [lo, hi], "mean", "mean_ci95": [lo, hi]}; NaN everywhere if a score
    is not finite."""
    from rliable import metrics

    x = _as_runs(per_seed)
    if not np.all(np.isfinite(x)):
        nan = float("nan")
        return {"iqm": nan, "iqm_ci95": [nan, nan], "mean": nan, "mean_ci95": [nan, nan]}
    scores = {"x": x[:, None]}  # (runs, tasks): one task
    both = lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s)])
    point, interval = _interval_estimates(scores, both, CI_REPS)
    (iqm, mean), ((iqm_lo, mean_lo), (iqm_hi, mean_hi)) = point["x"], interval["x"]
    return {"iqm": float(iqm), "iqm_ci95": [float(iqm_lo), float(iqm_hi)],
            "mean": float(mean), "mean_ci95": [float(mean_lo), float(mean_hi)]}


def iqm_curve(values) -> np.ndarray:
    """The IQM over seeds at every evaluation point, without bootstrap. values (S, P) -> (P,);
    NaN where a seed's value is not finite."""
    from rliable import metrics

    v = np.asarray(values, dtype=np.float64)
    return np.array([metrics.aggregate_iqm(col) if np.all(np.isfinite(col)) else np.nan for col in v.T])


def iqm_band(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM across seeds at every point of a learning curve, and its 95% bootstrap band.

    values: (seeds, points) -> (iqm, lo, hi), each (points,). Points where a seed is not finite
    are NaN. The band lies within the seeds' range (unlike a t-interval from few seeds)."""
    from rliable import metrics

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"values must have shape (seeds >= 1, points), got {values.shape}")
    finite = np.all(np.isfinite(values), axis=0)
    iqm, lo, hi = (np.full(values.shape[1], np.nan) for _ in range(3))
    if finite.any():
        curves = values[:, None, finite]  # (runs, tasks = 1, points)
        per_point = lambda s: np.array([metrics.aggregate_iqm(s[..., j]) for j in range(s.shape[-1])])
        point, interval = _interval_estimates({"x": curves}, per_point, BAND_REPS)
        iqm[finite], lo[finite], hi[finite] = point["x"], interval["x"][0], interval["x"][1]
    return iqm, lo, hi


def probability_of_improvement(x, y) -> dict:
    """P(X > Y) for a random run of x and one of y (ties count half; Agarwal et al.'s
    probability of improvement), with its stratified-bootstrap 95% CI.

    x, y: per-seed scores (S_x,), (S_y,). -> {"p", "ci95": [lo, hi]} (NaN if a score is not finite)."""
    from rliable import metrics

    x, y = _as_runs(x), _as_runs(y)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return {"p": float("nan"), "ci95": [float("nan"), float("nan")]}
    pair = {"x,y": (x[:, None], y[:, None])}
    point, interval = _interval_estimates(pair, metrics.probability_of_improvement, CI_REPS)
    p, (lo, hi) = point["x,y"], interval["x,y"]
    return {"p": float(np.squeeze(p)), "ci95": [float(np.squeeze(lo)), float(np.squeeze(hi))]}


def score_summary(per_seed) -> dict:
    """IQM and mean over seeds of per-seed scores (S,), each with its stratified-bootstrap 95% CI,
    the std and the scores, as JSON-ready floats (None where not finite).

    -> {"iqm", "iqm_ci95": [lo, hi], "mean", "ci95": [lo, hi], "std", "per_seed": [S]}"""
    per_seed = np.asarray(per_seed, dtype=np.float64).reshape(-1)
    r = iqm_interval(per_seed)
    fin = _finite_or_none
    return {"iqm": fin(r["iqm"]), "iqm_ci95": [fin(x) for x in r["iqm_ci95"]],
            "mean": fin(r["mean"]), "ci95": [fin(x) for x in r["mean_ci95"]],
            "std": fin(float(np.std(per_seed, ddof=1))) if len(per_seed) > 1 else None,
            "per_seed": [fin(float(x)) for x in per_seed]}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def curve_stats(steps, values) -> dict:
    """Statistics of a learning curve, per seed and then over seeds (`score_summary`).

    steps (P,), values (S, P). `final` is the last evaluation; `auc` the area under the curve
    divided by its length in env steps (the mean value over training, in the metric's own units),
    over the evaluations finite in every seed; `max` the best evaluation (the TD3 paper's
    "maximum average return"); `iqm_curve` the IQM over seeds at every evaluation (no interval:
    a bootstrap per point is the plots' job, `iqm_band`)."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    finite = np.all(np.isfinite(values), axis=0)
    if finite.sum() >= 2:
        s, v = steps[finite], values[:, finite]
        auc = np.trapezoid(v, s, axis=1) / (s[-1] - s[0])
    else:
        auc = np.full(values.shape[0], np.nan)
    best = np.where(finite.any(), np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1), np.nan)
    iqm = [float(x) if np.isfinite(x) else None for x in iqm_curve(values)]
    return {"final": score_summary(values[:, -1]), "auc": score_summary(auc), "max": score_summary(best),
            "env_steps": [int(steps[0]), int(steps[-1])], "finite_evaluations": int(finite.sum()),
            "iqm_curve": {"env_step": [int(x) for x in steps], "iqm": iqm}}
