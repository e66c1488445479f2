"""`magejax train --video-every N`: a video of the policy at every N-th env step's evaluation.

Every evaluation at an env step that is a multiple of N, and the run's last, writes
`RUN_DIR/videos/env_step_<step>.mp4`: one episode of seed 0's deterministic actor, the episode
that `magejax render RUN_DIR --seed 0 --seed-index 0` films from a checkpoint of that step. It is
filmed from the training state in memory (the driver's progress report carries it), so it needs
no checkpoint. A video that cannot be made (no OpenGL for a Brax env, a full disk) is reported in
one line and ends the videos of this session, not the run: they only show what the metrics measure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from magejax.cli.args import VIDEO_DIR, UsageError
from magejax.configs import Config

WIDTH, HEIGHT = 320, 240


def check(every: int | None, config: Config, multihost: bool) -> None:
    """Refuse a `--video-every` that never meets an evaluation, or a multi-host run (where process 0
    does not hold seed 0's state)."""
    if every is None:
        return
    if every <= 0 or every % config.eval_every:
        raise UsageError(f"--video-every: must be a positive multiple of the evaluation interval "
                         f"({config.eval_every}), got {every}")
    if multihost:
        raise UsageError("--video-every: not available in multi-host runs; film a checkpoint with "
                         "`magejax render` instead")


def with_videos(report: Callable | None, config: Config, run_dir: Path, seeds: int, every: int,
                note: Callable[[str], None]) -> Callable:
    """A driver `progress_fn` that calls `report` (may be None) and then films the evaluations due.

    The rollout compiles once, at the first video."""
    import jax

    from magejax.rendering import episode, episode_video
    from magejax.train import make_train

    key = episode.episode_key(0, seeds, 0)
    filming = {"film": None, "failed": False}  # the filming function, built at the first video

    def progress(r) -> None:
        if report is not None:
            report(r)
        due = r.row is not None and (r.env_step % every == 0 or r.env_step == r.total_steps)
        if not due or filming["failed"]:
            return
        path = Path(run_dir) / VIDEO_DIR / f"env_step_{r.env_step}.mp4"
        try:
            if filming["film"] is None:
                filming["film"] = episode_video.make_episode_video(make_train(config), WIDTH, HEIGHT)
            path.parent.mkdir(exist_ok=True)
            # r.state is valid only during this call: the next chunk reuses its buffers.
            filming["film"](jax.tree.map(lambda x: x[0], r.state.agent), key, path)
        except Exception as e:  # noqa: BLE001 — a video is never worth the run
            filming["failed"] = True
            reason = getattr(e, "strerror", None) or " ".join(str(e).split()) or type(e).__name__
            note(f"WARNING: cannot write the video {path}: {reason}; no more videos in this session, "
                 "training goes on")

    if hasattr(report, "close"):
        progress.close = report.close
    return progress
