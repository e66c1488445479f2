#!/usr/bin/env python
"""Performance benchmarks of magejax: update steps, model training, the jitted loop, seed scaling.

    python benchmarks/bench.py [--quick] [--out benchmarks/results] [--only NAME ...]

Writes one JSON file per run, `<out>/bench-<hostname>-<UTC timestamp>.json`, and prints a table.
Every timing is taken after compilation and warm-up calls, with `jax.block_until_ready`, and is
summarised by its median, p10 and p90 over the repetitions. FLOPs are XLA's own count
(`compiled.cost_analysis()["flops"]` of the optimised HLO), not a hand count. See
benchmarks/README.md for what each measurement means.

`--quick` uses CI-sized networks (the "tiny" preset) and 3 repetitions: it checks that the
script works, its numbers say nothing about the paper-size cost.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import jax

from bench_common import (ALGOS, MEASUREMENTS, QUICK_XLA_FLAG, REPO, SCHEMA_VERSION, SIZES, header, make_settings,
                          rss_peak_bytes)
from bench_kernels import bench_hlo_check, bench_matmul, bench_model_train, bench_update
from bench_loop import bench_loop, bench_seeds, peak_memory
from bench_precision import bench_precision

def _fmt(x, spec=".3g") -> str:
    return "-" if x is None else format(x, spec)


def table(results: dict) -> str:
    lines = []
    add = lines.append
    if (r := results.get("matmul_peak")) and "error" not in r:
        add(f"matmul_peak      {r['n']}x{r['n']} f32: {_fmt(r['gflops']['median'], '.1f')} GFLOP/s median "
            f"({_fmt(r['ms']['median'])} ms), best {_fmt(r['gflops']['best'], '.1f')} GFLOP/s")
    if (r := results.get("update_step")) and "error" not in r:
        add("")
        add(f"{'update_step':<12} {'algo':<5} {'ms med':>9} {'p10':>9} {'p90':>9} {'actor':>9} "
            f"{'critic':>9} {'compile s':>9} {'MFLOP/upd':>10} {'GFLOP/s':>8} {'%peak':>6}")
        for size, entry in r.items():
            for algo, a in entry["algos"].items():
                ms = a["ms_per_update"]
                frac = a["fraction_of_matmul_peak"]
                flops = a["flops"]["per_update_mean"]
                add(f"{size:<12} {algo:<5} {ms['median']:9.3f} {ms['p10']:9.3f} {ms['p90']:9.3f} "
                    f"{a['ms_with_actor']['median']:9.3f} {a['ms_critic_only']['median']:9.3f} "
                    f"{a['compile']['compile_s']:9.2f} {_fmt(None if flops is None else flops / 1e6, '10.2f')} "
                    f"{_fmt(a['gflops_achieved'], '8.2f')} {_fmt(None if frac is None else 100 * frac, '6.1f')}")
            add(f"{size:<12} ratios " + ", ".join(f"{k} {v:.2f}" for k, v in entry["ratios"].items()))
    if (r := results.get("precision")) and "error" not in r:
        add("")
        add(f"precision        matmul GFLOP/s: f32 {r['matmul_gflops']['f32']:.0f}, bf16 {r['matmul_gflops']['bf16']:.0f}")
        for size, p in r.items():
            if size == "matmul_gflops":
                continue
            bf16_share = sum(e["flop_share"] for k, e in p["bf16_dot_census"].items() if k.startswith("bf16 x bf16"))
            add(f"precision        {size:<12} MAGE-TD3 update ms: f32 {p['ms_per_update']['f32']['median']:.2f}, "
                f"bf16 {p['ms_per_update']['bf16']['median']:.2f}; f32/bf16 {p['f32_over_bf16']:.2f} "
                f"(target {p['target']:.1f}: {'met' if p['meets_target'] else 'NOT met'}); "
                f"{100 * bf16_share:.0f}% of the bf16 update's dot FLOPs run with bf16 operands")
            for prec, prof in p.get("profile", {}).items():
                add(f"precision        {size:<12} {prec} profile ({prof['wall_ms']:.1f} ms per update; share of "
                    f"thunk time): " + "; ".join(f"{c} {100 * v['share']:.0f}%" + (f" at {v['gflops']:.0f} GFLOP/s"
                                                                               if "gflops" in v else "")
                                                 for c, v in prof["categories"].items() if v["share"] >= 0.01))
    if (r := results.get("model_train_step")) and "error" not in r:
        add("")
        for size, m in r.items():
            add(f"model_train_step {size:<12} {m['ensemble_size']}x{m['samples_per_member']}: "
                f"{m['ms']['median']:.3f} ms (p10 {m['ms']['p10']:.3f}, p90 {m['ms']['p90']:.3f}), "
                f"compile {m['compile']['compile_s']:.2f} s, {_fmt(m['gflops_achieved'], '.2f')} GFLOP/s")
    if (r := results.get("hlo_check")) and "error" not in r:
        add("")
        for size, h in r.items():
            if size == "method":
                continue
            f = h["flops"]
            add(f"hlo_check {size:<12} MFLOPs: mage grad {_fmt(f['mage_critic_grad_model'] / 1e6 if f['mage_critic_grad_model'] else None, '.2f')}, "
                f"dyna grad {_fmt(f['dyna_critic_grad_model'] / 1e6 if f['dyna_critic_grad_model'] else None, '.2f')}, "
                f"model fwd {_fmt(f['model_sample_forward_model'] / 1e6 if f['model_sample_forward_model'] else None, '.2f')}")
            if "mage_model_part_in_model_forwards" in h:
                add(f"hlo_check {size:<12} mage-dyna extra = {h['mage_over_dyna_extra_in_model_forwards']:.2f} model fwds; "
                    f"model part: mage {h['mage_model_part_in_model_forwards']:.2f}, "
                    f"dyna {h['dyna_model_part_in_model_forwards']:.2f} model fwds")
    if (r := results.get("loop_throughput")) and "error" not in r:
        add("")
        for size, entry in r["sizes"].items():
            for algo, a in entry["algos"].items():
                add(f"loop_throughput  {size:<11} {algo:<5} {a['env_steps_per_s']:9.2f} env steps/s "
                    f"({entry['chunk_env_steps']}-step chunk {a['s_per_chunk']['median']:.3f} s, "
                    f"n={a['s_per_chunk']['n']}; eval {a['s_per_evaluation']['median']:.2f} s; training only "
                    f"{a['train_env_steps_per_s']:.2f}, at the paper's eval interval "
                    f"{a['paper_schedule_env_steps_per_s']:.2f}; compile {a['compile']['compile_s']:.1f} s)")
        for size, why in r["skipped"].items():
            add(f"loop_throughput  {size:<11} skipped: {why}")
    if (r := results.get("seed_scaling")) and "error" not in r:
        add("")
        for n, a in r["seeds"].items():
            add(f"seed_scaling     mage {n:>3} seeds {a['env_steps_per_s_per_seed']:9.1f} env steps/s/seed, "
                f"{a['env_steps_per_s_total']:9.1f} total (x{a.get('total_speedup_vs_1_seed', float('nan')):.2f}), "
                f"compile {a['compile']['compile_s']:.1f} s")
    if (r := results.get("peak_memory")) and "error" not in r:
        add("")
        dev = r["device_peak_bytes"]
        add(f"peak_memory      RSS {r['rss_peak_bytes'] / 2**20:.0f} MiB, device peak "
            f"{'n/a' if dev is None else f'{dev / 2**20:.0f} MiB'}")
    for name, r in results.items():
        if isinstance(r, dict) and "error" in r:
            add(f"{name}: ERROR {r['error']}")
    return "\n".join(lines)


# ============================================================================ main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes and 3 repetitions (a smoke test)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="directory for the JSON file")
    p.add_argument("--only", nargs="+", choices=MEASUREMENTS, metavar="NAME",
                   help=f"run only these measurements: {', '.join(MEASUREMENTS)}")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="problem sizes")
    p.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS),
                   help="algorithms for update_step and loop_throughput")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="seed counts for seed_scaling (default 1 4 16; 1 4 quick)")
    p.add_argument("--reps", type=int, default=None, help="micro-benchmark repetitions (default 30; 3 quick)")
    p.add_argument("--loop-reps", type=int, default=None,
                   help="minimum timed chunks for loop measurements (default 5; 3 quick)")
    p.add_argument("--loop-budget", type=float, default=120.0,
                   help="seconds after which loop measurements stop adding chunks beyond the minimum")
    p.add_argument("--loop-chunk", type=int, default=None,
                   help="env steps per timed chunk in loop_throughput (default 200; 50 quick)")
    p.add_argument("--loop-chunk-halfcheetah", type=int, default=None,
                   help="env steps per timed chunk of the HalfCheetah loop (default 50; 10 quick)")
    p.add_argument("--seed-chunk", type=int, default=None,
                   help="env steps per timed chunk in seed_scaling (default 100; 50 quick); on a small "
                        "CPU, 16 paper-size seeds take ~6 s per env step, so pass e.g. 20")
    p.add_argument("--full-opt", action="store_true",
                   help=f"with --quick: keep XLA's normal LLVM optimisation (quick sets {QUICK_XLA_FLAG})")
    p.add_argument("--matmul-n", type=int, default=None, help="matmul size (default 2048; 256 quick)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick and not args.full_opt:
        # Quick mode is a smoke test dominated by compilation: skip LLVM optimisation (about halves
        # compile time; HLO and so the FLOP counts are unaffected). Only effective before JAX
        # initialises its backend, i.e. when bench.py is the program being run.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_backend_optimization_level" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {QUICK_XLA_FLAG}".strip()
    settings = make_settings(args)
    selected = set(args.only or MEASUREMENTS)
    now = datetime.datetime.now(datetime.timezone.utc)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = dict(schema_version=SCHEMA_VERSION, header=header(now, settings),
                  flops_source="XLA cost_analysis()['flops']: of the optimised HLO (compiled executable) "
                               "everywhere, except update_step per-branch FLOPs under --quick (lowered HLO, "
                               "see flops.stage); matmul_peak uses the exact 2*n^3",
                  time_unit="ms unless a key says s", results={}, wall_s_by_measurement={})
    results = report["results"]
    key = jax.random.PRNGKey(0)
    t_all = time.perf_counter()

    def run(name: str, fn: Callable[[], dict]) -> None:
        if name not in selected:
            return
        t0 = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 — record it and carry on with the other measurements
            traceback.print_exc()
            results[name] = dict(error=f"{type(e).__name__}: {e}")
        report["wall_s_by_measurement"][name] = dict(wall_s=time.perf_counter() - t0,
                                                     rss_peak_bytes_after=rss_peak_bytes())

    run("matmul_peak", lambda: bench_matmul(settings, key))
    peak = results.get("matmul_peak", {}).get("gflops", {}).get("median")
    run("update_step", lambda: bench_update(settings, key, peak))
    run("precision", lambda: bench_precision(settings, key))
    run("model_train_step", lambda: bench_model_train(settings, key))
    run("hlo_check", lambda: bench_hlo_check(settings, key))
    run("loop_throughput", lambda: bench_loop(settings, key))
    run("seed_scaling", lambda: bench_seeds(settings, key))
    if "peak_memory" in selected:
        results["peak_memory"] = peak_memory()
    report["header"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["wall_s"] = time.perf_counter() - t_all

    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{socket.gethostname()}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    h = report["header"]
    print(f"magejax benchmark{' (--quick: tiny sizes, not paper numbers)' if settings.quick else ''} — "
          f"{h['machine']['hostname']}, {h['machine']['cpu_model']} x{h['machine']['cpu_count']}, "
          f"jax {h['versions']['jax']} {h['jax']['default_backend']}/{h['jax']['device_kind']}, "
          f"commit {(h['git']['commit'] or '?')[:10]}{'+dirty' if h['git']['dirty'] else ''}, "
          f"load {h['machine']['load_average_at_start'][0]:.2f}")
    print(table(results))
    print(f"\nwrote {path} ({report['wall_s']:.0f} s)")
    return 1 if any(isinstance(r, dict) and "error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
