"""What can go wrong with a run directory, and its lock: the driver's exceptions (each one line
for the CLI), `lock_run_dir`, which keeps two processes from writing one run at once, and where the
checkpoints are (`checkpoint_steps`, without importing JAX or orbax)."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"


def checkpoint_steps(run_dir) -> list[int]:
    """Env steps of the finished checkpoints in `run_dir/checkpoints/` (orbax renames a step's
    folder to its number only when the save is complete), ascending; [] when there is none."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def lock_run_dir(run_dir: Path) -> int:
    """Hold an exclusive lock on `run_dir` for this process (released when it exits or the file
    descriptor is closed), so two processes never write one run directory at once."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunDirectoryError(f"{run_dir}: in use by another magejax process (it holds "
                                f"{run_dir / LOCK_FILE}); wait for it or stop it first") from None
    return fd


class Diverged(Exception):
    """A non-finite evaluation return, loss or other metric (`divergence.non_finite`); `str(e)` is one
    line naming step, seeds and metrics."""

    def __init__(self, message: str, env_step: int):
        super().__init__(message)
        self.env_step = env_step


class WriteFailed(Exception):
    """A metrics row, the CSV, TensorBoard or a checkpoint could not be written (a full disk, a
    read-only folder); `str(e)` is one line naming what failed and the newest good checkpoint.
    Nothing partial is left: the metrics file keeps whole evaluations only."""


class RunDirectoryError(Exception):
    """The run directory cannot hold this run (e.g. `checkpoints` is a file); nothing was changed."""


class ResumeRefused(RunDirectoryError):
    """No usable checkpoint, checkpoints of another run (config, seeds, base seed, version), or a
    metrics file that no longer matches them; nothing was changed."""
