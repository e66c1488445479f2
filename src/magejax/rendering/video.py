"""Writing frames as a video file, with imageio: MP4 (H.264, through the ffmpeg binary that the
`imageio-ffmpeg` package ships) or GIF (Pillow). A failed or interrupted write never leaves half a
video under the target's name.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from magejax.runs import metrics_io

FORMATS = (".mp4", ".gif")
MIN_SIDE, MAX_SIDE = 16, 4096


def video_format(path) -> str:
    """The format of `path` from its suffix ('.mp4' or '.gif', any case); ValueError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown video format {suffix or '(no suffix)'!r}; use {' or '.join(FORMATS)}")
    return suffix


def check_size(width: int, height: int) -> None:
    """ValueError unless both are even (H.264's 4:2:0 colour halves each side) and in [16, 4096]."""
    for name, side in (("width", width), ("height", height)):
        if not (MIN_SIDE <= side <= MAX_SIDE and side % 2 == 0):
            raise ValueError(f"{name}: must be an even number of pixels in [{MIN_SIDE}, {MAX_SIDE}], got {side}")


def check_writable(path) -> Path:
    """OSError-free check that `path` can be created: its folder exists and it is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError("is a directory")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not an existing directory")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"{path.parent} is not writable")
    return path


def write_video(frames: np.ndarray, path, fps: float) -> Path:
    """Write frames (F, H, W, 3) uint8 to `path` (format from its suffix) at `fps` frames per second.

    Raises OSError when the file cannot be written (the encoder's own failures included); the
    target is then untouched (`metrics_io.write_whole`: a temporary sibling with the same suffix,
    by which ffmpeg picks its container, renamed into place when complete)."""
    kind = video_format(path)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    try:
        return metrics_io.write_whole(path, lambda tmp: _encode(frames, tmp, fps, kind))
    except RuntimeError as e:  # imageio-ffmpeg reports a failed ffmpeg (a full disk, ...) this way
        raise OSError(" ".join(str(e).split())) from e


def _encode(frames: np.ndarray, path: Path, fps: float, kind: str) -> None:
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if kind == ".mp4":
        _exec_ffmpeg_directly()
        # yuv420p: the pixel format every player decodes; macro_block_size 2: keep the exact size
        # (`check_size` wants even sides) instead of imageio's default padding to multiples of 16.
        imageio.mimwrite(path, list(frames), format="FFMPEG", fps=fps, codec="libx264",
                         pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error")
    else:
        # GIF stores delays in hundredths of a second; Pillow takes milliseconds.
        iio.imwrite(path, frames, extension=".gif", plugin="pillow", duration=1000.0 / fps, loop=0)


def read_video(path) -> np.ndarray:
    """Every frame of an MP4 or GIF file, decoded: uint8 (F, H, W, 3)."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if video_format(path) == ".gif":
        return iio.imread(path, index=None, plugin="pillow", mode="RGB")
    _exec_ffmpeg_directly()
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return np.stack([frame for frame in reader.iter_data()])  # len(reader) is inf: no list(reader)


def _exec_ffmpeg_directly() -> None:
    """imageio-ffmpeg starts ffmpeg in its own process group (so that Ctrl-C spares it) through a
    preexec_fn, which makes subprocess fork and run Python in the child of this multithreaded (JAX)
    process: JAX warns of deadlocks, and imageio-ffmpeg's own issue #58 is a hang there. Without it
    the child is exec'd at once; Ctrl-C then stops ffmpeg too, and a partial file is removed."""
    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
