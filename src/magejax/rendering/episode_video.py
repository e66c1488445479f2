"""A video of one episode of a trained policy: roll out (jitted), draw (host), encode (imageio).

Used by `magejax render` and by `magejax train --video-every`; `make_episode_video` compiles the
rollout once and can then film many states (one per evaluation).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import jax

from magejax.rendering import painters, video
from magejax.rendering.episode import make_rollout


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    steps: int             # env steps in the episode (fewer than its length when it terminated)
    episode_return: float


def make_episode_video(trainer, width: int, height: int) -> Callable[[object, jax.Array, Path], VideoInfo]:
    """`film(agent_state, key, path) -> VideoInfo` for `trainer`'s env and deterministic actor.

    trainer: a `magejax.train.Trainer`; agent_state: one seed's `AgentState` (no seed axis); key:
    the episode's reset key (`episode.episode_key`). Raises ValueError for a bad size, OSError when
    the file cannot be written, `mujoco_scene.RenderError` without OpenGL."""
    video.check_size(width, height)
    rollout = make_rollout(trainer.env, trainer.agent.policy)
    painter = painters.painter(trainer.config.env, trainer.config.env_backend, width, height)

    def film(agent_state, key: jax.Array, path) -> VideoInfo:
        episode = rollout(agent_state, key)
        frames = painters.draw_episode(painter, episode)
        written = video.write_video(frames, path, painter.fps)
        return VideoInfo(path=written, frames=len(frames), width=width, height=height, fps=painter.fps,
                         steps=episode.steps, episode_return=episode.episode_return)

    return film
