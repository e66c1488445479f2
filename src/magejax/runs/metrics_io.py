"""A run directory on disk: `config.json`, `metrics.jsonl` and `metrics.csv`.

`metrics.jsonl` holds one JSON object per (env_step, seed): {"env_step", "seed", <METRIC_NAMES>},
floats with NaN written as null (JSON has no NaN). Lines are flushed as soon as they are written,
so a crashed or interrupted run keeps every evaluation it finished. The writer keeps a running
sha256 and byte count of what it wrote, so a checkpoint can record exactly which prefix of the
file belongs to it and a resumed run can cut the file back to that prefix. `metrics.csv` is the
same table for spreadsheets, rewritten from `metrics.jsonl` (so it always agrees with it).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from magejax.configs import Config
from magejax.runs import interrupts

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"


def write_whole(path, write: Callable[[Path], object]) -> Path:
    """Write `path` whole or not at all: `write(tmp)` fills a temporary sibling (same suffix, so
    writers that go by it still work), which then replaces `path` in one rename. On failure (a
    full disk) the temporary file is removed and `path` keeps its old contents."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with interrupts.deferred():  # a Ctrl-C waits for the rename (see runs.interrupts)
        try:
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def write_config(run_dir, config: Config, run: dict | None = None) -> Path:
    """Write `config.json`: {"config": config.to_dict(), "versions": {magejax, jax, jaxlib}} and,
    if given, "run": the CLI settings outside `Config` (seeds, base seed, preset, ...)."""
    import jax
    import jaxlib

    import magejax

    path = Path(run_dir) / CONFIG_FILE
    doc = {"config": config.to_dict(),
           "versions": {"magejax": magejax.__version__, "jax": jax.__version__,
                        "jaxlib": jaxlib.__version__}}
    if run is not None:
        doc["run"] = run
    return write_whole(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))


def read_config(run_dir) -> Config:
    """The `Config` stored in `run_dir/config.json`."""
    doc = json.loads((Path(run_dir) / CONFIG_FILE).read_text())
    return Config.from_dict(doc["config"])


class UnreadableRun(Exception):
    """`config.json` is missing, unreadable or holds an invalid config; `str(e)` says which."""


def read_validated(run_dir) -> tuple[Config, dict | None]:
    """The validated `Config` and the run settings (or None) of `run_dir/config.json`."""
    from magejax import configs

    try:
        return configs.validate(read_config(run_dir)), read_run_settings(run_dir)
    except configs.ConfigError as e:
        raise UnreadableRun(f"{CONFIG_FILE} holds an invalid config: {e}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UnreadableRun(f"not a readable run directory: {e}") from None


def read_run_settings(run_dir) -> dict | None:
    """The "run" settings of `run_dir/config.json`, or None if it has none (older run dirs)."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text()).get("run")


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None  # ±inf also becomes null: JSON cannot hold it either


def file_prefix_sha256(path, size: int) -> str | None:
    """sha256 of the first `size` bytes of `path`, or None if the file is shorter."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        data = f.read(size)
    if len(data) < size:
        return None
    digest.update(data)
    return digest.hexdigest()


class MetricsWriter:
    """Writes `run_dir/metrics.jsonl`.

    A new writer truncates any earlier file (one file per run); `keep_bytes=N` instead keeps the
    first N bytes (the rows a checkpoint covers) and appends after them, for a resumed run.
    """

    def __init__(self, run_dir, keep_bytes: int = 0):
        self.path = Path(run_dir) / METRICS_FILE
        # Binary and unbuffered: the byte count and hash must describe exactly what is on disk, and
        # a failed write must not leave bytes behind in a buffer to be flushed later.
        kept = self.path.read_bytes()[:keep_bytes] if keep_bytes else b""
        if len(kept) != keep_bytes:
            raise ValueError(f"{self.path}: has {len(kept)} bytes, fewer than the {keep_bytes} to keep")
        self._file = open(self.path, "r+b" if keep_bytes else "wb", buffering=0)
        self._file.truncate(keep_bytes)  # drop rows written after the checkpoint; they are redone
        self._file.seek(keep_bytes)
        self._sha256 = hashlib.sha256(kept)
        self.rows = kept.count(b"\n")
        self.bytes = keep_bytes

    def write_rows(self, env_step: int, metrics_per_seed: dict) -> None:
        """Append one line per seed. metrics_per_seed: name -> array (seeds,).

        All lines of the evaluation are written, or none: a failed write (a full disk) cuts the
        file back to the rows before it and raises the OSError."""
        columns = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in metrics_per_seed.items()}
        seeds = len(next(iter(columns.values())))
        lines = []
        for seed in range(seeds):
            row = {"env_step": int(env_step), "seed": seed}
            row.update({k: _json_float(v[seed]) for k, v in columns.items()})
            lines.append((json.dumps(row) + "\n").encode())
        block = b"".join(lines)
        with interrupts.deferred():  # a Ctrl-C waits for the whole evaluation (see runs.interrupts)
            try:
                view = memoryview(block)
                while view:  # a raw write may be partial
                    view = view[self._file.write(view):]
            except OSError:
                self._cut_back()
                raise
        self._sha256.update(block)
        self.rows += seeds
        self.bytes += len(block)

    def _cut_back(self) -> None:
        """Drop whatever part of a failed write reached the file (best effort: the disk is failing)."""
        try:
            self._file.seek(self.bytes)
            self._file.truncate(self.bytes)
        except (OSError, ValueError):
            pass

    def sha256(self) -> str:
        """sha256 of everything in the file so far."""
        return self._sha256.hexdigest()

    def sync(self) -> None:
        """Force the rows to disk (before a checkpoint claims them)."""
        os.fsync(self._file.fileno())

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


def write_csv(run_dir) -> Path:
    """Rewrite `run_dir/metrics.csv` from `metrics.jsonl`: columns env_step, seed, then the
    metrics in file order; one row per line of the jsonl, NaN written as `nan`. Written to a
    temporary file and renamed, so a reader never sees half a table."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    names = [k for k in rows[0] if k not in ("env_step", "seed")] if rows else []

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["env_step", "seed"] + names)
            for r in rows:
                out.writerow([int(r["env_step"]), int(r["seed"])] + [repr(float(r[n])) for n in names])
    return write_whole(run_dir / CSV_FILE, write)
