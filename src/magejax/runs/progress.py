"""Progress callbacks for `driver.run` (`progress_fn`): a tqdm bar, or one line per evaluation."""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from magejax.runs.driver import ChunkReport


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _rate(r: ChunkReport) -> float:
    return r.env_step / r.train_s if r.train_s > 0 else float("nan")


def lines(prefix: str = "", write: Callable[[str], None] | None = None,
          extra_metrics: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> Callable[[ChunkReport], None]:
    """A line per evaluation: step, env steps/s per seed, elapsed, ETA, mean evaluation return.

    groups: names of equal, consecutive blocks of the seeds (a sweep's values, `driver.run_sweep`):
    the mean evaluation return is then given per block."""
    write = write or (lambda line: print(line, file=sys.stderr, flush=True))

    def report(r: ChunkReport) -> None:
        if r.row is None:
            return
        rate = _rate(r)
        left = (r.total_steps - r.env_step) / rate if np.isfinite(rate) and rate > 0 else float("nan")
        extra = "".join(f" | {k} {np.mean(r.row[k]):.4g}" for k in extra_metrics if k in r.row)
        returns = np.asarray(r.row["eval_return"])
        if groups:
            per = returns.reshape(len(groups), -1)
            what = ", ".join(f"{g} {np.mean(x):.1f}" for g, x in zip(groups, per)) + f" (mean of {per.shape[1]} each)"
        else:
            what = f"{np.mean(returns):.1f} (mean of {r.seeds})"
        write(f"{prefix}step {r.env_step}/{r.total_steps} | {rate:,.1f} env steps/s per seed "
              f"({rate * r.seeds:,.1f} total) | elapsed {hms(r.wall_s)} | ETA {hms(left) if np.isfinite(left) else '?'} "
              f"| eval return {what}{extra}")

    return report


def tqdm_bar(desc: str = "magejax") -> Callable[[ChunkReport], None]:
    """A tqdm bar over env steps, closed when the run reaches its end (falls back to `lines`
    when tqdm is missing: a missing bar is no reason to stop)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return lines()
    bar = None

    def report(r: ChunkReport) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=r.total_steps, initial=r.first_env_step, file=sys.stderr, desc=desc,
                       unit=" env steps", dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                                  "{rate_noinv_fmt} per seed{postfix}]")
        if r.row is not None:
            bar.set_postfix_str(f"eval return {np.mean(r.row['eval_return']):.1f} (mean of {r.seeds})",
                                refresh=False)
            bar.update(r.env_step - bar.n)
        if r.env_step >= r.total_steps:
            bar.close()

    report.close = lambda: bar is not None and bar.close()
    return report
