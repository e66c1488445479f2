"""Checkpoints of a whole vmapped training run, for `magejax train --resume`.

A checkpoint is one orbax step directory `RUN_DIR/checkpoints/<env_step>/` with two items:
`state`, the complete vmapped `TrainState` of every seed (networks, targets, optimiser states,
model and normalisers, replay buffer, env state, PRNG keys, counters), and `meta`, JSON holding
what must match for the checkpoint to apply (format, magejax version, config, seeds: else it is
refused), the host-side `Progress`, the layout of every state leaf, a sha256 over all of them, the
JAX versions and a sha256 of magejax's source (a difference there only warns: the state is valid,
but a resumed run may then differ from an uninterrupted one), and a sha256 of `meta` itself, so an
edited `meta` counts as damage (fall back) rather than as another run's checkpoint (refuse).

Atomicity: orbax writes a step into `<env_step>.orbax-checkpoint-tmp`, writes
`commit_success.txt` into it and only then renames it to `<env_step>` (`AtomicRenameTemporaryPath`,
its default on local disks). A process killed mid-save leaves only the tmp directory, which the
manager never lists as a step and deletes when it is next opened (`cleanup_tmp_directories`).
Orbax does not fsync before the rename, so after a power cut (not a killed process) a renamed
step can still be incomplete: the sha256 in `meta` catches that, and any other damage, on
restore, which then falls back to the previous good checkpoint.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import magejax
from magejax.runs import interrupts, metrics_io
from magejax.runs.run_dir import CHECKPOINT_DIR
from magejax.configs import Config

DAMAGED_DIR = "damaged_checkpoints"  # where a restore moves unusable checkpoints
FORMAT = 1  # bump when the layout of `meta` or of the saved state changes


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message says which and why."""


class IncompatibleCheckpoint(CheckpointError):
    """Written by another magejax version or for another run: refused, never skipped silently."""


class CorruptCheckpoint(CheckpointError):
    """Damaged or unreadable: the restore moves it aside and falls back to an older checkpoint."""


class MetricsMismatch(CheckpointError):
    """metrics.jsonl no longer starts with the rows a good checkpoint covers (edited or shortened):
    the resume is refused and nothing is touched."""


@dataclasses.dataclass(frozen=True)
class Progress:
    """Host-side position of a run at a checkpoint."""

    env_step: int          # env steps done per seed
    next_chunk: int        # the evaluation chunk the run continues with
    metrics_rows: int      # lines of metrics.jsonl written up to here ...
    metrics_bytes: int     # ... their size ...
    metrics_sha256: str    # ... and hash: the prefix of the file this checkpoint covers
    train_s: float         # seconds spent in training chunks (excludes compilation, checkpoints)
    wall_s: float          # wall-clock seconds of the run so far


def identity(config: Config, seeds: int, seed: int) -> dict:
    """What a checkpoint must agree on with the run restoring it."""
    return {"format": FORMAT, "magejax": magejax.__version__, "config": config.to_dict(),
            "seeds": seeds, "seed": seed}


def leaf_specs(tree) -> list[list]:
    """[path, shape, dtype] of every leaf, in tree order."""
    return [[jax.tree_util.keystr(path), list(x.shape), str(np.dtype(x.dtype))]
            for path, x in jax.tree_util.tree_leaves_with_path(tree)]


def state_digest(tree) -> str:
    """sha256 over every leaf's path, dtype, shape and bytes: equal digests mean identical states."""
    h = hashlib.sha256()
    for path, x in jax.tree_util.tree_leaves_with_path(jax.device_get(tree)):
        x = np.ascontiguousarray(x)
        h.update(f"{jax.tree_util.keystr(path)}|{x.dtype.str}|{x.shape}\n".encode())
        h.update(x.tobytes())
    return h.hexdigest()


def _jax_versions() -> dict:
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def source_digest() -> str:
    """sha256 of magejax's own source files: a development install changes its code without
    changing its version, and changed code can change the numbers."""
    h = hashlib.sha256()
    root = Path(magejax.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(f"{path.relative_to(root)}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _config_defaults() -> dict:
    """Default value of every `Config` field that has one."""
    out = {}
    for f in dataclasses.fields(Config):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _differences(saved: dict, expected: dict) -> list[str]:
    """'field (checkpoint X, run Y)' for each differing entry (config fields flattened).

    A checkpoint written before a `Config` field existed ran with what is now that field's
    default (new fields get the default that keeps the old behaviour), so it is compared as such:
    adding a field does not orphan the checkpoints of long runs in progress."""
    flat = lambda d: {**{k: v for k, v in d.items() if k != "config"}, **d.get("config", {})}
    saved = dict(saved, config={**_config_defaults(), **(saved.get("config") or {})})
    saved, expected = flat(saved), flat(expected)
    # JSON turns tuples into lists; compare like with like.
    norm = lambda v: list(v) if isinstance(v, tuple) else v
    return [f"{k} (checkpoint {saved.get(k)!r}, run {expected.get(k)!r})"
            for k in sorted(set(saved) | set(expected)) if norm(saved.get(k)) != norm(expected.get(k))]


def meta_digest(meta: dict) -> str:
    """sha256 of a checkpoint's `meta` without its own digest field, as JSON with sorted keys."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _quiet_closed_loop_reports() -> None:
    """Drop the follow-on noise of a failed orbax read (installed once, process-wide).

    Orbax reads the arrays concurrently on an asyncio loop. When one read fails on a damaged
    file the loop is closed while tensorstore is still completing the others, and each completion
    reports an unraisable `RuntimeError('Event loop is closed')`: dozens of tracebacks on stderr.
    The damage itself is reported by the failed read; only these reports are dropped.
    """
    previous = sys.unraisablehook
    if getattr(previous, "magejax_filter", False):
        return

    def hook(unraisable):
        e = unraisable.exc_value
        if not (isinstance(e, RuntimeError) and str(e) == "Event loop is closed"):
            previous(unraisable)

    hook.magejax_filter = True
    sys.unraisablehook = hook


def remove_unfinished(run_dir) -> None:
    """Remove the temporary folders of a save that failed (orbax writes `<step>.orbax-checkpoint-tmp*`
    and renames it when complete), so a failed save leaves nothing partial behind."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if directory.is_dir():
        for path in directory.iterdir():
            if ".orbax-checkpoint-tmp" in path.name:
                shutil.rmtree(path, ignore_errors=True)


class RunCheckpoints:
    """The checkpoints of one run directory: save every so often, restore the newest good one."""

    def __init__(self, run_dir, ident: dict, keep: int = 3):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / CHECKPOINT_DIR
        self.identity = ident
        self.keep = keep
        # A multi-host run checkpoints host copies of the whole state from process 0 alone
        # (magejax.runs.parallel): orbax must then neither wait for nor expect the other processes.
        alone = jax.process_count() > 1
        if alone:
            self.directory.mkdir(parents=True, exist_ok=True)  # orbax cannot create it then
        me = jax.process_index()
        remove_unfinished(self.run_dir)
        self._manager = ocp.CheckpointManager(
            self.directory.absolute(), item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(
                # Unfinished saves are removed here, synchronously (`remove_unfinished`): orbax's own
                # clean-up runs in a thread that prints a traceback when the process exits early.
                max_to_keep=keep, cleanup_tmp_directories=False, create=not alone,
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    primary_host=me, active_processes={me}) if alone else
                ocp.options.MultiprocessingOptions(),
                # Synchronous: a checkpoint is complete on disk before training goes on, so the
                # progress it records never runs ahead of what a crash leaves behind.
                enable_async_checkpointing=False))

    def steps(self) -> list[int]:
        """Env steps of the finished checkpoints, ascending."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def save(self, state, progress: Progress) -> None:
        """Save `state` (the vmapped TrainState) and `progress`; keeps only the newest `keep`."""
        host = jax.device_get(state)  # a host copy: the device buffers get donated to the next chunk
        meta = dict(self.identity, versions=_jax_versions(), source_sha256=source_digest(),
                    progress=dataclasses.asdict(progress),
                    leaves=leaf_specs(host), state_sha256=state_digest(host))
        meta = json.loads(json.dumps(meta))  # as it will read back (tuples become lists)
        meta["meta_sha256"] = meta_digest(meta)
        args = self._ocp.args.Composite(state=self._ocp.args.StandardSave(host),
                                        meta=self._ocp.args.JsonSave(meta))
        with interrupts.deferred():  # a Ctrl-C waits for the save to finish (see runs.interrupts)
            saved = self._manager.save(progress.env_step, args=args)
        if not saved:
            raise CheckpointError(f"{self.directory}: checkpoint at env step {progress.env_step} "
                                  "was not saved (a newer one exists)")

    def _restore_step(self, step: int, abstract_state, log: Callable[[str], None], to_resume: bool):
        ocp = self._ocp
        where = f"checkpoint {self.directory / str(step)}"
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            progress = Progress(**meta["progress"])
        except Exception as e:  # noqa: BLE001 — any failure to read is damage
            raise CorruptCheckpoint(f"{where}: metadata unreadable ({type(e).__name__}: {e})") from e
        # An edited `meta` is damage, not another run's checkpoint: fall back past it. (Checkpoints
        # written before the digest existed have none; they get the checks below only.)
        if "meta_sha256" in meta and meta["meta_sha256"] != meta_digest(meta):
            raise CorruptCheckpoint(f"{where}: metadata changed after it was written (sha256 mismatch)")
        if meta.get("format") != FORMAT or meta.get("magejax") != magejax.__version__:
            raise IncompatibleCheckpoint(
                f"{where}: written by magejax {meta.get('magejax')} (checkpoint format "
                f"{meta.get('format')}); this is magejax {magejax.__version__} (format {FORMAT})")
        differ = _differences({k: meta.get(k) for k in self.identity}, self.identity)
        if differ:
            raise IncompatibleCheckpoint(f"{where}: written for another run; differs in {', '.join(differ)}")
        if meta.get("leaves") != leaf_specs(abstract_state):
            raise IncompatibleCheckpoint(f"{where}: its state layout differs from this config's")
        # Warnings, not refusals: the state is still valid, only a resumed run's bit-exactness is at
        # stake (so they are left out when the state is only looked at: eval, render).
        if to_resume and meta.get("versions") != _jax_versions():
            log(f"{where} was written with {meta.get('versions')}, this is {_jax_versions()}: "
                "the resumed run may not be bit-identical to an uninterrupted one")
        if to_resume and meta.get("source_sha256") != source_digest():
            log(f"{where} was written by magejax {magejax.__version__} with other source code than "
                "this one: the resumed run may not be bit-identical to an uninterrupted one")
        try:
            state = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))).state
        except Exception as e:  # noqa: BLE001
            raise CorruptCheckpoint(f"{where}: state unreadable ({type(e).__name__}: {e})") from e
        if state_digest(state) != meta.get("state_sha256"):
            raise CorruptCheckpoint(f"{where}: state does not match its sha256 (damaged files)")
        metrics = self.run_dir / metrics_io.METRICS_FILE
        if (not metrics.is_file() or metrics_io.file_prefix_sha256(metrics, progress.metrics_bytes)
                != progress.metrics_sha256):
            raise MetricsMismatch(f"{where} is intact, but {metrics} no longer starts with the "
                                  f"{progress.metrics_rows} rows it covers (the file was changed or "
                                  "shortened); restore the file, or start afresh")
        return state, progress

    def remove_after(self, env_step: int) -> None:
        """Delete the checkpoints newer than `env_step` (a run going back to it writes them again)."""
        for step in self.steps():
            if step > env_step:
                self._manager.delete(step)
        self._manager.reload()

    def restore(self, abstract_state, log: Callable[[str], None] = print, to_resume: bool = True,
                at_most: int | None = None):
        """The newest good checkpoint (at env step `at_most` or before, if given) as (host
        TrainState, Progress), or None if there is none.

        abstract_state: the freshly initialised state, or its `jax.eval_shape`: restored arrays
        get its tree structure, shapes and dtypes. Damaged checkpoints are reported through
        `log`, moved aside to `damaged_checkpoints/` (never deleted; the resumed run writes their
        steps again) and skipped; an incompatible one raises `IncompatibleCheckpoint`, a metrics
        file that no longer matches `MetricsMismatch`, both before anything is moved.
        to_resume: also warn when JAX or magejax's source differ from the checkpoint's (a resumed
        run may then not be bit-identical); False for a state that is only evaluated or filmed.
        """
        _quiet_closed_loop_reports()
        bad = []
        for step in reversed(self.steps()):
            if at_most is not None and step > at_most:
                continue
            try:
                restored = self._restore_step(step, abstract_state, log, to_resume)
            except CorruptCheckpoint as e:
                log(f"{e}; not using it")
                bad.append(step)
                continue
            break
        else:
            restored = None
        if bad:
            aside = self.run_dir / DAMAGED_DIR
            for step in bad:
                self._move_aside(step, aside)
            self._manager.reload()
            log(f"moved unusable checkpoint(s) at env step(s) {', '.join(map(str, bad))} to {aside}; "
                + (f"falling back to the one at env step {restored[1].env_step}" if restored
                   else "no good checkpoint left"))
        return restored

    def _move_aside(self, step: int, aside: Path) -> Path:
        aside.mkdir(exist_ok=True)
        target, n = aside / str(step), 1
        while target.exists():  # damaged twice at the same step: keep both
            target, n = aside / f"{step}-{n}", n + 1
        shutil.move(str(self.directory / str(step)), str(target))
        return target

    def close(self) -> None:
        self._manager.close()
