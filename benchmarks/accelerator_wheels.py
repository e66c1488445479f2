#!/usr/bin/env python
"""Bring magejax's missing packages to an accelerator machine that has JAX but no network.

The accelerator machines have Python 3.12 with JAX (CUDA), flax, optax, chex and orbax installed,
but not brax, mujoco or the rest of what magejax imports, and they cannot download anything. So:

    python benchmarks/accelerator_wheels.py download accelerator/wheels     # here, with network
    python benchmarks/accelerator_wheels.py install accelerator/wheels /tmp/site   # there

`download` fetches CPython 3.12 manylinux x86_64 wheels, at the versions in requirements.lock, of
the packages below. `install` installs, with `--no-deps` into a target folder (then put it first
on PYTHONPATH beside `src`), only those whose distribution is not installed already: the
machine's own JAX stack is never replaced. `accelerator/` is ignored by git; carry it to the
device with the working tree.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What magejax imports (directly or through brax and mujoco) beyond the machine's JAX stack, plus
# pytest for the gradient tests. Not imageio-ffmpeg: rendering is not part of the check, and its
# bundled ffmpeg alone is larger than all of these together.
PACKAGES = ("brax", "mujoco", "mujoco-core", "mujoco-mjx", "glfw", "pyopengl", "jaxopt", "trimesh",
            "ml-collections", "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pillow",
            "pyparsing", "python-dateutil", "tqdm", "imageio", "pytest", "pluggy", "iniconfig")


def locked_versions() -> dict[str, str]:
    """name -> version of every `name==version` line of requirements.lock."""
    text = (REPO / "requirements.lock").read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", text, re.M)}


def download(folder: Path) -> None:
    versions = locked_versions()
    missing = [p for p in PACKAGES if p not in versions]
    if missing:
        sys.exit(f"accelerator_wheels: not in requirements.lock: {', '.join(missing)}")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none",
           "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
           "--platform", "manylinux2014_x86_64", "--platform", "any", "-d", str(folder)]
    subprocess.run(cmd + [f"{p}=={versions[p]}" for p in PACKAGES], check=True)
    total = sum(f.stat().st_size for f in folder.glob("*.whl"))
    print(f"accelerator_wheels: {len(list(folder.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {folder}")


def _distribution(wheel: Path) -> str:
    return wheel.name.split("-")[0].replace("_", "-").lower()


def install(folder: Path, target: Path) -> None:
    wheels, present = [], []
    for wheel in sorted(folder.glob("*.whl")):
        try:
            present.append(f"{_distribution(wheel)} {importlib.metadata.version(_distribution(wheel))}")
        except importlib.metadata.PackageNotFoundError:
            wheels.append(wheel)
    print(f"accelerator_wheels: already installed, kept: {', '.join(present) or 'none'}")
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        "--target", str(target)] + [str(w) for w in wheels], check=True)
    print(f"accelerator_wheels: installed into {target}: {', '.join(_distribution(w) for w in wheels) or 'nothing'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch the wheels (needs network)")
    d.add_argument("folder", type=Path)
    i = sub.add_parser("install", help="install the wheels whose packages are missing, into a target folder")
    i.add_argument("folder", type=Path)
    i.add_argument("target", type=Path)
    args = p.parse_args()
    download(args.folder) if args.command == "download" else install(args.folder, args.target)


if __name__ == "__main__":
    main()
