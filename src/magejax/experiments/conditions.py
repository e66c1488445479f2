"""Running one experiment condition: seeds vmapped, chunk by chunk, files and statistics out.

A `Condition` is a name and a `Config`. Each condition runs with its seeds
vmapped in one compiled program (`jax.vmap(trainer.start)`, then `jax.vmap(trainer.run_chunk)`
once per evaluation — the chunked form of `jax.vmap(trainer.train)` over
`jax.random.split(PRNGKey(seed), seeds)`). After every chunk the rows of all seeds are appended
to the condition's `metrics.jsonl` and `metrics.csv`, a checkpoint is written, and a progress line
is printed (all by the run driver, `magejax.runs.driver`). A condition whose `summary.json`
matches its config and seeds is not run again, and an unfinished one continues from its newest
checkpoint: re-running a killed script resumes it inside the condition it stopped in, and ends
with the files of an uninterrupted run (`--rerun` runs everything again).

Files of a condition, under the figure's output directory (`magejax.experiments.figures`):
  <condition>/config.json, metrics.jsonl, metrics.csv, checkpoints/ (the newest two), summary.json,
  and final.json when the figure has a final probe (per-seed values measured once on the trained
  state)

A condition's statistics are `analysis.statistics.curve_stats` of its rows on disk.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from magejax import configs
from magejax.analysis import statistics
from magejax.runs import checkpoint, metrics_io
from magejax.runs.progress import hms
from magejax.configs import Config
from magejax.train import make_train

SCALES = ("tiny", "cpu", "paper")
"""tiny: CI-sized networks and runs (seconds, for tests); cpu: small enough for a 2-core CPU in
minutes; paper: the paper's settings (an accelerator)."""

SUMMARY_FILE = "summary.json"
FINAL_FILE = "final.json"

# The cpu scale of Pendulum and CartPole swing-up is `configs.preset(env, algo, "cpu")` (chosen by
# a measured sweep: experiments/cpu_preset_sweep.py). The Brax tasks have no cpu preset; at cpu
# scale (Table 1's HalfCheetah pipeline check) they keep these small networks, chosen from measured
# per-step costs on the 2-core CPU (experiments/README.md).
BRAX_CPU_SIZES = dict(actor_hidden=(64, 64), critic_hidden=(64, 64), batch_size=128, model_hidden=(64, 64))

# The cpu-scale schedule of the learning figures (Figs. 2, 4, 7, 8): long enough that every
# algorithm leaves the random-policy level (issue "The paper's claims at a scale where everything
# learns"), evaluation every 500 env steps on 10 episodes (the Config default), 5 seeds.
CPU_LEARNING_STEPS = {"pendulum": 10_000, "cartpole_swingup": 20_000}
CPU_LEARNING_EVAL_EVERY = 500
CPU_LEARNING_SEEDS = 5


def cpu_learning_schedule(env: str) -> dict:
    """Config overrides of the learning figures' cpu scale on `env` (Pendulum or CartPole swing-up)."""
    return dict(total_steps=CPU_LEARNING_STEPS[env], eval_every=CPU_LEARNING_EVAL_EVERY)


def scaled_config(scale: str, env: str, algo: str, *, cpu: dict | None = None, **overrides) -> Config:
    """The configuration of `algo` on `env` at `scale`.

    paper: `configs.preset(env, algo)` with `overrides`; tiny: the tiny preset with `overrides`
    (the run's length and schedule stay tiny, so only behavioural overrides should be given);
    cpu: the cpu preset (`BRAX_CPU_SIZES` on the paper preset for Brax tasks), then `cpu` (the
    figure's cpu-scale schedule: steps, evaluation interval, ...), then `overrides`.
    """
    if scale == "paper":
        return configs.preset(env, algo, "paper", **overrides)
    if scale == "tiny":
        return configs.preset(env, algo, "tiny", **overrides)
    if scale == "cpu":
        if env in configs.CPU:
            return configs.preset(env, algo, "cpu", **{**(cpu or {}), **overrides})
        return configs.preset(env, algo, "paper", **{**BRAX_CPU_SIZES, **(cpu or {}), **overrides})
    raise configs.ConfigError(f"scale: unknown scale {scale!r}; valid: {', '.join(SCALES)}")


@dataclasses.dataclass(frozen=True)
class Condition:
    """One curve of a figure: `name` is its results subdirectory (unique in the figure), `label`
    its legend entry, `panel` the plot panel it is drawn in (e.g. its environment).

    `make` builds the config only when asked (`config()`), so that one condition whose
    environment is not available does not stop the others from running or being listed.
    """

    name: str
    label: str
    panel: str
    make: Callable[[], Config]
    seeds: int | None = None  # None: the figure's count for the scale (a --seeds flag overrides both)

    def config(self) -> Config:
        return self.make()


Probe = Callable[["object"], Callable]
"""Extra metrics: `probe(trainer)` returns `fn(train_state, key) -> {name: ()}` for ONE seed;
the runner vmaps and jits it. A figure's `probe` is called at every evaluation, its
`final_probe` once, on the state at the end of training (for measurements too costly to repeat,
e.g. evaluation with a planner)."""


# ------------------------------------------------------------------------------------ files

def _run_settings(seeds: int, base_seed: int, cond: Condition, scale: str) -> dict:
    return {"seeds": seeds, "seed": base_seed, "label": cond.label, "panel": cond.panel, "scale": scale}


def _same_run(run_dir: Path, config: Config, settings: dict) -> bool:
    """True when `run_dir` holds a run (finished or not) of exactly this config, seed count and
    base seed (labels only change plots, so they do not count)."""
    try:
        saved = metrics_io.read_run_settings(run_dir) or {}
        return metrics_io.read_config(run_dir) == config and all(
            saved.get(k) == settings.get(k) for k in ("seeds", "seed"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _finished(run_dir: Path, config: Config, settings: dict, needs_final: bool = False) -> bool:
    """True when `run_dir` holds a complete run of this config and seeds, with its final probe if
    one is asked."""
    if not (run_dir / SUMMARY_FILE).exists() or (needs_final and not (run_dir / FINAL_FILE).exists()):
        return False
    return _same_run(run_dir, config, settings)


def adopt_finished_twin(cond: Condition, out: Path, *, seeds: int, base_seed: int, scale: str,
                        search_root: Path, needs_final: bool = False) -> Path | None:
    """Copy another figure's finished run of exactly `cond`'s config and seeds into `out/cond.name`.

    Figures share conditions (Fig. 8's λ = 0.2 and its Dyna-TD3 are Fig. 2's Pendulum runs, Fig.
    7's default-model MAGE-TD3 is Fig. 4's true-reward one). A run is a pure function of (config,
    seeds, base seed), so a finished twin under `search_root` (the results folder: one directory per
    figure) is the run this condition would make; copying it saves an hour of CPU per condition.
    Runs trained in one program with others (`driver.run_sweep`) agree with single runs only to
    float rounding, so a twin counts as equal, not identical: its summary keeps
    `programs_shared_with` and gains `copied_from`. Nothing is copied when `out/cond.name` already
    holds this run, finished or not (an unfinished run continues from its own checkpoint).
    Returns the source directory, or None.
    """
    config = cond.config()
    settings = _run_settings(seeds, base_seed, cond, scale)
    target = out / cond.name
    if _same_run(target, config, settings):
        return None
    source = find_finished_run(config, seeds, base_seed, search_root, needs_final=needs_final, exclude=target)
    if source is not None:
        summary_file = source / SUMMARY_FILE
        if target.exists():
            shutil.rmtree(target)  # another config's run: replaced, as a rerun would
        target.mkdir(parents=True)
        for name in (metrics_io.METRICS_FILE, metrics_io.CSV_FILE, FINAL_FILE):
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
        metrics_io.write_config(target, config, run=settings)  # this figure's label and panel
        summary = json.loads(summary_file.read_text())
        summary.update(name=cond.name, label=cond.label, panel=cond.panel,
                       copied_from=str(source.relative_to(search_root)))  # e.g. fig2_sample_efficiency/pendulum/mage
        (target / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return source


def find_finished_run(config: Config, seeds: int, base_seed: int, search_root: Path, *,
                      needs_final: bool = False, exclude: Path | None = None) -> Path | None:
    """The first finished run (sorted by path) of exactly this config, seed count and base seed
    under `search_root`, skipping `exclude` and everything below it; None if there is none."""
    settings = {"seeds": seeds, "seed": base_seed}
    skip = exclude.resolve() if exclude is not None else None
    for summary_file in sorted(search_root.glob(f"*/**/{SUMMARY_FILE}")):
        source = summary_file.parent
        if skip is not None and (source.resolve() == skip or skip in source.resolve().parents):
            continue
        if (source / metrics_io.CONFIG_FILE).exists() and _finished(source, config, settings, needs_final=needs_final):
            return source
    return None


# ------------------------------------------------------------------------------------ one condition

def finished_summary(cond: Condition, out: Path, *, seeds: int, base_seed: int, scale: str,
                     metrics: Sequence[str] = ("eval_return",), needs_final: bool = False) -> dict | None:
    """The summary of `out/cond.name` when it holds a finished run of exactly `cond`'s config and
    seeds (statistics recomputed from its rows, timings kept), else None. Nothing is run."""
    d = out / cond.name
    try:
        config = cond.config()
    except (configs.ConfigError, ValueError):  # e.g. an environment not registered here
        return None
    if not _finished(d, config, _run_settings(seeds, base_seed, cond, scale), needs_final=needs_final):
        return None
    return _reused_summary(d, cond.name, metrics)


def _reused_summary(run_dir: Path, name: str, metrics: Sequence[str]) -> dict:
    """A finished run's stored summary with its statistics recomputed from its rows (they may be
    newer than the stored ones); its timings kept."""
    return {**json.loads((run_dir / SUMMARY_FILE).read_text()), **summarize_condition(run_dir, name, metrics)}


def run_condition(cond: Condition, out: Path, **kwargs) -> dict:
    """Run, resume or reuse one condition; returns its summary (also written to `summary.json`).
    Arguments as `run_conditions`'."""
    return run_conditions([cond], out, **kwargs)[0]


def run_conditions(conds: list[Condition], out: Path, *, seeds: int, base_seed: int = 0, scale: str = "",
                   probe: Probe | None = None, metrics: Sequence[str] = ("eval_return",),
                   rerun: bool = False, log: Callable[[str], None] = print,
                   final_probe: Probe | None = None) -> list[dict]:
    """Run, resume or reuse conditions; returns their summaries (also written to `summary.json`).

    Several conditions must differ only in traced hyper-parameters (`configs.hyperparams`): they
    then train as ONE compiled program (`driver.run_sweep`), each into its own directory. A single
    condition runs with its hyper-parameters as constants (`driver.run`).
    Finished conditions (summary present, same config and seeds) are reused when all of them are;
    unfinished ones of the same config and seeds continue from their newest checkpoints
    (`runs.driver`), so a killed script run again ends with the files of an uninterrupted run;
    anything else starts afresh.
    """
    import jax

    from magejax.runs import driver, progress

    run_dirs = [out / cond.name for cond in conds]
    cfgs = [cond.config() for cond in conds]
    settings = [_run_settings(seeds, base_seed, cond, scale) for cond in conds]
    names = ", ".join(cond.name for cond in conds)
    tag = f"[{names}] " if len(conds) == 1 else "[" + " | ".join(cond.name for cond in conds) + "] "
    if not rerun and all(_finished(d, c, st, needs_final=final_probe is not None)
                         for d, c, st in zip(run_dirs, cfgs, settings)):
        for cond, d in zip(conds, run_dirs):
            log(f"[{cond.name}] finished earlier with the same config and seeds: reusing {d}")
        return [_reused_summary(d, cond.name, metrics) for cond, d in zip(conds, run_dirs)]
    resume = not rerun and all(_same_run(d, c, st) for d, c, st in zip(run_dirs, cfgs, settings))
    for d in run_dirs:
        d.mkdir(parents=True, exist_ok=True)
        for stale in (SUMMARY_FILE, FINAL_FILE):  # a stale result must not outlive a rerun
            (d / stale).unlink(missing_ok=True)
        if not resume and (d / checkpoint.CHECKPOINT_DIR).is_dir():
            shutil.rmtree(d / checkpoint.CHECKPOINT_DIR)  # another run's: this one starts afresh
    c = cfgs[0]
    together = f" in one program ({len(conds)} conditions)" if len(conds) > 1 else ""
    log(f"{tag}{c.env} {c.algo}: {seeds} seed(s), {c.total_steps} env steps, evaluation every "
        f"{c.eval_every}{together}")
    common = dict(seeds=seeds, seed=base_seed, resume=resume, probe=probe, on_divergence="warn", keep=2,
                  start_if_none=True, note=lambda message: log(f"{tag}{message}"))
    if len(conds) == 1:
        results = [driver.run(c, run_dirs[0], run_settings=settings[0], **common,
                              progress_fn=progress.lines(prefix=tag, write=log, extra_metrics=tuple(metrics)))]
    else:
        results = driver.run_sweep(cfgs, run_dirs, run_settings=settings, **common,
                                   progress_fn=progress.lines(prefix=tag, write=log, extra_metrics=tuple(metrics),
                                                              groups=tuple(cond.name for cond in conds)))
    log(f"{tag}compiled in {results[0].compile_s:.1f} s")

    summaries = []
    for cond, run_dir, c, result in zip(conds, run_dirs, cfgs, results):
        if final_probe is not None:
            t = time.perf_counter()
            trainer = make_train(c)
            final_keys = jax.random.split(jax.random.PRNGKey(base_seed + 2), seeds)
            values = jax.jit(jax.vmap(final_probe(trainer)))(result.state, final_keys)
            values = {k: [float(x) for x in np.asarray(v).reshape(seeds)] for k, v in values.items()}
            (run_dir / FINAL_FILE).write_text(json.dumps(values, indent=2) + "\n")
            log(f"[{cond.name}] final probe ({hms(time.perf_counter() - t)}): "
                + ", ".join(f"{k} {np.mean(v):.4g}" for k, v in values.items()))
        summary = summarize_condition(run_dir, cond.name, metrics)
        summary.update(wall_s=result.wall_s, compile_s=result.compile_s, train_s=result.train_s,
                       env_steps_per_s_per_seed=c.total_steps / result.train_s if result.train_s > 0 else None,
                       programs_shared_with=len(conds))
        (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        summaries.append(summary)
    return summaries


def summarize_condition(run_dir: Path, name: str, metrics: Sequence[str]) -> dict:
    """Statistics of `metrics` from the rows on disk (so they always agree with the files)."""
    config = metrics_io.read_config(run_dir)
    settings = metrics_io.read_run_settings(run_dir) or {}
    rows = metrics_io.read_metrics(run_dir)
    stats = {}
    for metric in dict.fromkeys(("eval_return",) + tuple(metrics)):
        steps, values = metrics_io.curves_from_metrics(rows, metric)
        stats[metric] = statistics.curve_stats(steps, values)
    summary = {"name": name, "label": settings.get("label"), "panel": settings.get("panel"),
               "env": config.env, "algo": config.algo, "seeds": settings.get("seeds"),
               "env_steps": config.total_steps, "evaluated_to": int(steps[-1]),
               "nonfinite_losses": sum(r.get("nonfinite_losses") or 0 for r in rows), "stats": stats}
    if (run_dir / FINAL_FILE).exists():
        final = json.loads((run_dir / FINAL_FILE).read_text())
        summary["final_probe"] = {k: statistics.score_summary(v) for k, v in final.items()}
    return summary
