"""Hyper-parameter sweeps in one compiled program (`configs.hyperparams`, `driver.run_sweep`,
`magejax sweep`, the figures' program groups): each value's results equal a separate run's to
float32 rounding, a killed sweep resumes exactly, and bad input is one line and exit 2."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from magejax import configs
from magejax.cli import main
from magejax.configs import hyperparams
from magejax.runs import checkpoint, driver, metrics_io

TINY = configs.preset("pendulum", "mage", "tiny", total_steps=150, eval_every=50)
QUIET = dict(note=lambda m: None)


def _rows(run_dir) -> dict:
    """metric -> (evaluations, seeds) array of a run directory's numeric metrics."""
    rows = metrics_io.read_metrics(run_dir)
    seeds = 1 + max(r["seed"] for r in rows)
    out = {}
    for name in rows[0]:
        if name in ("env_step", "seed"):
            continue
        values = [np.nan if r[name] is None else r[name] for r in rows]
        out[name] = np.asarray(values, np.float64).reshape(-1, seeds)
    return out


def test_stack_and_check_sweepable():
    a, b = TINY.replace(lam=0.1), TINY.replace(lam=1.0, critic_lr=3e-4)
    hp = hyperparams.stack([a, b], seeds=3)
    assert set(hp) == set(hyperparams.TRACED) and hp["lam"].shape == (6,) and hp["lam"].dtype == np.float32
    np.testing.assert_array_equal(hp["lam"], np.float32([0.1, 0.1, 0.1, 1, 1, 1]))
    np.testing.assert_array_equal(hp["critic_lr"], np.float32([1e-4] * 3 + [3e-4] * 3))
    with pytest.raises(configs.ConfigError, match="differ in batch_size, critic_hidden"):
        hyperparams.check_sweepable([a, a.replace(critic_hidden=(8, 8), batch_size=16)])
    with pytest.raises(configs.ConfigError, match="not traced fields: batch_size"):
        hyperparams.bind(a, {"batch_size": 3})


def test_sweep_cli_values_equal_separate_runs(tmp_path, capsys):
    flags = ["--preset", "tiny", "--steps", "150", "--eval-every", "50", "--seeds", "2", "--quiet"]
    assert main(["sweep", *flags, "--lam", "0.1", "1", "--out", str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert "lam0.1  final eval return" in out and "2 values x 2 seed(s) in one program" in out
    sweep = tmp_path / "sweep"
    for name in ("sweep.json", "curves.png", "summary.json"):
        assert (sweep / name).is_file()
    for name, lam in (("lam0.1", 0.1), ("lam1", 1.0)):
        run = sweep / name
        for f in ("config.json", "metrics.jsonl", "metrics.csv", "curve.png", "summary.json"):
            assert (run / f).is_file(), f
        assert metrics_io.read_config(run) == TINY.replace(lam=lam, env="pendulum")
        assert checkpoint.RunCheckpoints(run, {}).steps() == [50, 100, 150]
    # The second value against a separate run with its λ as a constant: float32 rounding apart.
    assert main(["train", *flags, "--lam", "1", "--out", str(tmp_path / "single")]) == 0
    swept, single = _rows(sweep / "lam1"), _rows(tmp_path / "single")
    assert swept.keys() == single.keys()
    for name in ("eval_return", "critic_loss", "td_action_grad_norm", "actor_loss", "model_nll"):
        np.testing.assert_allclose(swept[name], single[name], rtol=1e-4, equal_nan=True, err_msg=name)
    # ... and λ was used: the two values did not train alike.
    assert not np.allclose(_rows(sweep / "lam0.1")["critic_loss"][1:], swept["critic_loss"][1:])
    summary = json.loads((sweep / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["lam0.1", "lam1"] and summary["programs"] == 1


def test_a_sweep_stopped_and_resumed_equals_an_uninterrupted_one(tmp_path):
    values = [TINY.replace(lam=0.1), TINY.replace(lam=1.0)]
    dirs = lambda root: [tmp_path / root / "a", tmp_path / root / "b"]
    whole = driver.run_sweep(values, dirs("whole"), seeds=2, **QUIET)
    assert [r.env_step for r in whole] == [150, 150]
    stopped = driver.run_sweep(values, dirs("cut"), seeds=2, stop_fn=lambda step, row: step >= 100, **QUIET)
    assert all(r.stopped_early and r.env_step == 100 for r in stopped)
    # A kill between the two values' saves: the second has no checkpoint at 100, so the first
    # goes back to 50 with it (its row at 100 cut, its checkpoint at 100 removed).
    second = checkpoint.RunCheckpoints(dirs("cut")[1], {})
    second._manager.delete(100)
    second.close()
    notes = []
    resumed = driver.run_sweep(values, dirs("cut"), seeds=2, resume=True, note=notes.append)
    assert any("going back to its checkpoint at 50" in n for n in notes)
    assert [r.resumed_from for r in resumed] == [50, 50]
    for w, c, a, b in zip(dirs("whole"), dirs("cut"), whole, resumed):
        assert (w / "metrics.jsonl").read_bytes() == (c / "metrics.jsonl").read_bytes()
        assert checkpoint.state_digest(a.state) == checkpoint.state_digest(b.state)


@pytest.mark.parametrize("flags, message", [
    (["--lam", "0.1", "-1"], "lam: λ must be >= 0, got -1.0"),
    ([], "sweep: give one or more values to at least one of --lam"),
    (["--lam", "0.1", "0.1"], "--lam: a value is given twice: 0.1 0.1"),
    (["--lam", "0.1", "--critic-lr", "0", "1e-4"], "critic_lr: must be > 0, got 0.0"),
    (["--lam", "0.1", "--seeds", "0"], "--seeds: must be >= 1, got 0"),
])
def test_bad_sweep_input_exits_2_with_one_line(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--preset", "tiny", *flags, "--out", str(tmp_path / "s")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "s").exists()


def test_sweep_refuses_a_non_empty_out_and_a_resume_of_something_else(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mine.txt").write_text("keep")
    for argv, message in (
            (["sweep", "--lam", "0.1", "1", "--out", str(tmp_path / "s")], "directory exists and is not empty"),
            (["sweep", "--resume", str(tmp_path / "s")], "not a readable sweep directory"),
            (["sweep", "--resume", str(tmp_path / "s"), "--lam", "0.2"], "drop --lam")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert os.listdir(tmp_path / "s") == ["mine.txt"]


def test_unwritable_sweep_out(tmp_path, capsys):
    (tmp_path / "file").write_text("x")  # a file where a directory is needed: unwritable even for root
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--preset", "tiny", "--lam", "0.1", "1", "--out", str(tmp_path / "file" / "s")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "cannot create run directory" in err, err


def test_figure_conditions_that_differ_only_in_traced_values_share_one_program():
    import importlib
    import sys

    from magejax.experiments import figures

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    fig8 = importlib.import_module("fig8_lambda_sweep")

    conds = fig8.conditions("tiny")
    groups = figures.program_groups(conds, seeds=2)
    assert [[c.name for c in g] for g, _ in groups] == [
        ["pendulum/mage-lam0.05", "pendulum/mage-lam0.1", "pendulum/mage-lam0.2", "pendulum/mage-lam1"],
        ["pendulum/dyna"]]
    assert len(figures.program_groups(conds, seeds=2, separately=True)) == 5
