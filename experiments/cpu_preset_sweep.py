"""The measured sweep behind `configs.preset(env, algo, "cpu")`: critic width × batch size for
MAGE-TD3 on Pendulum, 5 seeds, up to 10,000 env steps (issue "Fidelity to the original code, and
learning you can see", section 2).

Everything but the critic width and the batch is the paper's Pendulum setting (10 updates per env
step, actor 2×128, model 8 × 2×128 trained every 25 steps on 120 batches of 256, λ = 0.2, agent
input normalisation on). Two passes, both resumable:

1. `--timing`: ms per env step of every setting, 5 seeds vmapped, on one chunk of 50 full-cost
   steps (after warm-up, 2 model-training phases, evaluation included) following a warm-up chunk
   of the same program; compile time apart. Run it on an idle machine: the load average is stored.
2. learning (default): the settings in increasing order of measured cost, each a run directory
   with metrics.jsonl and a checkpoint after every evaluation (every 250 steps, 10 episodes), so
   a killed sweep continues where it stopped. Per seed it records the first evaluation with a
   return >= -250.

Stopping rules, fixed before any run:
* success: once every seed has reached -250, run 1000 more steps (4 evaluations) and stop;
* failure: after the evaluation at 6000 steps, stop if fewer than 2 of the 5 seeds have reached -250;
* otherwise run to 10,000 steps.
The preset is the cheapest setting (by the timing pass) whose MAGE-TD3 reaches -250 in at least 4
of 5 seeds. Since settings run cheapest first, the first setting that passes is the answer; the
sweep still runs the others (`--all`) for the table.

    nohup python experiments/cpu_preset_sweep.py --timing > runs/cpu_sweep_timing.log 2>&1
    nohup python experiments/cpu_preset_sweep.py > runs/cpu_sweep.log 2>&1 &   # rerun to resume
    python experiments/cpu_preset_sweep.py --report   # table + plot into experiments/results/

Run directories: runs/cpu_preset_sweep/<setting>/ (ignored by git); the committed table, plot and
per-setting summaries: experiments/results/cpu_preset_sweep/.

A setting that another experiment has already run in full (same config, 5 seeds, base seed 0;
`finished_twin`) is not trained again: the paper-size setting critic384_batch512 is Fig. 2's
paper-size Pendulum MAGE-TD3 run with evaluation every 250 steps. A run is a pure function of
(config, seeds), so the twin's evaluations up to the step where the stopping rules fire are the
ones this sweep would make; the setting's directory gets exactly those rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "cpu_preset_sweep"
RESULTS = ROOT / "experiments" / "results" / "cpu_preset_sweep"
WIDTHS = (384, 256, 128, 64)
BATCHES = (512, 256, 128)
SEEDS = 5
THRESHOLD = -250.0
TOTAL_STEPS, EVAL_EVERY = 10_000, 250
FAIL_CHECK_STEP, FAIL_MIN_SEEDS = 6_000, 2
SUCCESS_EXTRA_STEPS = 1_000


def settings() -> dict[str, dict]:
    """name -> Config overrides. The grid, plus without agent normalisation the paper size and
    the chosen `cpu` preset (added once it was chosen: the effect of normalisation at both sizes)."""
    grid = {f"critic{w}_batch{b}": dict(critic_hidden=(w, w), batch_size=b) for w in WIDTHS for b in BATCHES}
    grid["critic384_batch512_nonorm"] = dict(critic_hidden=(384, 384), batch_size=512, normalize_obs=False)
    grid["critic64_batch128_nonorm"] = dict(critic_hidden=(64, 64), batch_size=128, normalize_obs=False)
    return grid


def cost(timing: dict, name: str) -> float:
    """Measured ms per env step; a `_nonorm` setting the timing pass did not run costs as its
    normalised twin (normalising a batch is a negligible part of an update)."""
    entry = timing.get(name) or timing[name.removesuffix("_nonorm")]
    return entry["ms_per_env_step"]


def config_of(overrides: dict, **schedule):
    from magejax import configs
    fields = dict(total_steps=TOTAL_STEPS, eval_every=EVAL_EVERY, eval_episodes=10)
    return configs.preset("pendulum", "mage", "paper", **{**fields, **overrides, **schedule})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timing_pass() -> None:
    import jax
    from magejax.train import make_train

    path = RESULTS / "timing.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for name, overrides in settings().items():
        if name in done:
            continue
        # 100 warm-up steps = chunks 0 and 1; chunk 2 compiles nothing new and costs what a full step does.
        config = config_of(overrides, total_steps=150, eval_every=50)
        trainer = make_train(config)
        keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
        t0 = time.perf_counter()
        state, _ = jax.jit(jax.vmap(trainer.start))(keys)
        chunk = jax.jit(jax.vmap(trainer.run_chunk, in_axes=(0, None)))
        compiled = chunk.lower(state, np.int32(0)).compile()
        compile_s = time.perf_counter() - t0
        for c in range(2):
            state, row = compiled(state, np.int32(c))
        jax.block_until_ready(row)
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        state, row = compiled(state, np.int32(2))
        jax.block_until_ready(row)
        seconds = time.perf_counter() - t
        done[name] = dict(ms_per_env_step=1000 * seconds / 50, ms_per_seed_step=1000 * seconds / 50 / SEEDS,
                          compile_s=compile_s, load_1min_before=load_before, load_1min_after=os.getloadavg()[0],
                          seeds=SEEDS, steps_timed=50)
        log(f"timing {name}: {done[name]['ms_per_env_step']:.0f} ms per env step ({SEEDS} seeds), "
            f"compile {compile_s:.0f} s, load {load_before:.2f}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(done, indent=1) + "\n")


def first_hits(rows: list[dict]) -> list[int | None]:
    """Per seed, the env step of the first evaluation with return >= THRESHOLD (None: never)."""
    hits: list[int | None] = [None] * SEEDS
    for r in sorted(rows, key=lambda r: (r["env_step"], r["seed"])):
        if hits[r["seed"]] is None and r["eval_return"] is not None and r["eval_return"] >= THRESHOLD:
            hits[r["seed"]] = r["env_step"]
    return hits


def stop_reason(rows: list[dict], env_step: int) -> str | None:
    """The fixed stopping rules (module docstring), applied after the evaluation at env_step."""
    hits = first_hits(rows)
    if all(h is not None for h in hits) and env_step >= max(hits) + SUCCESS_EXTRA_STEPS:
        return "success"
    if env_step >= FAIL_CHECK_STEP and sum(h is not None for h in hits) < FAIL_MIN_SEEDS:
        return "failure"
    if env_step >= TOTAL_STEPS:
        return "end"
    return None


def finished_twin(config, search_root: Path | None = None) -> Path | None:
    """A finished run of exactly `config` with this sweep's seeds (5, base seed 0) under
    `search_root` (default experiments/results, outside this sweep's own folder), or None."""
    from magejax.experiments import conditions

    return conditions.find_finished_run(config, SEEDS, 0, search_root or ROOT / "experiments" / "results",
                                        exclude=RESULTS)


def rows_until_stop(rows: list[dict]) -> tuple[list[dict], str, int]:
    """The rows of a full run up to the first evaluation at which the stopping rules fire, the
    rule that fired ("end" if none did) and that step."""
    steps = sorted({r["env_step"] for r in rows})
    for step in steps:
        kept = [r for r in rows if r["env_step"] <= step]
        reason = stop_reason(kept, step)
        if reason is not None:
            return kept, reason, step
    return rows, "end", steps[-1]


def adopt_twin(name: str, twin: Path, run_dir: Path) -> dict:
    """Write `run_dir` (config, the metrics rows up to the stop, summary) from a finished twin run."""
    from magejax.runs import metrics_io

    rows, reason, last = rows_until_stop(metrics_io.read_metrics(twin))
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(twin / metrics_io.CONFIG_FILE, run_dir / metrics_io.CONFIG_FILE)
    with open(twin / metrics_io.METRICS_FILE) as src, open(run_dir / metrics_io.METRICS_FILE, "w") as dst:
        dst.writelines(line for line in src if line.strip() and json.loads(line)["env_step"] <= last)
    twin_summary = json.loads((twin / "summary.json").read_text())
    log(f"{name}: the finished run {twin} has this config and seeds; its evaluations to step {last} "
        f"({reason}) are this setting's")
    where = str(twin.relative_to(ROOT)) if ROOT in twin.parents else str(twin)
    return dict(stopped=reason, train_s=None, copied_from=where, twin_train_s=twin_summary.get("train_s"),
                twin_env_steps=twin_summary.get("env_steps"))


def learn(name: str, overrides: dict) -> dict:
    """Run (or resume) one setting with the run driver; returns its summary (also summary.json)."""
    from magejax.runs import driver, metrics_io, progress

    run_dir = RUNS / name
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return json.loads(summary_path.read_text())
    config = config_of(overrides)
    twin = None if (run_dir / metrics_io.METRICS_FILE).exists() else finished_twin(config)
    if twin is not None:
        adopted = adopt_twin(name, twin, run_dir)
        return _write_summary(name, overrides, run_dir, adopted["stopped"], adopted["train_s"], None,
                              copied_from=adopted["copied_from"], twin_train_s=adopted["twin_train_s"],
                              twin_env_steps=adopted["twin_env_steps"])
    run_dir.mkdir(parents=True, exist_ok=True)
    loads, reason = [], [None]

    def stop(env_step: int, row: dict) -> bool:
        loads.append(os.getloadavg()[0])
        rows = metrics_io.read_metrics(run_dir)  # the driver wrote this evaluation's rows already
        log(f"{name}: step {env_step} eval {np.round(np.asarray(row['eval_return']), 0).tolist()} "
            f"hits {first_hits(rows)}")
        reason[0] = stop_reason(rows, env_step)
        return reason[0] is not None

    result = driver.run(config, run_dir, seeds=SEEDS, seed=0, resume=True, run_settings={"sweep": "cpu_preset"},
                        keep=2, start_if_none=True, stop_fn=stop, progress_fn=progress.lines(prefix=f"{name}: ", write=log), note=log)
    return _write_summary(name, overrides, run_dir, reason[0], result.train_s, loads)


def _write_summary(name: str, overrides: dict, run_dir: Path, reason: str | None, train_s: float | None,
                   loads: list | None, **extra) -> dict:
    from magejax.runs import metrics_io

    rows = metrics_io.read_metrics(run_dir)
    hits = first_hits(rows)
    last = max(r["env_step"] for r in rows)
    summary = dict(setting=name, overrides={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                   first_hit_step=hits, seeds_reached=sum(h is not None for h in hits),
                   stopped=reason or stop_reason(rows, last) or "end", last_step=last,
                   final_returns=[r["eval_return"] for r in sorted(rows, key=lambda r: r["seed"])
                                  if r["env_step"] == last],
                   train_s=train_s, load_1min_during=[min(loads), max(loads)] if loads else None,
                   passes=sum(h is not None for h in hits) >= 4, **extra)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timing", action="store_true", help="only the timing pass")
    p.add_argument("--only", nargs="+", metavar="SETTING", help="run only these settings")
    p.add_argument("--report", action="store_true", help="write the table and the plot from what has run")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    if args.timing:
        timing_pass()
        return 0
    if args.report:
        import cpu_preset_report  # beside this script, which Python puts on sys.path
        cpu_preset_report.write(RUNS, RESULTS, settings())
        return 0
    timing = json.loads((RESULTS / "timing.json").read_text())
    order = sorted(settings(), key=lambda n: cost(timing, n))
    for name in order:
        if args.only and name not in args.only:
            continue
        summary = learn(name, settings()[name])
        log(f"{name}: {summary['seeds_reached']}/{SEEDS} seeds reached {THRESHOLD} "
            f"({summary['stopped']}); first hits {summary['first_hit_step']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
