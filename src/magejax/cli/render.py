"""`magejax render RUN_DIR --out FILE`: a video (MP4 or GIF, by FILE's suffix) of one episode of a
run's trained deterministic actor, from its newest good checkpoint.

`--seed-index I` (default 0) picks the run seed to film; `--seed S` (default 0) the episode, the
same way as in `magejax eval`: the video shows the episode that `magejax eval --episodes 1 --seed S`
scores for that seed, so both report the same return. Pendulum and CartPole swing-up are drawn
with matplotlib, Brax environments by MuJoCo's offscreen renderer (EGL without a display: see
`magejax.rendering.headless_gl`). Bad input (no checkpoint, an output that cannot be written, an
unknown format, a seed index outside the run) is one `magejax: error:` line and exit 2; no OpenGL
to render with is one line and exit 1.
"""
from __future__ import annotations

import sys
from pathlib import Path

from magejax.cli.args import UsageError
from magejax.cli.evaluate import check_seed, read_run, restore
from magejax.rendering import video


def check_output(out: Path, width: int, height: int) -> None:
    """Format, size and folder of the video to write, before any work is done."""
    try:
        video.video_format(out)
    except ValueError as e:
        raise UsageError(f"--out {out}: {e}") from None
    try:
        video.check_size(width, height)
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    try:
        video.check_writable(out)
    except ValueError as e:
        raise UsageError(f"--out {out}: cannot write: {e}") from None


def render(args) -> int:
    out = Path(args.out)
    check_output(out, args.width, args.height)
    check_seed(args.seed)
    run = read_run(args.run_dir)
    if not 0 <= args.seed_index < run.seeds:
        raise UsageError(f"--seed-index: must be in [0, {run.seeds}) (the run has {run.seeds} seed(s)), "
                         f"got {args.seed_index}")

    import jax

    from magejax.rendering import episode, episode_video, mujoco_scene
    from magejax.train import make_train

    trainer = make_train(run.config)
    restored = restore(run, trainer)
    film = episode_video.make_episode_video(trainer, args.width, args.height)
    agent_state = jax.tree.map(lambda x: x[args.seed_index], restored.state.agent)
    try:
        info = film(agent_state, episode.episode_key(args.seed, run.seeds, args.seed_index), out)
    except mujoco_scene.RenderError as e:
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as e:
        reason = getattr(e, "strerror", None) or " ".join(str(e).split()) or type(e).__name__
        raise UsageError(f"--out {out}: cannot write: {reason}") from None
    print(f"video: {info.path} ({info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps; "
          f"seed {args.seed_index} at env step {restored.progress.env_step}, {info.steps} env steps, "
          f"episode return {info.episode_return:.1f}, evaluation seed {args.seed})")
    return 0
