"""Which OpenGL backend MuJoCo's offscreen renderer uses (`MUJOCO_GL`), chosen before MuJoCo loads.

MuJoCo reads `MUJOCO_GL` once, when `mujoco` is first imported (Brax imports it), and its default
on Linux is GLFW, which needs a display. magejax renders on machines without one, so it sets
`MUJOCO_GL=egl` first unless the user chose a backend: EGL through Mesa (`libEGL_mesa` with the
llvmpipe software rasteriser of `libgl1-mesa-dri`) renders on the CPU when there is no GPU, and on
the GPU's own EGL where there is one. OSMesa, the older software-only choice, is not used: Mesa
dropped it in release 25.1. `make test` installs Mesa's EGL when it is missing (see the Makefile).
Nothing here imports MuJoCo or JAX.
"""
from __future__ import annotations

import os
import platform
import sys

DEFAULT_BACKEND = "egl"
MESA_EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"  # Debian/Ubuntu package names


def use_default_backend() -> str:
    """Set `MUJOCO_GL=egl` unless it is set or not Linux (elsewhere MuJoCo's own default works).

    Call before anything imports `mujoco`; returns the backend in force ('' for MuJoCo's default)."""
    if platform.system() == "Linux":
        os.environ.setdefault("MUJOCO_GL", DEFAULT_BACKEND)
    return os.environ.get("MUJOCO_GL", "")


def explain_failure(error: Exception) -> str:
    """One line saying why no offscreen GL context could be made and what to do about it."""
    chosen = os.environ.get("MUJOCO_GL", "")
    loaded = getattr(sys.modules.get("mujoco.rendering.classic.gl_context"), "_MUJOCO_GL", chosen)
    reason = " ".join(str(error).split()) or type(error).__name__
    if loaded != chosen:  # mujoco was imported before MUJOCO_GL was set: it kept the old backend
        return (f"MuJoCo was imported with MUJOCO_GL={loaded!r} before magejax chose {chosen!r}; set "
                f"MUJOCO_GL={DEFAULT_BACKEND} in the environment before starting Python ({reason})")
    return (f"cannot create an offscreen OpenGL context with MUJOCO_GL={chosen!r} ({reason}); without "
            f"a display, use MUJOCO_GL={DEFAULT_BACKEND} with Mesa's EGL (Debian/Ubuntu: apt-get install "
            f"{MESA_EGL_PACKAGES}; `make test` installs them when run as root)")
