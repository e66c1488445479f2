#!/usr/bin/env python
"""Checkpoint cost: size on disk and save/restore time of a paper-size HalfCheetah TrainState, and
the checkpointing overhead on the training rate of a small Pendulum run.

    python benchmarks/checkpoint_bench.py [--quick] [--out benchmarks/results] [--only state overhead]

Writes `<out>/checkpoint-<hostname>-<UTC timestamp>.json` and prints a table.

state: the complete vmapped `TrainState` that `magejax train` checkpoints, at HalfCheetah
dimensions with the paper's sizes (obs 18, action 6, actor 2x384, twin critic 2x384, model
8 members x 4x512, replay buffer 100 000) for 1 and 5 seeds. The HalfCheetah env is not
registered, so the state is assembled from the same pieces `make_train`'s `init` uses
(`Agent.init`, `EnsembleModel.init`, `normalization`, `replay.init`) with the stand-in env of
benchmarks/bench.py; the buffer is full and every float leaf holds random values (incompressible,
as trained weights and real data are). Each repetition saves a new step with
`checkpoint.RunCheckpoints.save` (host copy, sha256 of every leaf, orbax write, synchronous) and
restores the newest with `RunCheckpoints.restore` (orbax read, layout and sha256 checks); the
host copy and the sha256 are also timed alone. Restores read files just written, so they are
mostly served from the page cache: a cold read from disk is slower.

overhead: two `magejax train` runs of Pendulum (tiny networks, paper-size buffer by default),
one checkpointing at every evaluation and one only at the end (a run always checkpoints its end);
from their summary.json: training and checkpoint seconds, and env steps/s with and without the
time spent checkpointing.

`--quick` shrinks everything (tiny networks, 1000-slot buffer, 1 and 2 seeds, 2 repetitions, a
200-step run): it checks the script works; its numbers say nothing about paper sizes.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bench  # noqa: E402  (benchmarks/bench_common.py: report helpers)
from checkpoint_state import bench_state, dir_bytes  # noqa: E402

SCHEMA_VERSION = 1
REPO = Path(__file__).resolve().parent.parent
MEASUREMENTS = ("state", "overhead")


def log(msg: str) -> None:
    print(f"[checkpoint_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ============================================================================ the state
def _train(args_list: list[str], out_dir: Path, cache: Path) -> dict:
    cmd = [sys.executable, "-m", "magejax.cli", "train", *args_list, "--out", str(out_dir),
           "--overwrite", "--quiet"]
    log("$ " + " ".join(cmd))
    # Both runs compile the same program (checkpointing is host-side): the second one reuses it.
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.environ.get("JAX_COMPILATION_CACHE_DIR", str(cache)))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"magejax train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads((out_dir / "summary.json").read_text())


def bench_overhead(args, workdir: Path) -> dict:
    steps, every, seeds = args.loop_steps, args.loop_eval_every, args.loop_seeds
    common = ["--env", "pendulum", "--algo", "mage", "--preset", "tiny", "--seeds", str(seeds),
              "--steps", str(steps), "--eval-every", str(every), "--buffer-size", str(args.loop_buffer_size)]
    out = dict(env="pendulum", algo="mage", preset="tiny", seeds=seeds, env_steps=steps,
               eval_every=every, buffer_size=args.loop_buffer_size, runs={})
    for name, ckpt_every in (("every_evaluation", every), ("end_only", steps)):
        run_dir = workdir / f"overhead-{name}"
        s = _train(common + ["--checkpoint-every", str(ckpt_every), "--keep", "2"], run_dir,
                   workdir / "jax-cache")
        train_s = steps / s["env_steps_per_s_per_seed"]
        checkpoints = steps // ckpt_every
        out["runs"][name] = dict(
            checkpoint_every=ckpt_every, checkpoints=checkpoints, train_s=train_s,
            checkpoint_s=s["checkpoint_time_s"], checkpoint_s_each=s["checkpoint_time_s"] / checkpoints,
            compile_s=s["compile_time_s"], wall_s=s["wall_time_s"],
            checkpoint_bytes=dir_bytes(run_dir / "checkpoints" / str(steps)),
            env_steps_per_s_per_seed_without_checkpoints=steps / train_s,
            env_steps_per_s_per_seed_with_checkpoints=steps / (train_s + s["checkpoint_time_s"]))
        shutil.rmtree(run_dir, ignore_errors=True)
    e, n = out["runs"]["every_evaluation"], out["runs"]["end_only"]
    out["checkpoint_share_of_loop_every_evaluation"] = e["checkpoint_s"] / (e["train_s"] + e["checkpoint_s"])
    out["rate_with_checkpoints_every_vs_end_only"] = (e["env_steps_per_s_per_seed_with_checkpoints"]
                                                      / n["env_steps_per_s_per_seed_with_checkpoints"])
    out["notes"] = ("Two separate runs: their train_s differ by run-to-run noise as well. "
                    "checkpoint_share_of_loop_every_evaluation = checkpoint_s / (train_s + "
                    "checkpoint_s) of the run checkpointing at every evaluation; rate_... < 1 is the "
                    "slowdown of the whole loop against checkpointing only at the end.")
    return out


# ============================================================================ report
def table(results: dict) -> str:
    lines = []
    if (r := results.get("state")) and "error" not in r:
        c = r["config"]
        lines.append(f"state: obs {c['obs_size']} act {c['action_size']}, actor {c['actor_hidden']}, critic "
                     f"{c['critic_hidden']}, model {c['ensemble_size']}x{c['model_hidden']}, buffer {c['buffer_size']}")
        lines.append(f"{'seeds':>5} {'state MB':>9} {'disk MB':>8} {'save s':>7} {'restore s':>9} "
                     f"{'copy s':>7} {'sha256 s':>8}")
        for n, m in r["seeds"].items():
            lines.append(f"{n:>5} {m['state_bytes'] / 1e6:9.1f} {m['disk_bytes'] / 1e6:8.1f} "
                         f"{m['save_s']['median']:7.3f} {m['restore_s']['median']:9.3f} "
                         f"{m['host_copy_s']['median']:7.3f} {m['sha256_s']['median']:8.3f}")
    if (r := results.get("overhead")) and "error" not in r:
        lines.append("")
        lines.append(f"overhead: pendulum mage tiny, {r['seeds']} seeds, {r['env_steps']} steps, "
                     f"evaluation every {r['eval_every']}, buffer {r['buffer_size']}")
        for name, m in r["runs"].items():
            lines.append(f"  {name:<17} {m['checkpoints']:3d} checkpoints, {m['checkpoint_s_each']:.3f} s each; "
                         f"{m['env_steps_per_s_per_seed_without_checkpoints']:.0f} env steps/s/seed without, "
                         f"{m['env_steps_per_s_per_seed_with_checkpoints']:.0f} with checkpoint time")
        lines.append(f"  checkpoints take {100 * r['checkpoint_share_of_loop_every_evaluation']:.1f}% of the loop "
                     f"when saved at every evaluation")
    for name, r in results.items():
        if isinstance(r, dict) and "error" in r:
            lines.append(f"{name}: ERROR {r['error']}")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not paper numbers")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="directory for the JSON file")
    p.add_argument("--only", nargs="+", choices=MEASUREMENTS, metavar="NAME",
                   help=f"run only these measurements: {', '.join(MEASUREMENTS)}")
    p.add_argument("--workdir", help="where checkpoints are written (default: a temporary directory "
                                     "in $TMPDIR; it needs ~2.5x the 5-seed state, ~1.5 GB at paper size)")
    p.add_argument("--seeds", nargs="+", type=int, help="seed counts of the state (default 1 5; quick 1 2)")
    p.add_argument("--reps", type=int, help="saves and restores per seed count (default 5; quick 2)")
    p.add_argument("--buffer-size", type=int, help="replay capacity of the state (default 100000; quick 1000)")
    p.add_argument("--loop-seeds", type=int, help="seeds of the overhead runs (default 5; quick 2)")
    p.add_argument("--loop-steps", type=int, help="env steps of the overhead runs (default 2000; quick 200)")
    p.add_argument("--loop-eval-every", type=int, help="evaluation interval of the overhead runs (default 200; quick 100)")
    p.add_argument("--loop-buffer-size", type=int, help="replay capacity of the overhead runs (default 100000; quick 1000)")
    args = p.parse_args(argv)
    q = args.quick
    for name, full, quick in (("seeds", [1, 5], [1, 2]), ("reps", 5, 2), ("buffer_size", 100_000, 1000),
                              ("loop_seeds", 5, 2), ("loop_steps", 2000, 200), ("loop_eval_every", 200, 100),
                              ("loop_buffer_size", 100_000, 1000)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    selected = set(args.only or MEASUREMENTS)
    now = datetime.datetime.now(datetime.timezone.utc)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    import jaxlib
    import orbax.checkpoint as ocp

    report = dict(
        schema_version=SCHEMA_VERSION,
        header=dict(
            machine=dict(hostname=socket.gethostname(), platform=platform.platform(),
                         python=platform.python_version(), cpu_model=bench.cpu_model(),
                         cpu_count=os.cpu_count(), load_average_at_start=list(os.getloadavg())),
            versions=dict(jax=jax.__version__, jaxlib=jaxlib.__version__,
                          orbax_checkpoint=getattr(ocp, "__version__", None), numpy=np.__version__),
            jax=dict(default_backend=jax.default_backend(), device_count=jax.device_count()),
            date_utc=now.isoformat(timespec="seconds").replace("+00:00", "Z"), git=bench.git_info(),
            settings={k: v for k, v in vars(args).items() if k != "out"}),
        time_unit="s", results={}, wall_s_by_measurement={})
    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tmp := tempfile.mkdtemp(prefix="magejax-ckpt-bench-"))
    t_all = time.perf_counter()
    try:
        for name, fn in (("state", bench_state), ("overhead", bench_overhead)):
            if name not in selected:
                continue
            t0 = time.perf_counter()
            try:
                report["results"][name] = fn(args, workdir)
            except Exception as e:  # noqa: BLE001 — record it and go on
                import traceback
                traceback.print_exc()
                report["results"][name] = dict(error=f"{type(e).__name__}: {e}")
            report["wall_s_by_measurement"][name] = time.perf_counter() - t0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    report["header"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["wall_s"] = time.perf_counter() - t_all
    path = out_dir / f"checkpoint-{socket.gethostname()}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"magejax checkpoint benchmark{' (--quick: small sizes, not paper numbers)' if args.quick else ''}")
    print(table(report["results"]))
    print(f"\nwrote {path} ({report['wall_s']:.0f} s)")
    return 1 if any(isinstance(r, dict) and "error" in r for r in report["results"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
