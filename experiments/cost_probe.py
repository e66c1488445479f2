"""Measure what a figure's conditions cost on this machine, without running them.

For each condition of `SCRIPT` at `--scale` (default cpu): compile its vmapped chunk, run the
chunks inside the random warm-up (not timed), then time `--chunks` chunks (default 1) of full
training and report compile seconds and milliseconds per env step for all seeds together —
both wall-clock and this process's CPU time, which on a busy shared machine is the better
guess of the wall time on an idle one — the cost of the figure's per-evaluation probe if it
has one, and the estimated time of the whole script, Σ (compile + total_steps × per-step +
evaluations × probe): an upper bound, since warm-up steps cost less than training steps.
Nothing is written except one JSON line per condition on stdout.

    python experiments/cost_probe.py fig2_sample_efficiency --only pendulum/mage
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path


def probe(cond, seeds: int, chunks: int, extra=None) -> dict:
    import jax
    import jax.numpy as jnp

    from magejax.train import make_train

    config = cond.config()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    trainer = make_train(config)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state, _ = jax.jit(jax.vmap(trainer.start))(keys)
    run = jax.jit(jax.vmap(trainer.run_chunk, in_axes=(0, None))).lower(state, jnp.int32(0)).compile()
    compile_wall, compile_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    # Untimed: the chunks that end inside the random warm-up (few or no agent updates).
    first = -(-config.warmup_steps // config.eval_every)  # ceil: the first chunk after warm-up
    for i in range(first):
        state, row = run(state, jnp.int32(i))
    jax.block_until_ready(row)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    for i in range(first, first + chunks):
        state, row = run(state, jnp.int32(i))
    jax.block_until_ready(row)
    steps = chunks * config.eval_every
    per_step_wall = (time.perf_counter() - wall1) / steps
    per_step_cpu = (time.process_time() - cpu1) / steps
    probe_cpu = probe_compile_cpu = 0.0
    if extra is not None:  # the figure's per-evaluation metric: compile once, then time one call
        fn = jax.jit(jax.vmap(extra(trainer)))
        probe_keys = jax.random.split(jax.random.PRNGKey(1), seeds)
        cpu2 = time.process_time()
        jax.block_until_ready(fn(state, probe_keys))
        probe_compile_cpu = time.process_time() - cpu2
        cpu3 = time.process_time()
        jax.block_until_ready(fn(state, probe_keys))
        probe_cpu = time.process_time() - cpu3
    estimate = compile_cpu + probe_compile_cpu + config.total_steps * per_step_cpu + config.num_chunks * probe_cpu
    return {"condition": cond.name, "seeds": seeds, "total_steps": config.total_steps,
            "compile_wall_s": round(compile_wall, 1), "compile_cpu_s": round(compile_cpu, 1),
            "ms_per_step_wall": round(1000 * per_step_wall, 2), "ms_per_step_cpu": round(1000 * per_step_cpu, 2),
            "probe_compile_cpu_s": round(probe_compile_cpu, 1), "probe_cpu_s": round(probe_cpu, 3),
            "estimate_cpu_s": round(estimate),
            "load_average": float(Path("/proc/loadavg").read_text().split()[0])}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("script", help="experiment script name, e.g. fig2_sample_efficiency")
    p.add_argument("--scale", default="cpu", choices=("tiny", "cpu", "paper"))
    p.add_argument("--seeds", type=int, help="default: the figure's for the scale")
    p.add_argument("--chunks", type=int, default=1, help="timed chunks per condition")
    p.add_argument("--only", nargs="+", metavar="TEXT")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    figure = importlib.import_module(args.script).FIGURE
    total = 0.0
    for cond in figure.conditions(args.scale):
        if args.only and not any(s in cond.name for s in args.only):
            continue
        result = probe(cond, args.seeds or cond.seeds or figure.seeds[args.scale], args.chunks, figure.probe)
        total += result["estimate_cpu_s"]
        print(json.dumps(result), flush=True)
    print(json.dumps({"script": args.script, "scale": args.scale, "estimate_cpu_s_total": round(total)}))


if __name__ == "__main__":
    main()
