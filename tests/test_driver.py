"""The run driver (`magejax.runs.driver`): used from Python as in a notebook, with a progress
callback and an early stop; and an experiment script killed with SIGKILL and run again ends with
exactly the files of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from magejax import configs
from magejax.runs import checkpoint, metrics_io
from magejax.runs import driver, progress

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CONFIG = configs.preset("pendulum", "td3", "tiny", total_steps=300, eval_every=100)


def test_notebook_style_run_with_a_progress_callback_then_resume(tmp_path):
    reports = []
    result = driver.run(CONFIG, tmp_path / "run", seeds=2, progress_fn=reports.append, note=lambda m: None)
    assert [r.env_step for r in reports] == [0, 100, 200, 300] and reports[0].row is None
    assert all(r.seeds == 2 and r.total_steps == 300 for r in reports)
    assert all(r.row["eval_return"].shape == (2,) for r in reports[1:])
    assert reports[-1].train_s > 0 and result.env_step == 300 and not result.stopped_early
    rows = metrics_io.read_metrics(tmp_path / "run")
    assert [r["env_step"] for r in rows] == [0, 0, 100, 100, 200, 200, 300, 300]
    # The rows the callback saw are the rows on disk.
    np.testing.assert_array_equal([r["eval_return"] for r in rows if r["env_step"] == 300],
                                  reports[-1].row["eval_return"])
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 1 + len(rows)
    assert metrics_io.read_config(tmp_path / "run") == CONFIG
    assert result.state.buffer.size.tolist() == [300, 300]
    # Resuming a finished run runs nothing more and changes no row.
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    again = driver.run(CONFIG, tmp_path / "run", seeds=2, resume=True, note=lambda m: None)
    assert again.resumed_from == 300 and (tmp_path / "run" / "metrics.jsonl").read_bytes() == before
    assert checkpoint.state_digest(again.state) == checkpoint.state_digest(result.state)


def test_stop_fn_ends_the_run_early_with_a_checkpoint(tmp_path):
    lines = []
    result = driver.run(CONFIG, tmp_path, seeds=1, stop_fn=lambda step, row: step >= 200,
                        progress_fn=progress.lines(write=lines.append), note=lambda m: None)
    assert result.stopped_early and result.env_step == 200
    assert [r["env_step"] for r in metrics_io.read_metrics(tmp_path)] == [0, 100, 200]
    assert len(lines) == 2 and lines[-1].startswith("step 200/300")
    assert sorted(int(p.name) for p in (tmp_path / checkpoint.CHECKPOINT_DIR).iterdir() if p.name.isdigit()) == [100, 200]


def test_a_run_of_another_config_is_refused_on_resume(tmp_path):
    driver.run(CONFIG, tmp_path, seeds=1, note=lambda m: None)
    with pytest.raises(driver.ResumeRefused, match="config"):
        driver.run(CONFIG.replace(lam=0.5), tmp_path, seeds=1, resume=True, note=lambda m: None)


# ------------------------------------------------------------------- experiments: kill and resume

def _experiment(out: Path, env: dict) -> subprocess.Popen:
    args = [sys.executable, str(EXPERIMENTS / "fig2_sample_efficiency.py"), "--scale", "tiny", "--seeds", "2",
            "--only", "pendulum/mage", "--steps", "400", "--eval-every", "100", "--out", str(out),
            "--compile-cache", env["CACHE"],
            # The reference run beside --out is an equal finished run: without this flag the second
            # script would copy it (conditions.adopt_finished_twin) instead of running and being killed.
            "--no-reuse-across-figures"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _files(run: Path) -> dict:
    """What must be identical: the metrics, the config, and the summary's statistics."""
    summary = json.loads((run / "summary.json").read_text())
    return {"metrics.jsonl": (run / "metrics.jsonl").read_bytes(), "metrics.csv": (run / "metrics.csv").read_bytes(),
            "config.json": (run / "config.json").read_bytes(), "stats": summary["stats"]}


def test_experiment_killed_inside_a_condition_resumes_to_identical_files(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", CACHE=str(tmp_path / "cache"))
    reference = _experiment(tmp_path / "reference", env)
    _, err = reference.communicate(timeout=900)
    assert reference.returncode == 0, err

    out = tmp_path / "killed"
    proc = _experiment(out, env)
    ckpt_dir = out / "pendulum" / "mage" / checkpoint.CHECKPOINT_DIR
    deadline = time.monotonic() + 600
    while not (ckpt_dir.is_dir() and any(p.name == "200" for p in ckpt_dir.iterdir())):
        assert proc.poll() is None, f"the script ended before the kill: {proc.communicate()[1]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    run = out / "pendulum" / "mage"
    assert not (run / "summary.json").exists()  # it really was cut short, inside the condition
    assert max(r["env_step"] for r in metrics_io.read_metrics(run)) < 400

    again = _experiment(out, env)
    stdout, err = again.communicate(timeout=900)
    assert again.returncode == 0, err
    assert "resuming" in stdout + err
    assert _files(run) == _files(tmp_path / "reference" / "pendulum" / "mage")


def test_an_evaluation_interval_that_does_not_divide_the_run_ends_with_a_shorter_chunk(tmp_path):
    """1200 steps, evaluations every 500: rows at 0, 500, 1000 and 1200 (scaled down: 250 / 100).
    The whole-run scan gives the same rows, and a resume before the short chunk is exact."""
    import jax
    import shutil

    from magejax.train import make_train

    config = CONFIG.replace(total_steps=250)
    assert config.num_chunks == 3 and [config.chunk_end(i) for i in range(3)] == [100, 200, 250]
    result = driver.run(config, tmp_path / "run", seeds=1, note=lambda m: None)
    rows = metrics_io.read_metrics(tmp_path / "run")
    assert [r["env_step"] for r in rows] == [0, 100, 200, 250] and result.env_step == 250
    assert int(result.state.buffer.size[0]) == 250

    trainer = make_train(config)
    np.testing.assert_array_equal(trainer.eval_steps, [0, 100, 200, 250])
    _, scanned = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.PRNGKey(0), 1))
    np.testing.assert_allclose(np.asarray(scanned["eval_return"])[0], [r["eval_return"] for r in rows], rtol=1e-5)

    # Killed after the rows of step 250 but before its checkpoint: the resume redoes the short chunk.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "run", resumed)
    shutil.rmtree(resumed / checkpoint.CHECKPOINT_DIR / "250")
    again = driver.run(config, resumed, seeds=1, resume=True, note=lambda m: None)
    assert again.resumed_from == 200
    assert (resumed / "metrics.jsonl").read_bytes() == (tmp_path / "run" / "metrics.jsonl").read_bytes()
    assert checkpoint.state_digest(again.state) == checkpoint.state_digest(result.state)
