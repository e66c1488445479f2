"""Frames of Pendulum and CartPole swing-up, drawn with matplotlib on an Agg canvas (no display,
and the caller's pyplot backend is left alone).

One figure per episode: the artists are moved frame by frame and the canvas is read back as RGB,
so a frame costs a redraw, not a new figure. Each frame carries a caption (the painter's caller
puts the time and the return so far there).
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from magejax.envs import cartpole_swingup

DPI = 100


def _figure(width: int, height: int, xlim, ylim):
    """A width × height pixel figure with one frameless axes filling it, showing at least `xlim` ×
    `ylim` with equal scales: the shorter side's range is widened to the frame's aspect ratio."""
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    (cx, cy), (hx, hy) = ((sum(xlim) / 2, sum(ylim) / 2), ((xlim[1] - xlim[0]) / 2, (ylim[1] - ylim[0]) / 2))
    hx, hy = max(hx, hy * width / height), max(hy, hx * height / width)
    ax.set_xlim(cx - hx, cx + hx)
    ax.set_ylim(cy - hy, cy + hy)
    ax.set_axis_off()
    points = min(14.0, max(5.0, height / 30))  # 8 pt at 240 pixels
    label = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=points, family="monospace")
    return canvas, ax, label


def _read(canvas: FigureCanvasAgg, width: int, height: int) -> np.ndarray:
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    if rgb.shape[:2] != (height, width):  # matplotlib rounds the figure size in inches
        raise RuntimeError(f"drew {rgb.shape[1]}x{rgb.shape[0]} pixels, expected {width}x{height}")
    return rgb.copy()


def pendulum_frames(physics, captions: list[str], width: int, height: int) -> np.ndarray:
    """physics: (θ (F,), θ̇ (F,)), θ = 0 upright; one caption per frame. -> uint8 (F, height, width, 3).

    The rod is drawn as gymnasium draws it: tip at (−sin θ, cos θ)."""
    theta = np.asarray(physics[0], np.float64)
    canvas, ax, label = _figure(width, height, (-1.3, 1.3), (-1.3, 1.3))
    (rod,) = ax.plot([], [], color="#cc4c4c", linewidth=6, solid_capstyle="round")
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.85", linewidth=1))  # the tip's path
    ax.plot([0], [0], "o", color="black", markersize=4)
    frames = []
    for t, th in enumerate(theta):
        rod.set_data([0.0, -np.sin(th)], [0.0, np.cos(th)])
        label.set_text(captions[t])
        frames.append(_read(canvas, width, height))
    return np.stack(frames)


def cartpole_frames(physics, captions: list[str], width: int, height: int) -> np.ndarray:
    """physics: (x, ẋ, θ, θ̇), each (F,), θ = 0 upright; one caption per frame. -> uint8 (F, height, width, 3).

    A push towards +x raises θ near the top (θ̈ gains 6 F cos θ / ...): the pole lags behind the
    cart, so positive θ leans it towards −x and its tip is at (x − l sin θ, l cos θ). The track
    ends at ±2.4, where the episode terminates."""
    x, theta = np.asarray(physics[0], np.float64), np.asarray(physics[2], np.float64)
    limit, length = cartpole_swingup.X_THRESHOLD, cartpole_swingup.POLE_LENGTH
    canvas, ax, label = _figure(width, height, (-limit - 0.4, limit + 0.4), (-1.0, 1.0))
    ax.plot([-limit, limit], [0, 0], color="grey", linewidth=1)
    for end in (-limit, limit):
        ax.plot([end, end], [-0.08, 0.08], color="grey", linewidth=2)
    cart = ax.add_patch(Rectangle((0, -0.06), 0.3, 0.12, color="#4c72b0"))
    (pole,) = ax.plot([], [], color="#cc4c4c", linewidth=4, solid_capstyle="round")
    frames = []
    for t in range(len(x)):
        cart.set_x(x[t] - 0.15)
        pole.set_data([x[t], x[t] - length * np.sin(theta[t])], [0.0, length * np.cos(theta[t])])
        label.set_text(captions[t])
        frames.append(_read(canvas, width, height))
    return np.stack(frames)
