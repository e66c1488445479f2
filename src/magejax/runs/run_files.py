"""The files of one run directory during a run: its config, metrics rows, TensorBoard log and
checkpoints (`RunFiles`), and how the run driver restores several directories that train in
one program (a sweep's values) to one common point (`restore_together`).

Only the process that writes files (process 0) makes these; the driver handles the rest.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable

from magejax.configs import Config
from magejax.runs import checkpoint, metrics_io
from magejax.runs import tensorboard as tb_log
from magejax.runs.run_dir import WriteFailed
from magejax.runs.tensorboard import TENSORBOARD_DIR


class Unrestorable(Exception):
    """The directories cannot be resumed (no checkpoint, another run's, or a changed metrics
    file); the message says which and why. Nothing was changed."""


@dataclasses.dataclass
class RunFiles:
    """One run directory's open files. `last_ckpt`: env step of its newest good checkpoint."""

    run_dir: Path
    config: Config
    ckpts: checkpoint.RunCheckpoints
    writer: metrics_io.MetricsWriter | None = None
    tb: object = None
    last_ckpt: int | None = None

    @classmethod
    def open(cls, run_dir: Path, config: Config, seeds: int, seed: int, keep: int) -> "RunFiles":
        ident = checkpoint.identity(config, seeds, seed)
        return cls(run_dir=Path(run_dir), config=config, ckpts=checkpoint.RunCheckpoints(run_dir, ident, keep))

    def start_fresh(self, run_settings: dict) -> None:
        metrics_io.write_config(self.run_dir, self.config, run_settings)
        self.writer = metrics_io.MetricsWriter(self.run_dir)

    def continue_from(self, progress: checkpoint.Progress) -> None:
        """Go on after the checkpoint of `progress`: metrics rows after it are cut, newer
        checkpoints (of a sweep member that had got further than the others) removed."""
        self.writer = metrics_io.MetricsWriter(self.run_dir, keep_bytes=progress.metrics_bytes)
        self.ckpts.remove_after(progress.env_step)
        self.last_ckpt = progress.env_step

    def start_tensorboard(self, resumed_from: int | None) -> None:
        self.tb = tb_log.writer(self.run_dir, None if resumed_from is None else resumed_from + 1)

    def newest_good(self) -> str:
        return (f"the newest good checkpoint is at env step {self.last_ckpt}" if self.last_ckpt is not None
                else "no checkpoint was written yet")

    def record(self, env_step: int, row: dict) -> None:
        """Append `row` (metric -> per-seed values) to metrics.jsonl, the CSV and TensorBoard."""
        run_dir = self.run_dir
        for what, write in ((run_dir / metrics_io.METRICS_FILE, lambda: self.writer.write_rows(env_step, row)),
                            (run_dir / metrics_io.CSV_FILE, lambda: metrics_io.write_csv(run_dir)),
                            (run_dir / TENSORBOARD_DIR, lambda: self.tb is not None and tb_log.log_scalars(self.tb, env_step, row))):
            try:
                write()
            except OSError as e:
                raise WriteFailed(f"cannot write {what} at env step {env_step}: {e.strerror or e}; "
                                  f"{self.newest_good()}") from None

    def save(self, host_state, env_step: int, next_chunk: int, train_s: float, wall_s: float) -> None:
        try:
            self.writer.sync()  # the rows this checkpoint claims must be on disk before it is
            self.ckpts.save(host_state, checkpoint.Progress(
                env_step=env_step, next_chunk=next_chunk, metrics_rows=self.writer.rows,
                metrics_bytes=self.writer.bytes, metrics_sha256=self.writer.sha256(), train_s=train_s,
                wall_s=wall_s))
        except Exception as e:  # noqa: BLE001 — orbax wraps I/O errors in its own types
            checkpoint.remove_unfinished(self.run_dir)
            reason = getattr(e, "strerror", None) or f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            raise WriteFailed(f"cannot write the checkpoint at env step {env_step} in "
                              f"{self.run_dir / checkpoint.CHECKPOINT_DIR}: {reason}; {self.newest_good()}") from None
        self.last_ckpt = env_step

    def close(self) -> None:
        for f in (self.writer, self.ckpts, self.tb):
            if f is not None:
                f.close()


def restore_together(members: list[RunFiles], abstract_member, log: Callable[[str], None],
                     start_if_none: bool) -> list | None:
    """Each member's (host state, Progress) at the newest env step where every member has a good
    checkpoint, or None to start afresh (no member has one, and `start_if_none`; with some members
    checkpointed and others not, their checkpoints are then removed, as the run starts over).

    A sweep saves its members one after another, so a kill can leave one member a checkpoint
    ahead: it goes back to the others' step (`RunFiles.continue_from` then drops the newer one).
    Raises `Unrestorable` with nothing changed when there is nothing to resume and not
    `start_if_none`, or when a member's checkpoints are another run's or its metrics changed."""
    def restore(m: RunFiles, at_most: int | None = None):
        try:
            return m.ckpts.restore(abstract_member, log=log, at_most=at_most)
        except (checkpoint.IncompatibleCheckpoint, checkpoint.MetricsMismatch) as e:
            raise Unrestorable(str(e)) from None

    found = [restore(m) for m in members]
    missing = [m.run_dir for m, f in zip(members, found) if f is None]
    if missing:
        where = ", ".join(str(d / checkpoint.CHECKPOINT_DIR) for d in missing)
        if not start_if_none:
            raise Unrestorable(f"no usable checkpoint to resume from in {where} (nothing was changed); "
                               "start afresh in another directory, or with --overwrite on this one")
        log(f"no checkpoint to resume from in {where}; starting the run from the beginning")
        for m in members:
            if m.run_dir not in missing:
                m.ckpts.close()
                shutil.rmtree(m.run_dir / checkpoint.CHECKPOINT_DIR, ignore_errors=True)
                m.ckpts = checkpoint.RunCheckpoints(m.run_dir, m.ckpts.identity, m.ckpts.keep)
        return None
    common = min(progress.env_step for _, progress in found)
    for i, (m, (_, progress)) in enumerate(zip(members, found)):
        if progress.env_step > common:
            log(f"{m.run_dir} is checkpointed at env step {progress.env_step}, the other runs of its "
                f"sweep at {common}: going back to its checkpoint at {common}")
            found[i] = restore(m, at_most=common)
            if found[i] is None or found[i][1].env_step != common:
                raise Unrestorable(f"{m.run_dir}: no good checkpoint at env step {common}, where the other "
                                   "runs of its sweep are; resume it separately, or start the sweep afresh")
    return found
