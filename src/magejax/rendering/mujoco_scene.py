"""Frames of a Brax environment from its MuJoCo model, with MuJoCo's offscreen `mujoco.Renderer`.

Brax builds every environment from an MJCF model and keeps the compiled `MjModel` in its system
(`sys.mj_model`); each pipeline state's generalised positions `q` are MuJoCo's `qpos` on every
backend. A frame sets `qpos`, runs MuJoCo's forward kinematics and renders, as Brax's own
`brax.io.image` does. Models with a camera named `track` (the locomotion tasks: it follows the
centre of mass) are filmed through it; the others (reacher, pusher, the inverted pendulums) have
fixed scenes and get MuJoCo's default free camera. Without shadows and reflections (see below).
Needs an OpenGL backend: `headless_gl`.
"""
from __future__ import annotations

import copy

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from magejax.rendering import headless_gl

TRACKING_CAMERA = "track"


class RenderError(RuntimeError):
    """No offscreen OpenGL context: the message is one line saying what to install or set."""


def brax_frames(mj_model, qpos: np.ndarray, captions: list[str], width: int, height: int) -> np.ndarray:
    """mj_model: the Brax system's `MjModel`; qpos: (F, nq) positions, one caption per frame.
    -> uint8 (F, height, width, 3)."""
    headless_gl.use_default_backend()  # a no-op once mujoco is imported, hence also at the CLI's start
    import mujoco

    model = copy.copy(mj_model)  # the offscreen buffer is sized below; Brax's own model is left as it is
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    names = [model.camera(i).name for i in range(model.ncam)]
    camera = TRACKING_CAMERA if TRACKING_CAMERA in names else -1
    try:
        renderer = mujoco.Renderer(model, height=height, width=width)
    except Exception as e:  # noqa: BLE001 — each GL backend fails with its own exception types
        raise RenderError(headless_gl.explain_failure(e)) from None
    # Shadows and reflections cost 9x the frame time on a CPU (Mesa's llvmpipe: 0.094 s against
    # 0.011 s per 320x240 halfcheetah frame, measured on the 2-core CPU), for looks only.
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    font = ImageFont.load_default(size=max(10, height // 20))  # 12 px at 240 pixels
    data = mujoco.MjData(model)
    frames = []
    try:
        for q, caption in zip(np.asarray(qpos, np.float64), captions):
            data.qpos[:] = q
            mujoco.mj_forward(model, data)  # positions of bodies, cameras and lights from qpos
            renderer.update_scene(data, camera=camera)
            frame = Image.fromarray(renderer.render())
            ImageDraw.Draw(frame).text((4, 2), caption, fill=(255, 255, 255), font=font)
            frames.append(np.asarray(frame))
    finally:
        renderer.close()
    return np.stack(frames)
