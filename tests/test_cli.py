"""The `magejax` command line: bad input exits 2 with one line, a tiny real run writes a complete
run directory, `--overwrite` replaces one, `--resume` refuses flags that contradict the run, `plot`
overlays runs. Also the run-directory format. (Resuming itself: tests/test_checkpoint.py.)"""
import io
import json
import math

import numpy as np
import pytest

from magejax import cli, configs
from magejax.runs import metrics_io
from magejax.runs import divergence
from magejax.train import METRIC_NAMES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["train", "--preset", "tiny"]


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    return e.value.code


@pytest.mark.parametrize("flags, message", [
    (["--env", "nope"], "env: unknown environment 'nope'; valid: "),  # the list grows with envs
    (["--algo", "ppo"], "algo: unknown algorithm 'ppo'; valid: mage, dyna, td3, td3-utd"),
    (["--algo", "maac", "--reward", "learned"], "reward: maac supports only reward='true' so far"),
    (["--steps", "-5"], "total_steps: must be a positive integer, got -5"),
    (["--batch-size", "2000", "--buffer-size", "1000"], "batch_size: 2000 is larger than the buffer"),
    (["--lam", "-0.1"], "lam: λ must be >= 0, got -0.1"),
    (["--seeds", "0"], "--seeds: must be >= 1, got 0"),
    (["--batch-size", "0"], "batch_size: must be a positive integer, got 0"),
    (["--critic-lr", "0"], "critic_lr: must be > 0, got 0.0"),
    (["--actor-lr=-1e-4"], "actor_lr: must be > 0, got -0.0001"),
    (["--model-lr", "0"], "model_lr: must be > 0, got 0.0"),
    (["--gamma", "1.5"], "gamma: must be in (0, 1], got 1.5"),
    (["--gamma", "0"], "gamma: must be in (0, 1], got 0.0"),
    (["--warmup", "500"], "warmup_steps: 500 is not shorter than the run (200 steps)"),
    (["--eval-every", "400"], "eval_every: 400 is larger than the run (200 steps)"),
    (["--eval-every", "0"], "eval_every: must be a positive integer, got 0"),
    (["--checkpoint-every", "150"],
     "--checkpoint-every: must be a positive multiple of the evaluation interval (100), got 150"),
    (["--checkpoint-every", "0"], "--checkpoint-every: must be a positive multiple"),
    (["--keep", "0"], "--keep: must be >= 1, got 0"),
    (["--lam", "inf"], "lam: must be a finite number, got inf"),
    (["--actor-lr", "nan"], "actor_lr: must be a finite number, got nan"),
    (["--seed", "99999999999999999999999"], "--seed: must be in [0, 2**32), got 99999999999999999999999"),
    (["--seed", "-1"], "--seed: must be in [0, 2**32), got -1"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert _exit_code(TINY + flags + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("magejax: error: ")
    assert message in err
    assert not out.exists()  # bad input never creates the run directory


def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _exit_code(TINY + ["--out", str(blocker / "run")]) == 2  # parent is a file
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create run directory" in err


def test_existing_out_dir_refused_and_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("precious\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert _exit_code(TINY + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "--overwrite" in err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_argparse_errors_exit_2(capsys):
    assert _exit_code(["train", "--preset", "huge", "--out", "x"]) == 2
    assert "--preset: invalid choice: 'huge' (choose from 'paper', 'cpu', 'tiny')" in capsys.readouterr().err
    assert _exit_code(TINY + ["--steps", "many", "--out", "x"]) == 2
    assert _exit_code(["train"]) == 2  # --out or --resume is required
    assert _exit_code(["train", "--out", "x", "--resume", "y"]) == 2  # not both
    assert _exit_code([]) == 2         # a subcommand is required


@pytest.fixture
def saved_run(tmp_path):
    """A run directory as `magejax train` starts it: config.json with the run settings."""
    out = tmp_path / "run"
    out.mkdir()
    config = configs.preset("pendulum", "mage", "tiny", total_steps=400)
    metrics_io.write_config(out, config, {"preset": "tiny", "seeds": 2, "seed": 0,
                                          "checkpoint_every": 100, "keep": 3})
    return out


def test_resume_refuses_conflicting_flags(saved_run, capsys):
    before = {p.name: p.read_bytes() for p in saved_run.iterdir()}
    # Flags that agree with the run (--lam 0.2, --preset tiny) are fine; the others are named.
    argv = ["train", "--resume", str(saved_run), "--steps", "500", "--seeds", "3", "--lam", "0.2",
            "--preset", "tiny", "--algo", "td3"]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "flags conflict with the run's config.json" in err
    for named in ("--steps 500 (the run has total_steps=400)", "--seeds 3 (the run has seeds=2)",
                  "--algo td3 (the run has algo='mage')"):
        assert named in err
    assert "--lam" not in err and "--preset" not in err
    assert {p.name: p.read_bytes() for p in saved_run.iterdir()} == before  # untouched


@pytest.mark.parametrize("flags, message", [
    (["--overwrite"], "--overwrite: cannot be combined with --resume"),
    (["--checkpoint-every", "50"], "--checkpoint-every: must be a positive multiple of the evaluation interval (100)"),
])
def test_resume_bad_flags(saved_run, capsys, flags, message):
    assert _exit_code(["train", "--resume", str(saved_run)] + flags) == 2
    assert message in capsys.readouterr().err


def test_resume_needs_a_run_dir(tmp_path, capsys):
    assert _exit_code(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "not a readable run directory" in capsys.readouterr().err
    metrics_io.write_config(tmp_path, configs.preset("pendulum", "mage", "tiny"))  # no run settings
    assert _exit_code(["train", "--resume", str(tmp_path)]) == 2
    assert "has no run settings" in capsys.readouterr().err


def test_non_finite_detection():
    nan = math.nan
    row = {name: np.array([1.0, 1.0]) for name in METRIC_NAMES}
    row["nonfinite_losses"] = np.zeros(2)
    row["model_nll"] = np.array([nan, nan])       # absent quantity: NaN in every seed is fine
    assert divergence.non_finite(row) == []
    row["critic_loss"] = np.array([1.0, nan])     # NaN beside a finite value: diverged
    row["eval_return"] = np.array([np.inf, 1.0])
    found = {name: list(seeds) for name, seeds in divergence.non_finite(row)}
    assert found == {"eval_return": [0], "critic_loss": [1]}
    # A single seed whose losses went NaN mid-chunk: the means hide it, the count does not.
    row = {name: np.array([1.0]) for name in METRIC_NAMES}
    row["critic_loss"] = np.array([0.5])
    row["nonfinite_losses"] = np.array([3.0])
    assert [(name, list(seeds)) for name, seeds in divergence.non_finite(row)] == [("loss (nonfinite_losses > 0)", [0])]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real MAGE run: tiny preset, 2 seeds, 200 steps, evaluations at 0, 100, 200."""
    out = tmp_path_factory.mktemp("runs") / "mage"
    argv = TINY + ["--seeds", "2", "--steps", "200", "--eval-every", "100", "--out", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        stderr = io.StringIO()  # not a TTY: plain progress lines
        mp.setattr("sys.stderr", stderr)
        assert cli.main(argv) == 0
    return out, stderr.getvalue()


def test_tiny_run_writes_run_dir(tiny_run):
    out, stderr = tiny_run
    assert metrics_io.read_config(out) == configs.preset("pendulum", "mage", "tiny", total_steps=200,
                                                         eval_every=100)
    assert "jax" in json.loads((out / "config.json").read_text())["versions"]

    rows = metrics_io.read_metrics(out)
    assert len(rows) == 3 * 2
    assert sorted((r["env_step"], r["seed"]) for r in rows) == [(s, i) for s in (0, 100, 200) for i in (0, 1)]
    assert all(set(METRIC_NAMES) <= set(r) for r in rows)
    steps, returns = metrics_io.curves_from_metrics(rows)
    assert steps.tolist() == [0, 100, 200] and returns.shape == (2, 3)
    assert np.isfinite(returns).all()

    assert (out / "curve.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 2 and summary["env_steps"] == 200
    assert summary["final_eval_return_mean"] == pytest.approx(returns[:, -1].mean())
    lo, hi = summary["final_eval_return_ci95"]  # bootstrap: within the seeds' range
    assert returns[:, -1].min() <= lo <= summary["final_eval_return_mean"] <= hi <= returns[:, -1].max()
    assert summary["final_eval_return_iqm"] == pytest.approx(returns[:, -1].mean())  # IQM of 2 = mean
    assert summary["wall_time_s"] > 0 and summary["env_steps_per_s_total"] > 0
    assert len(summary["final_state_sha256"]) == 64 and summary["resumed_from_env_step"] is None
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["100", "200"]  # default: every evaluation
    assert json.loads((out / "config.json").read_text())["run"] == {
        "preset": "tiny", "seeds": 2, "seed": 0, "checkpoint_every": 100, "keep": 3}

    progress = stderr.splitlines()
    assert "\r" not in stderr and len(progress) == 2
    assert progress[0].startswith("step 100/200") and progress[1].startswith("step 200/200")


def test_overwrite_replaces_run_files(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("stale")
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints" / "999").mkdir(parents=True)  # a stale checkpoint of the previous run
    argv = TINY + ["--algo", "td3", "--steps", "100", "--eval-every", "100", "--quiet", "--out", str(out)]
    assert _exit_code(argv) == 2  # refused without --overwrite
    assert cli.main(argv + ["--overwrite"]) == 0
    assert metrics_io.read_config(out).algo == "td3"
    assert len(metrics_io.read_metrics(out)) == 2
    assert json.loads((out / "summary.json").read_text())["algo"] == "td3"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["100"]
    assert (out / "notes.txt").read_text() == "mine"  # files that are not ours are left alone


def test_plot_overlays_runs(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    png = tmp_path / "both.png"
    assert cli.main(["plot", str(out), str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert _exit_code(["plot", str(tmp_path / "missing"), "--out", str(png)]) == 2
    assert "not a readable run directory" in capsys.readouterr().err


def test_metrics_roundtrip_nan_as_null(tmp_path):
    with metrics_io.MetricsWriter(tmp_path) as w:
        w.write_rows(0, {"eval_return": np.array([1.0, 2.0]), "critic_loss": np.array([math.nan, 3.0])})
        w.write_rows(10, {"eval_return": np.array([4.0, 5.0]), "critic_loss": np.array([6.0, 7.0])})
    assert '"critic_loss": null' in (tmp_path / "metrics.jsonl").read_text()
    rows = metrics_io.read_metrics(tmp_path)
    assert math.isnan(rows[0]["critic_loss"])
    steps, values = metrics_io.curves_from_metrics(rows, "critic_loss")
    assert steps.tolist() == [0, 10]
    np.testing.assert_array_equal(values, [[math.nan, 6.0], [3.0, 7.0]])


@pytest.mark.parametrize("out", ["", ".", ".."])
def test_out_may_not_be_the_current_directory_or_a_parent(tmp_path, monkeypatch, capsys, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.json").write_text("mine")  # a user's file, which --overwrite must not touch
    monkeypatch.chdir(work)
    assert _exit_code(TINY + ["--out", out, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the current directory or a parent of it" in err
    assert (work / "config.json").read_text() == "mine" and sorted(p.name for p in work.iterdir()) == ["config.json"]


@pytest.mark.parametrize("field, value, message", [
    ("lam", -1.0, "lam: λ must be >= 0, got -1.0"),
    ("batch_size", 0, "batch_size: must be a positive integer, got 0"),
    ("env", "nowhere", "env: unknown environment 'nowhere'"),
])
def test_resume_of_a_config_json_with_invalid_values_is_one_line(tmp_path, capsys, field, value, message):
    out = tmp_path / "run"
    out.mkdir()
    config = configs.preset("pendulum", "mage", "tiny").to_dict()
    config[field] = value
    (out / "config.json").write_text(json.dumps({"config": config, "run": {"preset": "tiny", "seeds": 1, "seed": 0}}))
    before = (out / "config.json").read_bytes()
    assert _exit_code(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds an invalid config" in err and message in err
    assert (out / "config.json").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["config.json"]


def test_every_metric_is_guarded_not_only_the_losses():
    """TD3 with a critic loss of 1e25 but a non-finite ‖∇ₐQ‖ has diverged; a train_return NaN in one
    seed (its first episode not over yet, with terminations) has not."""
    row = {name: np.array([1.0, 1.0]) for name in METRIC_NAMES}
    row["nonfinite_losses"] = np.zeros(2)
    row["critic_loss"] = np.array([1e25, 1.0])
    row["train_return"] = np.array([math.nan, -3.0])
    assert divergence.non_finite(row) == []
    row["q_action_grad_norm"] = np.array([math.inf, 1.0])
    assert [(name, list(seeds)) for name, seeds in divergence.non_finite(row)] == [("q_action_grad_norm", [0])]
    assert divergence.describe(500, row, divergence.non_finite(row), uses_model=False) == (
        "training diverged at env step 500: seed 0: non-finite q_action_grad_norm")
