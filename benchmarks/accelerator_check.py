#!/usr/bin/env python
"""The accelerator check: what magejax does on one GPU, in one JSON file, within a time budget.

    python benchmarks/accelerator_check.py --out DIR [--budget-s 660] [--quick]

Steps, in order, each recorded (with its error, if it fails) and skipped once the budget is spent:
1. `device`: JAX's backend, devices and versions.
2. `gradient_tests`: the MAGE gradient tests (tests/test_mage_gradient.py: ∇ₐδ against the paper's
   Eq. 13, the critic gradient against finite differences, ...) run on the device with pytest.
3. `update_step`: one paper-size MAGE-TD3 agent update at the Pendulum and HalfCheetah sizes, under
   every `Config.precision` (f32 = full float32, tf32 = the GPU default, bf16 = bf16 operands with
   float32 accumulation), ms per update, and the f32/tf32 and f32/bf16 ratios.
4. `seed_scaling`: the jitted, vmapped training loop (MAGE-TD3, paper sizes) at 1, 8 and 64 seeds on
   Pendulum and HalfCheetah, env steps per second.
5. `fig2_pendulum`: with the time left, the paper-size Pendulum comparison of Fig. 2, MAGE-TD3,
   Dyna-TD3, TD3 and TD3-UTD, 5 seeds, 10,000 env steps each, through the run driver; a run the
   budget cuts short keeps its evaluations so far (run directories under DIR/fig2_pendulum/).

The JSON is rewritten after every step, so a check killed at its limit still reports what ran.
`--quick` shrinks everything (tiny networks, few steps, 2 seeds, Fig. 2 with MAGE-TD3 and TD3 only,
no HalfCheetah loop: its Brax compilation alone takes minutes) to test the script on a CPU in CI;
its numbers mean nothing. Installing it where JAX is preinstalled: benchmarks/accelerator/README.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

import jax

from bench_common import REPO, Settings, size_problem
from bench_kernels import bench_update_one
from bench_loop import bench_seeds
from magejax import configs

PRECISIONS = configs.PRECISIONS
SIZES = ("pendulum", "halfcheetah")
FIG2_ALGOS = ("mage", "dyna", "td3", "td3-utd")


def _settings(quick: bool) -> Settings:
    return Settings(quick=quick, reps=3 if quick else 20, warmup=2 if quick else 5, matmul_n=256,
                    loop_chunk=50, loop_chunk_halfcheetah=10, seed_chunk=20 if quick else 100,
                    loop_min_reps=2 if quick else 5, loop_max_reps=2 if quick else 5, loop_budget_s=0.0,
                    seeds=(2,) if quick else (1, 8, 64), sizes=SIZES, algos=("mage",))


def device_info() -> dict:
    import jaxlib
    return dict(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
                device_kind=jax.devices()[0].device_kind, jax=jax.__version__, jaxlib=jaxlib.__version__,
                python=sys.version.split()[0])


def gradient_tests(quick: bool) -> dict:
    """tests/test_mage_gradient.py in a child process (same interpreter, same device)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
           str(REPO / "tests" / "test_mage_gradient.py")]
    if quick:
        cmd += ["-k", "eq13 or central_differences"]  # two of them: CI runs the whole file anyway
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    return dict(returncode=p.returncode, passed=p.returncode == 0, summary=lines[-1] if lines else "",
                seconds=time.perf_counter() - t0, output_tail=p.stdout[-3000:] + p.stderr[-2000:])


def update_step(s: Settings) -> dict:
    """ms per MAGE-TD3 update (mean of an actor-and-critic and a critic-only step) per size and precision."""
    out = {}
    for size in SIZES:
        config, env, note = size_problem(size, "mage", s.quick)
        out[size] = dict(problem=note, precisions={})
        for precision in PRECISIONS:
            r = bench_update_one(config.replace(precision=precision), env, s, jax.random.PRNGKey(0), None)
            out[size]["precisions"][precision] = dict(ms_per_update=r["ms_per_update"],
                                                      flops_per_update=r.get("flops", {}).get("per_update_mean"))
        ms = {p: v["ms_per_update"]["median"] for p, v in out[size]["precisions"].items()}
        out[size]["f32_over_tf32"] = ms["f32"] / ms["tf32"]
        out[size]["f32_over_bf16"] = ms["f32"] / ms["bf16"]
    return out


def fig2_pendulum(out_dir: Path, deadline: float, quick: bool) -> dict:
    """Paper-size Pendulum, 4 algorithms × 5 seeds × 10,000 steps, each stopped at the deadline."""
    from magejax.runs import driver, metrics_io

    result = {}
    for algo in FIG2_ALGOS[::2] if quick else FIG2_ALGOS:  # quick: mage and td3, the same code path
        if time.monotonic() > deadline:
            result[algo] = dict(skipped="no time left")
            continue
        config = (configs.preset("pendulum", algo, "tiny").replace(total_steps=200, eval_every=100) if quick
                  else configs.preset("pendulum", algo).replace(total_steps=10_000, eval_every=500))
        run_dir = out_dir / "fig2_pendulum" / algo
        r = driver.run(config, run_dir, seeds=5, seed=0, checkpoint_every=10**9, keep=1,
                       stop_fn=lambda step, row: time.monotonic() > deadline, note=lambda m: None)
        steps, returns = metrics_io.curves_from_metrics(metrics_io.read_metrics(run_dir))
        result[algo] = dict(env_steps=r.env_step, stopped_by_budget=r.stopped_early, train_s=r.train_s,
                            compile_s=r.compile_s, eval_steps=steps.tolist(),
                            eval_return_per_seed=returns.tolist())  # (seeds, evaluations)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="folder for accelerator_check.json and the runs")
    p.add_argument("--budget-s", type=float, default=660.0, help="stop starting new work after this long")
    p.add_argument("--quick", action="store_true", help="CI-sized, to test the script; numbers mean nothing")
    args = p.parse_args()
    t0 = time.monotonic()
    deadline = t0 + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "accelerator_check.json"
    s = _settings(args.quick)
    report = dict(quick=args.quick, budget_s=args.budget_s, steps={})
    if args.quick:  # the same code path as Pendulum's; compiling the Brax loop alone takes minutes on a CPU
        report["steps"]["seed_scaling_halfcheetah"] = dict(skipped="--quick (the Pendulum step runs the same code)")

    def save():
        report["elapsed_s"] = time.monotonic() - t0
        path.write_text(json.dumps(report, indent=1) + "\n")

    steps = [("device", device_info), ("gradient_tests", lambda: gradient_tests(args.quick)),
             ("update_step", lambda: update_step(s))]
    steps += [(f"seed_scaling_{size}", lambda size=size: bench_seeds(s, jax.random.PRNGKey(0), size)) for size in SIZES
              if not (args.quick and size == "halfcheetah")]
    steps += [("fig2_pendulum", lambda: fig2_pendulum(args.out, deadline, args.quick))]
    for name, step in steps:
        if time.monotonic() > deadline:
            report["steps"][name] = dict(skipped="budget spent")
            continue
        t = time.monotonic()
        print(f"[accelerator_check {time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)
        try:
            report["steps"][name] = dict(result=step(), seconds=time.monotonic() - t)
        except Exception as e:  # noqa: BLE001 — one failed step must not lose the others
            report["steps"][name] = dict(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-4000:],
                                         seconds=time.monotonic() - t)
        save()
    save()
    failed = [n for n, v in report["steps"].items() if "error" in v]
    print(f"accelerator check: {path} ({len(failed)} step(s) failed{': ' + ', '.join(failed) if failed else ''})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
