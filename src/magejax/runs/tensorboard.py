"""TensorBoard logging of evaluation rows (`--tensorboard`; needs tensorboardX)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

TENSORBOARD_DIR = "tensorboard"


def writer(run_dir: Path, purge_step: int | None):
    from tensorboardX import SummaryWriter
    # A resume rewrites the rows after its checkpoint: TensorBoard drops the old ones.
    return SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge_step)


def log_scalars(tb, env_step: int, row: dict) -> None:
    """Every metric's mean over seeds and each seed's value; metrics NaN in every seed are left out."""
    for name, values in row.items():
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if np.isnan(v).all():
            continue
        tb.add_scalar(f"{name}/mean", float(np.mean(v)), env_step)
        for seed, x in enumerate(v):
            tb.add_scalar(f"{name}/seed_{seed}", float(x), env_step)
    tb.flush()
