"""`analysis.statistics`: IQM with stratified-bootstrap intervals, the probability of improvement
(through rliable) and a learning curve's summary, checked against direct computations; Student-t
intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from magejax.analysis import statistics


def test_iqm_is_the_mean_of_the_middle_half_and_its_interval_covers_it():
    x = np.array([-1500.0, -300.0, -200.0, -150.0, -140.0, -130.0, -120.0, -100.0])
    r = statistics.iqm_interval(x)
    # 8 runs: the IQM drops the 2 lowest and the 2 highest.
    assert r["iqm"] == pytest.approx(np.mean(np.sort(x)[2:6]))
    assert r["mean"] == pytest.approx(x.mean())
    lo, hi = r["iqm_ci95"]
    assert x.min() <= lo < r["iqm"] < hi <= x.max()
    # The outlier pulls the mean's interval far lower than the IQM's.
    assert r["mean_ci95"][0] < lo - 100
    # Reproducible (a fixed bootstrap seed), and NumPy's global generator is left as it was.
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    assert statistics.iqm_interval(x) == r
    assert np.array_equal(np.random.get_state()[1], before)


def test_a_non_finite_seed_is_never_dropped():
    r = statistics.iqm_interval([1.0, 2.0, np.nan, 4.0])
    assert math.isnan(r["iqm"]) and math.isnan(r["iqm_ci95"][0])
    iqm, lo, hi = statistics.iqm_band(np.array([[1.0, 2.0, 3.0], [1.0, np.inf, 3.5], [2.0, 2.0, 4.0]]))
    assert math.isnan(iqm[1]) and math.isnan(lo[1]) and np.isfinite(iqm[[0, 2]]).all()


def test_iqm_band_stays_within_the_seeds_range_where_a_t_band_does_not():
    rng = np.random.default_rng(0)
    values = np.stack([rng.uniform(-1600, -100, 20) for _ in range(3)])  # 3 seeds, 20 points
    iqm, lo, hi = statistics.iqm_band(values)
    eps = 1e-9 * np.abs(values).max()  # a resample of one seed repeated: its IQM up to rounding
    assert np.all(values.min(0) - eps <= lo) and np.all(hi <= values.max(0) + eps)
    assert np.all(lo <= iqm + eps) and np.all(iqm <= hi + eps)
    _, t_lo, t_hi = statistics.mean_t_interval(values)
    assert np.any(t_hi > 0) or np.any(t_lo < values.min(0))  # the t band leaves the attainable range


def test_probability_of_improvement_matches_the_mann_whitney_statistic():
    x = np.array([-120.0, -130.0, -140.0, -500.0, -125.0])
    y = np.array([-150.0, -900.0, -1400.0, -135.0, -160.0])
    r = statistics.probability_of_improvement(x, y)
    u = scipy_stats.mannwhitneyu(x, y).statistic
    assert r["p"] == pytest.approx(u / (len(x) * len(y)))
    assert 0 <= r["ci95"][0] <= r["p"] <= r["ci95"][1] <= 1
    assert statistics.probability_of_improvement(y, x)["p"] == pytest.approx(1 - r["p"])
    assert statistics.probability_of_improvement(x, x)["p"] == pytest.approx(0.5)


def test_student_t_interval():
    mean, lo, hi = statistics.mean_t_interval(np.array([[1.0], [2.0], [3.0]]))
    assert mean[0] == 2.0 and hi[0] - mean[0] == pytest.approx(4.302653 * 1.0 / math.sqrt(3))
    assert statistics.t_quantile_975(1000) == pytest.approx(scipy_stats.t.ppf(0.975, 1000), abs=1e-6)
    with pytest.raises(ValueError, match="seeds >= 1"):
        statistics.mean_t_interval(np.zeros((0, 3)))


def test_curve_stats_by_hand():
    steps = np.array([0, 100, 300])
    values = np.array([[0.0, 2.0, 4.0], [2.0, 2.0, 2.0]])
    st = statistics.curve_stats(steps, values)
    # Seed 0: trapezoid (0+2)/2·100 + (2+4)/2·200 = 700 over 300 steps; seed 1: 2.
    np.testing.assert_allclose(st["auc"]["per_seed"], [700 / 300, 2.0])
    assert st["final"]["per_seed"] == [4.0, 2.0] and st["final"]["mean"] == 3.0
    assert st["max"]["per_seed"] == [4.0, 2.0]
    # Two seeds: the IQM of two values is their mean; a bootstrap resample of (4, 2) has mean 2, 3
    # or 4, so the percentile interval is [2, 4] (within the seeds, where a t interval spans ±12.7).
    assert st["final"]["iqm"] == 3.0
    assert st["final"]["iqm_ci95"] == [2.0, 4.0] and st["final"]["ci95"] == [2.0, 4.0]


def test_curve_stats_skip_columns_not_finite_in_every_seed():
    steps = np.array([0, 100, 200, 300])
    values = np.array([[np.nan, 1.0, 3.0, 5.0], [np.nan, 1.0, np.nan, 5.0]])
    st = statistics.curve_stats(steps, values)
    assert st["finite_evaluations"] == 2
    np.testing.assert_allclose(st["auc"]["per_seed"], [3.0, 3.0])  # the curve through 100 and 300
    assert st["max"]["per_seed"] == [5.0, 5.0]
