"""From an `Episode` to video frames: which painter draws an environment, its time step, and how
many of its states become frames.

Pendulum and CartPole swing-up are drawn with matplotlib (`classic_control`), the Brax suite with
MuJoCo's renderer (`mujoco_scene`). A video plays in real time at no more than `MAX_FPS` frames per
second: an environment stepping faster (CartPole's dt = 0.01 s, hopper's 0.008 s) shows every
k-th state, the smallest k that keeps the rate at or below `MAX_FPS`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import numpy as np

from magejax.envs import brax_specs, cartpole_swingup, pendulum
from magejax.rendering import classic_control
from magejax.rendering.episode import Episode

MAX_FPS = 50.0  # browsers slow GIF frames shorter than 20 ms down to 100 ms


@dataclasses.dataclass(frozen=True)
class Painter:
    """draw(physics (F, ...), captions [F]) -> uint8 (F, height, width, 3); dt: seconds per env step."""

    draw: Callable[[object, list[str]], np.ndarray]
    dt: float

    @property
    def stride(self) -> int:
        """States per frame: 1, or more when the env steps faster than MAX_FPS."""
        return max(1, math.ceil(1.0 / (self.dt * MAX_FPS) - 1e-9))

    @property
    def fps(self) -> float:
        return 1.0 / (self.dt * self.stride)


def painter(env_name: str, backend: str | None, width: int, height: int) -> Painter:
    """The painter of `env_name` (on Brax's `backend`, None for its default) at width × height."""
    if env_name == "pendulum":
        return Painter(lambda physics, captions: classic_control.pendulum_frames(physics, captions, width, height),
                       pendulum.DT)
    if env_name == "cartpole_swingup":
        return Painter(lambda physics, captions: classic_control.cartpole_frames(physics, captions, width, height),
                       cartpole_swingup.DT)
    if env_name in brax_specs.NAMES:
        from magejax.envs import brax_suite
        from magejax.rendering import mujoco_scene

        benv = brax_suite.build(env_name, backend).brax_env
        mj_model = benv.sys.mj_model
        # Pipeline states of every backend carry the generalised positions as `q` (= MuJoCo's qpos).
        return Painter(lambda physics, captions: mujoco_scene.brax_frames(mj_model, physics.q, captions, width, height),
                       float(benv.dt))
    raise ValueError(f"no painter for environment {env_name!r}")


def draw_episode(p: Painter, episode: Episode) -> np.ndarray:
    """Every `p.stride`-th state of `episode` from s_0 on, drawn with the time and the return so
    far as caption. -> uint8 (ceil((T + 1) / stride), height, width, 3)."""
    shown = range(0, episode.steps + 1, p.stride)
    returns = np.concatenate([[0.0], np.cumsum(episode.rewards, dtype=np.float64)])
    captions = [f"{t * p.dt:.2f} s  return {returns[t]:.1f}" for t in shown]
    physics = jax.tree.map(lambda x: np.asarray(x)[:: p.stride], episode.physics)
    return p.draw(physics, captions)
