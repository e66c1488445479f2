"""A run directory on disk: `config.json` and `metrics.jsonl`.

`metrics.jsonl` holds one JSON object per (env_step, seed): {"env_step", "seed", <METRIC_NAMES>},
floats with NaN written as null (JSON has no NaN). Lines are flushed as soon as they are written,
so a crashed or interrupted run keeps every evaluation it finished.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from magejax.configs import Config

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def write_config(run_dir, config: Config) -> Path:
    """Write `config.json`: {"config": config.to_dict(), "versions": {magejax, jax, jaxlib}}."""
    import jax
    import jaxlib

    import magejax

    path = Path(run_dir) / CONFIG_FILE
    doc = {"config": config.to_dict(),
           "versions": {"magejax": magejax.__version__, "jax": jax.__version__,
                        "jaxlib": jaxlib.__version__}}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def read_config(run_dir) -> Config:
    """The `Config` stored in `run_dir/config.json`."""
    doc = json.loads((Path(run_dir) / CONFIG_FILE).read_text())
    return Config.from_dict(doc["config"])


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None  # ±inf also becomes null: JSON cannot hold it either


class MetricsWriter:
    """Writes `run_dir/metrics.jsonl`, truncating any earlier file (one file per run)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / METRICS_FILE
        self._file = open(self.path, "w")

    def write_rows(self, env_step: int, metrics_per_seed: dict) -> None:
        """Append one line per seed. metrics_per_seed: name -> array (seeds,)."""
        columns = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in metrics_per_seed.items()}
        seeds = len(next(iter(columns.values())))
        for seed in range(seeds):
            row = {"env_step": int(env_step), "seed": seed}
            row.update({k: _json_float(v[seed]) for k, v in columns.items()})
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(run_dir) -> list[dict]:
    """All rows of `run_dir/metrics.jsonl`, nulls turned back into NaN."""
    rows = []
    with open(Path(run_dir) / METRICS_FILE) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.append({k: (math.nan if v is None else v) for k, v in row.items()})
    return rows


def curves_from_metrics(rows: list[dict], metric: str = "eval_return") -> tuple[np.ndarray, np.ndarray]:
    """One metric as a learning curve: (steps (P,), values (S, P)), NaN where a row is missing.

    Steps and seeds are sorted ascending.
    """
    steps = sorted({int(r["env_step"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    col = {s: i for i, s in enumerate(steps)}
    seed_row = {s: i for i, s in enumerate(seeds)}
    values = np.full((len(seeds), len(steps)), np.nan)
    for r in rows:
        v = r.get(metric)
        values[seed_row[int(r["seed"])], col[int(r["env_step"])]] = np.nan if v is None else v
    return np.asarray(steps, dtype=np.int64), values
