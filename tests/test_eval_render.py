"""`magejax eval`, `magejax render` and `magejax train --video-every` on real tiny runs: each video is
decoded back and has the expected frame count and size; eval's returns, render's episode and the
videos agree with each other; every bad input is one `magejax: error:` line and exit 2.

Training, and what must match its numbers bit for bit, runs in fresh processes (`python -m
magejax.cli`, as a user runs it) with XLA's quick-compile options (~4x less compile time for these
short programs) and without MUJOCO_GL, so that `render` has to pick the headless OpenGL backend
itself. The rest runs in-process.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from magejax import cli
from magejax.rendering import video
from magejax.runs import metrics_io

# As tests/test_brax_envs.py's FAST_COMPILE, as flags: the subprocesses' programs compile ~4x faster.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
TINY_MPC = ["--mpc-population", "16", "--mpc-elites", "4", "--mpc-iterations", "2", "--mpc-horizon", "2"]
PENDULUM_FRAMES = 201  # s_0 .. s_200: Pendulum never terminates, dt 0.05 s is 20 fps (every state drawn)
VIDEO_LINE = re.compile(r"video: (?P<path>\S+) \((?P<frames>\d+) frames, (?P<w>\d+)x(?P<h>\d+), (?P<fps>[\d.]+) fps; "
                        r"seed (?P<seed>\d+) at env step (?P<step>\d+), (?P<steps>\d+) env steps, "
                        r"episode return (?P<ret>-?[\d.]+), evaluation seed (?P<eval_seed>\d+)\)")
SEED_LINE = re.compile(r"seed (\d+): mean return (-?[\d.]+) \((?:95% CI (-?[\d.]+) \.\. (-?[\d.]+)|one episode: no interval)\)")
OVERALL_LINE = re.compile(r"over (\d+) seed\(s\): mean return (-?[\d.]+) \(95% CI (-?[\d.]+) \.\. (-?[\d.]+)\)")


def _magejax(*argv) -> str:
    """`python -m magejax.cli *argv` in a fresh process with quick compiles; its stdout. It must succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()
    done = subprocess.run([sys.executable, "-m", "magejax.cli", *map(str, argv)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _video_line(stdout: str) -> dict:
    """The fields of render's one line. (Importing mujoco.mjx prints "Failed to import warp" lines
    to stdout on machines without NVIDIA Warp: those are skipped.)"""
    lines = [line for line in stdout.splitlines() if line.startswith("video: ")]
    assert len(lines) == 1, stdout
    match = VIDEO_LINE.fullmatch(lines[0])
    assert match, stdout
    return match.groupdict()


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in argv])
    return e.value.code


def _one_error_line(argv, capsys, code: int = 2) -> str:
    assert _exit_code(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("magejax: error: ") and "Traceback" not in err, err
    return err


def _eval(argv, capsys) -> tuple[str, list[float], float]:
    """In-process `magejax eval`: (header lines, per-seed means, mean over seeds)."""
    assert cli.main(["eval", *map(str, argv)]) == 0
    out = capsys.readouterr().out
    seeds = [float(m.group(2)) for m in SEED_LINE.finditer(out)]
    overall = OVERALL_LINE.search(out)
    return out, seeds, float(overall.group(2)) if overall else float("nan")


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory) -> Path:
    """MAGE-TD3, tiny preset, 2 seeds, 200 steps, evaluations (and checkpoints) at 100 and 200, a
    video at each, and a small CEM planner configured for `eval --eval-mpc`."""
    out = tmp_path_factory.mktemp("runs") / "pendulum"
    _magejax("train", "--preset", "tiny", "--seeds", 2, "--steps", 200, "--eval-every", 100, "--video-every", 100,
             "--quiet", *TINY_MPC, "--out", out)
    return out


def test_video_every_films_every_evaluation_and_render_films_the_same_episode(pendulum_run, tmp_path):
    videos = {p.name: video.read_video(p) for p in sorted((pendulum_run / "videos").iterdir())}
    assert list(videos) == ["env_step_100.mp4", "env_step_200.mp4"]
    for frames in videos.values():
        assert frames.shape == (PENDULUM_FRAMES, 240, 320, 3)
        assert not np.array_equal(frames[0], frames[100])  # the pendulum moves
    assert not np.array_equal(videos["env_step_100.mp4"], videos["env_step_200.mp4"])  # the actor learned

    # The last video is the episode `render` films from the final checkpoint (seed 0, evaluation seed 0).
    line = _video_line(_magejax("render", pendulum_run, "--out", tmp_path / "final.mp4"))
    assert (line["frames"], line["w"], line["h"], line["fps"], line["step"], line["steps"]) == (
        str(PENDULUM_FRAMES), "320", "240", "20", "200", "200")
    np.testing.assert_array_equal(video.read_video(tmp_path / "final.mp4"), videos["env_step_200.mp4"])


def test_eval_prints_per_seed_and_overall_intervals(pendulum_run, capsys):
    out, seeds, overall = _eval([pendulum_run, "--episodes", 4], capsys)
    assert f"{pendulum_run}: mage on pendulum, checkpoint at env step 200 of 200, 2 seed(s)" in out
    assert "4 episode(s) per seed acting with the deterministic actor, evaluation seed 0" in out
    intervals = [tuple(map(float, m.group(2, 3, 4))) for m in SEED_LINE.finditer(out)]
    assert len(intervals) == 2 and all(lo < mean < hi for mean, lo, hi in intervals)
    assert all(-16.3 * 200 <= mean <= 0 for mean in seeds)  # Pendulum's reward is in [-16.3, 0] per step
    _, lo, hi = map(float, OVERALL_LINE.search(out).group(2, 3, 4))
    assert overall == pytest.approx(np.mean(seeds), abs=0.1) and lo < overall < hi

    assert _eval([pendulum_run, "--episodes", 4], capsys)[0] == out  # the same seed replays the same episodes
    assert _eval([pendulum_run, "--episodes", 4, "--seed", 1], capsys)[1] != seeds


def test_eval_with_the_planner(pendulum_run, capsys):
    actor = _eval([pendulum_run, "--episodes", 2], capsys)[1]
    out, planner, _ = _eval([pendulum_run, "--episodes", 2, "--eval-mpc"], capsys)
    assert "acting with the CEM planner in the model (horizon 2, population 16, 4 elites, 2 iterations)" in out
    assert len(planner) == 2 and np.all(np.isfinite(planner)) and planner != actor


def test_render_shows_the_episode_eval_scores(pendulum_run, tmp_path, capsys):
    """`render --seed S --seed-index I` films the episode that `eval --episodes 1 --seed S` scores for seed I."""
    _, returns, _ = _eval([pendulum_run, "--episodes", 1, "--seed", 3], capsys)
    gif = tmp_path / "seed1.gif"
    assert cli.main(["render", str(pendulum_run), "--out", str(gif), "--seed", "3", "--seed-index", "1",
                     "--width", "160", "--height", "120"]) == 0
    line = _video_line(capsys.readouterr().out)
    assert float(line["ret"]) == pytest.approx(returns[1], abs=0.11) and returns[0] != returns[1]
    frames = video.read_video(gif)
    assert frames.shape == (PENDULUM_FRAMES, 120, 160, 3) and int(line["frames"]) == PENDULUM_FRAMES


def test_render_a_brax_env_with_mujoco(tmp_path):
    """Brax's inverted pendulum: MuJoCo's renderer, headless. The reward is 1 per step until the
    pole falls, so the episode's return counts its steps, and the video holds s_0 .. s_T."""
    run = tmp_path / "inverted_pendulum"
    _magejax("train", "--env", "inverted_pendulum", "--algo", "td3", "--preset", "tiny", "--steps", 100,
             "--eval-every", 100, "--eval-episodes", 1, "--quiet", "--out", run)
    line = _video_line(_magejax("render", run, "--out", tmp_path / "ip.mp4", "--width", 160, "--height", 128))
    steps = int(line["steps"])
    assert 1 <= steps <= 1000 and float(line["ret"]) == steps and line["fps"] == "25"  # dt 0.04 s
    frames = video.read_video(tmp_path / "ip.mp4")
    assert frames.shape == (steps + 1, 128, 160, 3) and int(line["frames"]) == steps + 1
    scene = frames[:, 16:]  # below the caption
    assert all(frame.std() > 10 for frame in scene)  # a scene, not a blank frame (about 19 here)
    assert not np.array_equal(scene[0], scene[-1])  # the pole fell


@pytest.fixture
def config_only_run(tmp_path, pendulum_run) -> Path:
    """A run directory whose training never reached a checkpoint: config.json alone."""
    run = tmp_path / "fresh"
    run.mkdir()
    shutil.copy(pendulum_run / metrics_io.CONFIG_FILE, run)
    return run


@pytest.mark.parametrize("command", ["eval", "render"])
def test_no_checkpoint_and_no_run_are_one_line(command, config_only_run, tmp_path, capsys):
    out = ["--out", tmp_path / "v.mp4"] if command == "render" else []
    err = _one_error_line([command, config_only_run, *out], capsys)
    assert f"no checkpoint in {config_only_run / 'checkpoints'}" in err
    assert sorted(p.name for p in config_only_run.iterdir()) == ["config.json"]  # nothing created
    err = _one_error_line([command, tmp_path / "missing", *out], capsys)
    assert "not a readable run directory" in err


def test_damaged_checkpoints_fall_back_then_are_one_line(pendulum_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(pendulum_run, run)

    def damage(step: int) -> None:  # flip bytes in the largest file of the saved state
        path = max((p for p in (run / "checkpoints" / str(step) / "state").rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)
        data = bytearray(path.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 64])
        path.write_bytes(bytes(data))

    damage(200)
    assert cli.main(["eval", str(run), "--episodes", "1"]) == 0
    captured = capsys.readouterr()
    assert "checkpoint at env step 100 of 200" in captured.out
    assert "falling back to the one at env step 100" in captured.err
    damage(100)
    err = _one_error_line(["eval", run], capsys)
    assert f"no usable checkpoint in {run / 'checkpoints'}" in err and "(checkpoint " in err
    assert (run / "damaged_checkpoints" / "100").is_dir()  # moved aside, never deleted


@pytest.mark.parametrize("flags, message", [
    (["--out", "{tmp}/video.avi"], "--out {tmp}/video.avi: unknown video format '.avi'; use .mp4 or .gif"),
    (["--out", "{tmp}/video"], "unknown video format '(no suffix)'"),
    (["--out", "{tmp}/file/video.mp4"], "--out {tmp}/file/video.mp4: cannot write: {tmp}/file is not an existing directory"),
    (["--out", "{tmp}/dir.mp4"], "--out {tmp}/dir.mp4: cannot write: is a directory"),
    (["--out", "{tmp}/v.mp4", "--seed-index", "2"], "--seed-index: must be in [0, 2) (the run has 2 seed(s)), got 2"),
    (["--out", "{tmp}/v.mp4", "--seed-index", "-1"], "--seed-index: must be in [0, 2)"),
    (["--out", "{tmp}/v.mp4", "--width", "15"], "--width: must be an even number of pixels in [16, 4096], got 15"),
    (["--out", "{tmp}/v.gif", "--height", "8"], "--height: must be an even number of pixels in [16, 4096], got 8"),
    (["--out", "{tmp}/v.mp4", "--seed", "-1"], "--seed: must be in [0, 2**32), got -1"),
])
def test_render_bad_input(pendulum_run, tmp_path, capsys, flags, message):
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "dir.mp4").mkdir()
    err = _one_error_line(["render", pendulum_run, *(f.format(tmp=tmp_path) for f in flags)], capsys)
    assert message.format(tmp=tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4", "file"]  # nothing written


@pytest.mark.parametrize("flags, message", [
    (["--episodes", "0"], "--episodes: must be >= 1, got 0"),
    (["--seed", str(2**32)], "--seed: must be in [0, 2**32), got 4294967296"),
])
def test_eval_bad_input(pendulum_run, capsys, flags, message):
    assert message in _one_error_line(["eval", pendulum_run, *flags], capsys)


def test_eval_mpc_needs_a_model(tmp_path, capsys):
    from magejax import configs

    run = tmp_path / "td3"
    run.mkdir()
    metrics_io.write_config(run, configs.preset("pendulum", "td3", "tiny"), {"preset": "tiny", "seeds": 1, "seed": 0})
    err = _one_error_line(["eval", run, "--eval-mpc"], capsys)
    assert "--eval-mpc: test-time MPC plans in the learned model, and algorithm 'td3' has none" in err


def test_video_every_must_meet_an_evaluation(tmp_path, capsys):
    out = tmp_path / "run"
    err = _one_error_line(["train", "--preset", "tiny", "--video-every", "150", "--out", out], capsys)
    assert "--video-every: must be a positive multiple of the evaluation interval (100), got 150" in err
    assert not out.exists()
