#!/usr/bin/env python
"""Brax suite stepping speed: env steps/s per environment × physics backend × batch size.

    python benchmarks/env_bench.py [--envs hopper ant] [--backends generalized mjx]
                                   [--batches 1 256] [--steps 100] [--reps 5] [--out DIR]

For each combination one jitted program runs `--steps` steps of `batch` environments (`vmap`
over a `lax.scan`), with uniform random actions and a reset wherever an episode ends, as the
training loop does (a Brax env stepped past its end can produce NaN, which would distort timings).
Reported: `lower_s` (tracing) and `compile_s` (XLA) of that program, and the median, p10 and p90
of `--reps` timed calls after one untimed call; `steps_per_s` = batch × steps / median.

Writes `<out>/env-bench-<UTC timestamp>.json` (rewritten after every combination, `complete`
false until the sweep ends) and prints a table. Combinations an environment does
not support (swimmer runs only on `generalized`) are listed as skipped; a combination that raises
is recorded with its error and makes the exit status 1. Run the full sweep on an idle machine:
compiling one program takes from tens of seconds to minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bench  # noqa: E402  (benchmarks/bench.py: cpu_model, git_info)

from magejax import envs  # noqa: E402
from magejax.envs import brax_specs  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def stepping_program(env, batch: int, steps: int):
    """keys (batch, 2) -> () sum of rewards: `steps` steps of `batch` envs, reset on episode end."""

    def one(key):
        reset_key, key = jax.random.split(key)

        def body(carry, key):
            state, total = carry
            act_key, reset_key = jax.random.split(key)
            action = jax.random.uniform(act_key, (env.action_size,), minval=-1.0, maxval=1.0)
            nxt = env.step(state, action)
            done = jnp.maximum(nxt.terminated, nxt.truncated) > 0
            fresh = env.reset(reset_key)
            nxt = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, nxt)
            return (nxt, total + nxt.reward), None

        init = (env.reset(reset_key), jnp.zeros(()))
        return jax.lax.scan(body, init, jax.random.split(key, steps))[0][1]

    return lambda keys: jnp.sum(jax.vmap(one)(keys))


def measure(name: str, backend: str, batch: int, steps: int, reps: int) -> dict:
    env = envs.make(name, backend)
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    t0 = time.perf_counter()
    lowered = jax.jit(stepping_program(env, batch, steps)).lower(keys)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    times = []
    for i in range(reps):
        keys = jax.random.split(jax.random.PRNGKey(i + 1), batch)
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return dict(env=name, backend=backend, batch=batch, steps=steps, lower_s=t1 - t0, compile_s=t2 - t1,
                median_s=median, p10_s=float(np.percentile(times, 10)), p90_s=float(np.percentile(times, 90)),
                reps=reps, steps_per_s=batch * steps / median)


def table(rows: list[dict]) -> str:
    lines = [f"{'env':<26}{'backend':<13}{'batch':>6}{'steps/s':>12}{'median ms':>11}{'compile s':>11}"]
    for r in rows:
        head = f"{r['env']:<26}{r['backend']:<13}{r.get('batch', ''):>6}"
        if "skipped" in r:
            lines.append(f"{head}  skipped: {r['skipped']}")
        elif "error" in r:
            lines.append(f"{head}  error: {r['error'].splitlines()[-1][:60]}")
        else:
            lines.append(f"{head}{r['steps_per_s']:>12.0f}{1e3 * r['median_s']:>11.1f}"
                         f"{r['lower_s'] + r['compile_s']:>11.1f}")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", choices=brax_specs.NAMES, default=list(brax_specs.NAMES))
    p.add_argument("--backends", nargs="+", choices=brax_specs.BACKENDS, default=list(brax_specs.BACKENDS))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    p.add_argument("--steps", type=int, default=100, help="env steps per call (default 100)")
    p.add_argument("--reps", type=int, default=5, help="timed calls per combination (default 5)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="directory for the JSON file")
    args = p.parse_args(argv)
    if min(args.batches) < 1 or args.steps < 1 or args.reps < 1:
        p.error("--batches, --steps and --reps must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    now = datetime.datetime.now(datetime.timezone.utc)
    header = dict(
        machine=dict(hostname=socket.gethostname(), platform=platform.platform(), cpu_model=bench.cpu_model(),
                     cpu_count=os.cpu_count(), load_average_at_start=list(os.getloadavg())),
        versions=dict(jax=jax.__version__, python=platform.python_version()),
        jax=dict(default_backend=jax.default_backend(), device_kind=jax.devices()[0].device_kind,
                 xla_flags=os.environ.get("XLA_FLAGS")),
        date_utc=now.isoformat(timespec="seconds").replace("+00:00", "Z"), git=bench.git_info(),
        settings=dict(envs=args.envs, backends=args.backends, batches=args.batches, steps=args.steps, reps=args.reps),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"env-bench-{now.strftime('%Y%m%dT%H%M%SZ')}.json"

    def write(complete: bool) -> None:
        """The file is rewritten after every combination, so an interrupted sweep keeps its rows."""
        header["complete"] = complete
        path.write_text(json.dumps(dict(header=header, results=rows), indent=2))

    rows, failed = [], False
    for name in args.envs:
        for backend in args.backends:
            if backend not in envs.backends(name):
                rows.append(dict(env=name, backend=backend, skipped=f"{name} does not run on {backend}"))
                continue
            for batch in args.batches:
                print(f"{name} {backend} batch {batch} ...", file=sys.stderr, flush=True)
                try:
                    rows.append(measure(name, backend, batch, args.steps, args.reps))
                except Exception:  # noqa: BLE001 — record it and go on with the other combinations
                    failed = True
                    rows.append(dict(env=name, backend=backend, batch=batch, error=traceback.format_exc()))
                write(complete=False)
    header["machine"]["load_average_at_end"] = list(os.getloadavg())
    write(complete=True)
    print(table(rows))
    print(f"written: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
