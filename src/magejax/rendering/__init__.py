"""Videos of trained policies (`magejax render`, `magejax train --video-every`).

  episode.py          one episode rolled out under jit, its simulator states kept (`make_rollout`)
  painters.py         which painter draws an env, its time step, frames per second
  classic_control.py  Pendulum and CartPole swing-up, drawn with matplotlib
  mujoco_scene.py     the Brax suite, drawn by MuJoCo's offscreen renderer from `qpos`
  headless_gl.py      the OpenGL backend MuJoCo renders with without a display (EGL)
  video.py            MP4 / GIF files with imageio (and imageio-ffmpeg's ffmpeg)
  episode_video.py    all of it: rollout, frames, file
"""
