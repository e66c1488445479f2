"""Student-t intervals against hand computation (`analysis.statistics`), and the PNG writer."""
import math

import numpy as np
import pytest

from magejax.analysis import statistics
from magejax.runs import plotting


def test_band_matches_hand_computation():
    # 5 seeds -> 4 degrees of freedom, t_{0.975,4} = 2.776445; column 0 is 1..5: mean 3,
    # sample std sqrt(2.5), half-width 2.776445 * sqrt(2.5) / sqrt(5) = 1.963243.
    values = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [4.0, 10.0], [5.0, 10.0]])
    mean, lo, hi = statistics.mean_t_interval(values)
    assert mean == pytest.approx([3.0, 10.0])
    assert lo == pytest.approx([3.0 - 1.963243, 10.0], abs=1e-5)
    assert hi == pytest.approx([3.0 + 1.963243, 10.0], abs=1e-5)


def test_one_seed_band_collapses_to_mean():
    values = np.array([[1.0, -2.0, 3.5]])
    mean, lo, hi = statistics.mean_t_interval(values)
    np.testing.assert_array_equal(mean, values[0])
    np.testing.assert_array_equal(lo, values[0])
    np.testing.assert_array_equal(hi, values[0])


@pytest.mark.parametrize("df, expected", [(1, 12.706205), (2, 4.302653), (4, 2.776445),
                                          (10, 2.228139), (30, 2.042272), (40, 2.021075),
                                          (100, 1.983972), (10**6, 1.959966)])
def test_t_quantiles(df, expected):
    assert statistics.t_quantile_975(df) == pytest.approx(expected, abs=2e-6)


def test_bad_shapes_rejected():
    with pytest.raises(ValueError):
        statistics.mean_t_interval(np.zeros(3))
    with pytest.raises(ValueError):
        statistics.mean_t_interval(np.zeros((0, 3)))


def test_plot_writes_png(tmp_path):
    steps = np.array([0, 100, 200])
    curves = {"mage": (steps, np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 4.0]])),
              "td3": (steps[:2], np.array([[0.0, math.nan]]))}  # NaN points are skipped, not fatal
    path = plotting.plot_learning_curves(curves, tmp_path / "c.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panels_side_by_side_on_any_axis(tmp_path):
    x = np.array([0, 1, 2, 5, 10])
    curves = {"a": (x, np.array([[1.0, 0.5, 0.3, 0.1, 0.05], [1.2, 0.6, 0.2, 0.1, 0.04]]))}
    one = plotting.plot_learning_curves(curves, tmp_path / "one.png", title="t", xlabel="horizon H", yscale="log")
    two = plotting.plot_panels({"left": curves, "right": curves}, tmp_path / "two.png", ylabel="error",
                               xlabel="horizon H", yscale="log")
    width = lambda path: int.from_bytes(path.read_bytes()[16:20], "big")  # PNG IHDR width
    assert two.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert width(two) == 2 * width(one)


def test_panels_and_log_scale(tmp_path):
    steps = np.array([0, 100, 200])
    panels = {"pendulum": {"a": (steps, np.array([[1.0, 0.1, 0.01], [2.0, 0.2, 0.02]]))},
              "cartpole": {"a": (steps, np.array([[1.0, 2.0, 3.0]])), "b": (steps, np.array([[3.0, 2.0, 1.0]]))}}
    path = plotting.plot_panels(panels, tmp_path / "p.png", ylabel="err", yscale="log")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # Two panels side by side: 2 × 6.4 in at 120 dpi wide, one 4.2 in row high (IHDR width, height).
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1536, 504)
    with pytest.raises(ValueError):
        plotting.plot_panels({}, tmp_path / "none.png")


def test_iqm_band_within_the_seeds_and_every_seed_drawn():
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    steps = np.array([0, 100, 200])
    for seeds, bands in ((1, 0), (2, 1), (5, 1)):
        ax = Figure().add_subplot()
        values = -np.arange(seeds * 3, dtype=float).reshape(seeds, 3) ** 2
        plotting._draw(ax, {"mage": (steps, values)}, "return", "steps", "linear")
        polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(polys) == bands
        assert len(ax.lines) == 1 + seeds  # the IQM, then every seed thinly
        if polys:  # the band never leaves the range of the seeds (a t band from few seeds does)
            ys = np.concatenate([path.vertices[:, 1] for path in polys[0].get_paths()])
            assert values.min() - 1e-9 <= ys.min() and ys.max() <= values.max() + 1e-9
