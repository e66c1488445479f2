"""Checkpoints: bit-identical save/restore of the whole vmapped TrainState, keep-last-K, damaged
checkpoints detected and skipped, foreign checkpoints refused; and end to end, a run killed with
SIGKILL and resumed writes exactly the metrics and final state of an uninterrupted run."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import magejax
from magejax import cli, configs
from magejax.runs import checkpoint, metrics_io
from magejax.runs.checkpoint import CorruptCheckpoint, IncompatibleCheckpoint, Progress, RunCheckpoints
from magejax.train import make_train

CONFIG = configs.preset("pendulum", "mage", "tiny")
SEEDS = 2


@pytest.fixture(scope="module")
def abstract_state():
    """Shapes, dtypes and structure of the vmapped TrainState (no compilation)."""
    trainer = make_train(CONFIG)
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    return jax.eval_shape(jax.vmap(trainer.start), keys)[0]


def _random_state(abstract, seed: int):
    """A state of the right layout whose every leaf holds distinct values, NaN and ±inf included."""
    rng = np.random.default_rng(seed)

    def leaf(x):
        if np.issubdtype(x.dtype, np.floating):
            a = rng.standard_normal(x.shape).astype(x.dtype)
            if a.size > 2:
                a.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
            return a
        return rng.integers(0, np.iinfo(x.dtype).max, x.shape, dtype=x.dtype)

    return jax.tree.map(leaf, abstract)


def _progress(run_dir, env_step: int) -> Progress:
    """Progress at `env_step`, after writing one metrics row per 100 steps into run_dir."""
    with metrics_io.MetricsWriter(run_dir) as w:
        for step in range(0, env_step + 1, 100):
            w.write_rows(step, {"eval_return": np.arange(SEEDS) + step})
    return Progress(env_step=env_step, next_chunk=env_step // 100, metrics_rows=w.rows,
                    metrics_bytes=w.bytes, metrics_sha256=w.sha256(), train_s=1.5, wall_s=2.5)


def _ckpts(run_dir, config=CONFIG, seeds=SEEDS, keep=3) -> RunCheckpoints:
    return RunCheckpoints(run_dir, checkpoint.identity(config, seeds, 0), keep=keep)


def _save_steps(run_dir, abstract, steps, keep=3) -> dict:
    """Save a distinct random state at each step; returns step -> state."""
    states = {}
    ckpts = _ckpts(run_dir, keep=keep)
    for step in steps:
        states[step] = _random_state(abstract, step)
        ckpts.save(states[step], _progress(run_dir, step))
    ckpts.close()
    return states


def _assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()  # bit-identical: NaN payloads and -0.0 included


def test_round_trip_is_bit_identical(tmp_path, abstract_state):
    states = _save_steps(tmp_path, abstract_state, [100])
    logs = []
    state, progress = _ckpts(tmp_path).restore(abstract_state, log=logs.append)
    _assert_identical(state, states[100])
    assert checkpoint.state_digest(state) == checkpoint.state_digest(states[100])
    assert progress == _progress(tmp_path, 100) and progress.train_s == 1.5
    assert logs == []


def test_round_trip_with_learned_reward_and_oracle(tmp_path):
    """The learned reward's state is saved and restored; the oracle's absent model stays None."""
    config = configs.preset("pendulum", "mage", "tiny", reward="learned", model="oracle")
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    abstract = jax.eval_shape(jax.vmap(make_train(config).start), keys)[0]
    assert abstract.model is None and abstract.reward_model is not None
    state = _random_state(abstract, 7)
    ckpts = _ckpts(tmp_path, config=config)
    ckpts.save(state, _progress(tmp_path, 100))
    ckpts.close()
    restored, _ = _ckpts(tmp_path, config=config).restore(abstract, log=print)
    _assert_identical(restored, state)
    assert restored.model is None


def test_keeps_last_k_and_ignores_unfinished_saves(tmp_path, abstract_state):
    _save_steps(tmp_path, abstract_state, [100, 200, 300, 400, 500], keep=2)
    ckpt_dir = tmp_path / checkpoint.CHECKPOINT_DIR
    assert _ckpts(tmp_path).steps() == [400, 500]
    # What a save killed before its atomic rename leaves behind: never listed, cleaned up.
    partial = ckpt_dir / "600.orbax-checkpoint-tmp"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "junk").write_bytes(b"half a checkpoint")
    ckpts = _ckpts(tmp_path)
    assert ckpts.steps() == [400, 500]
    state, progress = ckpts.restore(abstract_state, log=print)
    assert progress.env_step == 500
    ckpts.close()
    assert not partial.exists()


def _largest_file(directory: Path) -> Path:
    return max((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _overwrite(path: Path):
    """Flip every bit of up to 64 bytes in the middle: same size, different content."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 64)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, where", [
    (_overwrite, "state"), (_truncate, "state"), (_truncate, "meta"),
])
def test_corrupt_checkpoint_detected_and_skipped(tmp_path, abstract_state, damage, where):
    states = _save_steps(tmp_path, abstract_state, [100, 200])
    newest = tmp_path / checkpoint.CHECKPOINT_DIR / "200"
    damage(_largest_file(newest / where))
    logs = []
    ckpts = _ckpts(tmp_path)
    state, progress = ckpts.restore(abstract_state, log=logs.append)
    assert progress.env_step == 100
    _assert_identical(state, states[100])
    text = "\n".join(logs)
    assert str(newest) in text and "falling back to the one at env step 100" in text
    assert ckpts.steps() == [100]  # the damaged one is out of the way, so the resumed run can write it again
    aside = tmp_path / checkpoint.DAMAGED_DIR / "200"
    assert aside.is_dir() and str(aside.parent) in text  # moved aside, never deleted


def test_all_corrupt_are_moved_aside_and_none_is_restored(tmp_path, abstract_state):
    _save_steps(tmp_path, abstract_state, [100])
    _overwrite(_largest_file(tmp_path / checkpoint.CHECKPOINT_DIR / "100" / "state"))
    logs = []
    assert _ckpts(tmp_path).restore(abstract_state, log=logs.append) is None
    assert "no good checkpoint left" in logs[-1]
    assert (tmp_path / checkpoint.DAMAGED_DIR / "100" / "state").is_dir()
    # Damaged twice at the same step (a rerun wrote it again): both are kept.
    _save_steps(tmp_path, abstract_state, [100])
    _overwrite(_largest_file(tmp_path / checkpoint.CHECKPOINT_DIR / "100" / "state"))
    assert _ckpts(tmp_path).restore(abstract_state, log=logs.append) is None
    assert sorted(p.name for p in (tmp_path / checkpoint.DAMAGED_DIR).iterdir()) == ["100", "100-1"]


def test_metrics_mismatch_is_reported_and_the_checkpoints_stay(tmp_path, abstract_state):
    _save_steps(tmp_path, abstract_state, [100, 200])
    metrics = tmp_path / metrics_io.METRICS_FILE
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]))  # the last row of step 200 is lost
    before = metrics.read_bytes()
    with pytest.raises(checkpoint.MetricsMismatch, match="is intact, but .* no longer starts with the 6 rows"):
        _ckpts(tmp_path).restore(abstract_state, log=print)
    assert _ckpts(tmp_path).steps() == [100, 200] and metrics.read_bytes() == before
    assert not (tmp_path / checkpoint.DAMAGED_DIR).exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(config=CONFIG.replace(lam=0.05)), "lam (checkpoint 0.2, run 0.05)"),
    (dict(seeds=3), "seeds (checkpoint 2, run 3)"),
])
def test_checkpoint_of_another_run_refused(tmp_path, abstract_state, kwargs, message):
    _save_steps(tmp_path, abstract_state, [100])
    with pytest.raises(IncompatibleCheckpoint, match="written for another run") as e:
        _ckpts(tmp_path, **kwargs).restore(abstract_state)
    assert message in str(e.value)
    assert _ckpts(tmp_path).steps() == [100]  # refused, never deleted


def test_checkpoint_of_another_version_refused(tmp_path, abstract_state, monkeypatch):
    _save_steps(tmp_path, abstract_state, [100])
    monkeypatch.setattr(magejax, "__version__", "9.9.9")
    with pytest.raises(IncompatibleCheckpoint, match="written by magejax 0.1.0 .*this is magejax 9.9.9"):
        _ckpts(tmp_path).restore(abstract_state)


def test_changed_source_code_warns(tmp_path, abstract_state, monkeypatch):
    states = _save_steps(tmp_path, abstract_state, [100])
    monkeypatch.setattr(checkpoint, "source_digest", lambda: "edited")
    logs = []
    state, _ = _ckpts(tmp_path).restore(abstract_state, log=logs.append)
    _assert_identical(state, states[100])  # still restored: the state itself is valid
    assert len(logs) == 1 and "other source code" in logs[0] and "may not be bit-identical" in logs[0]
    # Only looked at (eval, render), no resume: nothing to warn about.
    logs.clear()
    state, _ = _ckpts(tmp_path).restore(abstract_state, log=logs.append, to_resume=False)
    _assert_identical(state, states[100])
    assert logs == []


def _edit_meta(step_dir: Path, edit) -> None:
    """Change the saved `meta` JSON of one checkpoint as a user with an editor would: still valid JSON."""
    path = step_dir / "meta" / "metadata"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit", [
    lambda m: m["config"].update(lam=0.05),        # looks like another run's checkpoint
    lambda m: m.update(seeds=3),
    lambda m: m["progress"].update(env_step=150),  # looks like another position
])
def test_edited_metadata_is_damage_and_falls_back(tmp_path, abstract_state, edit):
    states = _save_steps(tmp_path, abstract_state, [100, 200])
    _edit_meta(tmp_path / checkpoint.CHECKPOINT_DIR / "200", edit)
    logs = []
    state, progress = _ckpts(tmp_path).restore(abstract_state, log=logs.append)
    assert progress.env_step == 100
    _assert_identical(state, states[100])
    assert "metadata changed after it was written" in logs[0]
    assert (tmp_path / checkpoint.DAMAGED_DIR / "200" / "meta").is_dir()


def test_checkpoint_without_a_meta_digest_is_still_checked(tmp_path, abstract_state):
    """Written before the digest existed: restored when it matches the run, refused when it does not."""
    states = _save_steps(tmp_path, abstract_state, [100])
    _edit_meta(tmp_path / checkpoint.CHECKPOINT_DIR / "100", lambda m: m.pop("meta_sha256"))
    state, _ = _ckpts(tmp_path).restore(abstract_state, log=print)
    _assert_identical(state, states[100])
    with pytest.raises(IncompatibleCheckpoint, match=r"lam \(checkpoint 0.2, run 0.05\)"):
        _ckpts(tmp_path, config=CONFIG.replace(lam=0.05)).restore(abstract_state)


def test_a_config_field_added_later_compares_as_its_default(tmp_path, abstract_state):
    """A checkpoint saved before a Config field existed ran with (what is now) its default."""
    states = _save_steps(tmp_path, abstract_state, [100])
    field = "normalize_obs"  # a real field; the checkpoint is made to look older than it
    default = configs.Config.__dataclass_fields__[field].default
    assert getattr(CONFIG, field) == default

    def older(meta):
        meta["config"].pop(field)
        meta["meta_sha256"] = checkpoint.meta_digest(meta)  # as that older magejax wrote it
    _edit_meta(tmp_path / checkpoint.CHECKPOINT_DIR / "100", older)
    state, _ = _ckpts(tmp_path).restore(abstract_state, log=print)
    _assert_identical(state, states[100])
    with pytest.raises(IncompatibleCheckpoint, match=f"{field} \\(checkpoint {default}, run {not default}\\)"):
        _ckpts(tmp_path, config=CONFIG.replace(**{field: not default})).restore(abstract_state)


def test_corrupt_is_a_checkpoint_error():
    assert issubclass(CorruptCheckpoint, checkpoint.CheckpointError)


# ------------------------------------------------------------------------------ end to end (CLI)

RUN = ["train", "--preset", "tiny", "--seeds", "2", "--steps", "400", "--eval-every", "100",
       "--checkpoint-every", "100", "--quiet"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Subprocess environment: a shared persistent compilation cache, so only the first run
    compiles (the same program gives the same executable, so exactness is unaffected)."""
    return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax-cache")),
                JAX_PLATFORMS="cpu")


def _magejax(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "magejax.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _run(args, env) -> str:
    proc = _magejax(args, env)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run, every checkpoint kept."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    _run(RUN + ["--keep", "5", "--out", str(out)], env)
    return out


def _final_hash(run_dir) -> str:
    return json.loads((run_dir / "summary.json").read_text())["final_state_sha256"]


def _assert_same_run(run_dir, reference):
    assert (run_dir / metrics_io.METRICS_FILE).read_bytes() == (reference / metrics_io.METRICS_FILE).read_bytes()
    assert _final_hash(run_dir) == _final_hash(reference)


def _finished(ckpt_dir: Path) -> list[Path]:
    return [p for p in ckpt_dir.iterdir() if p.name.isdigit()] if ckpt_dir.is_dir() else []


def _saving(ckpt_dir: Path) -> bool:
    """A save in progress: orbax writes into `<step>.orbax-checkpoint-tmp` and renames at the end."""
    return ckpt_dir.is_dir() and any(".orbax-checkpoint-tmp" in p.name for p in ckpt_dir.iterdir())


@pytest.mark.parametrize("moment", ["after_first_checkpoint", "mid_save"])
def test_sigkill_and_resume_is_exact(tmp_path, env, reference, moment):
    out = tmp_path / "killed"
    proc = _magejax(RUN + ["--out", str(out)], env)
    ckpt_dir = out / checkpoint.CHECKPOINT_DIR
    if moment == "after_first_checkpoint":
        # An arbitrary moment shortly after: mid-chunk, mid-metrics-write or mid-save.
        trigger = lambda: bool(_finished(ckpt_dir))
        delay = random.uniform(0.0, 0.5)
    else:
        # The hardest moment: rows of the newest evaluation written, their checkpoint half-saved.
        trigger = lambda: bool(_finished(ckpt_dir)) and _saving(ckpt_dir)
        delay = 0.0
    deadline = time.monotonic() + 600
    while not trigger():
        assert proc.poll() is None, f"run ended before the kill: {proc.communicate()[1]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()  # it really was cut short

    err = _run(["train", "--resume", str(out)], env)
    assert "resuming" in err
    _assert_same_run(out, reference)
    assert json.loads((out / "summary.json").read_text())["resumed_from_env_step"] >= 100
    assert not _saving(ckpt_dir)  # the half-written save was cleaned up


def _drop_checkpoints(ckpt_dir: Path, steps):
    for step in steps:
        shutil.rmtree(ckpt_dir / str(step))


def _corrupt_newest(ckpt_dir: Path, _):
    _overwrite(_largest_file(ckpt_dir / "400" / "state"))


@pytest.mark.parametrize("damage, resumed_from, message", [
    # Killed after writing the rows of steps 300 and 400 but before checkpointing them: those
    # rows are cut off and rewritten identically.
    (lambda d, _: _drop_checkpoints(d, [300, 400]), 200, "resuming"),
    (_corrupt_newest, 300, "falling back to the one at env step 300"),
])
def test_resume_rewrites_rows_after_checkpoint(tmp_path, env, reference, damage, resumed_from, message):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    for name in ("summary.json", "curve.png"):
        (out / name).unlink()
    damage(out / checkpoint.CHECKPOINT_DIR, None)
    err = _run(["train", "--resume", str(out)], env)
    assert message in err
    _assert_same_run(out, reference)
    assert json.loads((out / "summary.json").read_text())["resumed_from_env_step"] == resumed_from


def test_resume_of_finished_run_changes_nothing(tmp_path, env, reference):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    _run(["train", "--resume", str(out)], env)
    _assert_same_run(out, reference)


def test_resume_refuses_checkpoint_of_another_run(tmp_path, reference, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    doc = json.loads((out / "config.json").read_text())
    doc["run"]["seed"] = 1  # config.json now describes another run than its checkpoints
    (out / "config.json").write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--resume", str(out), "--quiet"])  # refused before any compilation
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("magejax: error: --resume") and "written for another run" in err
    assert "seed (checkpoint 0, run 1)" in err
    assert sorted(p.name for p in _finished(out / checkpoint.CHECKPOINT_DIR)) == ["100", "200", "300", "400"]


def test_resume_without_a_usable_checkpoint_refuses_and_changes_nothing(tmp_path, env, reference):
    """Every checkpoint gone: `--resume` exits 2 with one line; metrics.jsonl is not truncated."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    _drop_checkpoints(out / checkpoint.CHECKPOINT_DIR, [100, 200, 300, 400])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = _magejax(["train", "--resume", str(out), "--quiet"], env)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 2 and err.count("\n") == 1
    assert err.startswith(f"magejax: error: --resume {out}: no usable checkpoint to resume from")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
