"""The install check: `python -m build` makes a wheel that installs into a clean venv, whose
`magejax train --preset tiny` runs from outside the source tree.

The wheel's dependencies come from PyPI under requirements.lock as constraints: pip resolves the
wheel's own ranges (so a range that refuses the locked versions fails here) and takes the wheels
from its cache, filled by `make install`, so the install is quick."""
import json
import math
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, (f"{cmd} exited {proc.returncode}\n"
                                  f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def env_dir(tmp_path):
    # The venv takes ~850 MB, and pytest keeps the last three sessions' tmp_path.
    yield tmp_path / "venv"
    shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def test_wheel_installs_into_a_clean_venv_and_trains(tmp_path, env_dir):
    # Plain `python -m build`: the sdist, then the wheel built from the unpacked sdist, so a file
    # missing from the sdist fails here too and the checkout gets no build/ folder.
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", dist, REPO])
    (wheel,) = dist.glob("magejax-*.whl")

    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    py = bin_dir / "python"
    # --no-compile: byte-compiling every installed module took half of the install's time; the
    # run below compiles only what it imports.
    _run([py, "-m", "pip", "install", "-q", "--no-compile", "-c", REPO / "requirements.lock", wheel])
    _run([py, "-m", "pip", "check"])

    # Outside the checkout, with no PYTHONPATH, so only the installed copy can be imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([py, "-c", "import magejax; print(magejax.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).is_relative_to(env_dir), where

    out = work / "run"
    _run([bin_dir / "magejax", "train", "--preset", "tiny", "--env", "pendulum", "--algo", "mage",
          "--seeds", "1", "--quiet", "--out", out], cwd=work, env=env)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # The tiny preset evaluates at the start and every 100 of its 200 steps: one row each (1 seed).
    assert [row["env_step"] for row in rows] == [0, 100, 200], rows
    assert all(math.isfinite(row["eval_return"]) for row in rows), rows
