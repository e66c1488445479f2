"""A figure or table of the paper as a script: its conditions, checks and plots, and the
command line every script in `experiments/` shares (`run_figure`).

Files under `--out` (default `experiments/results/<figure>/` at cpu scale, `<figure>_<scale>/`
otherwise), besides each condition's directory (`magejax.experiments.conditions`):
  summary.json, summary.md    every condition's statistics and the figure's checks ("bars")
  <metric>.png                IQM and its 95% bootstrap band over seeds, every seed thinly, one
                              panel per env
  log.txt                     every line the script printed, appended run after run

A `checks.Bar` is a pass/fail check of a claim, computed from the summaries only (never tuned):
the scripts print each as one line `BAR <claim>: HOLDS|FAILS|NOT EVALUATED — <numbers>`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from magejax import configs
from magejax.runs import metrics_io, plotting
from magejax.configs import hyperparams
from magejax.experiments.checks import Bar, fmt
from magejax.experiments.conditions import (SCALES, SUMMARY_FILE, Condition, Probe, adopt_finished_twin, finished_summary,
                                            run_conditions, summarize_condition)
from magejax.runs.progress import hms

LOG_FILE = "log.txt"


@dataclasses.dataclass(frozen=True)
class Plot:
    """One PNG: `metric` per panel; the interquartile mean over seeds with its 95% stratified
    bootstrap band, and each seed as a thin line (`plotting.plot_panels`)."""

    metric: str = "eval_return"
    ylabel: str = "evaluation return"
    yscale: str = "linear"


@dataclasses.dataclass(frozen=True)
class Figure:
    """What a script declares; `run_figure` does the rest.

    conditions: scale -> the conditions to run. seeds: default seed count per scale.
    bars: (summaries by condition name, scale) -> checks of the claim, printed and saved.
    metrics: summarised besides eval_return. probe: extra per-evaluation metrics.
    final_probe: scale -> `experiment.Probe`, measured once on each condition's trained state.
    """

    name: str
    title: str
    conditions: Callable[[str], list[Condition]]
    seeds: dict
    bars: Callable[[dict, str], list[Bar]]
    plots: tuple[Plot, ...] = (Plot(),)
    metrics: tuple[str, ...] = ()
    probe: Probe | None = None
    final_probe: dict | None = None


def parse_args(figure: Figure, argv=None, description: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description or figure.title)
    p.add_argument("--scale", choices=SCALES, default="cpu",
                   help="tiny: seconds (tests); cpu: minutes on a 2-core CPU; paper: the paper's settings")
    p.add_argument("--seeds", type=int, help="seeds per condition (default: the figure's for the scale)")
    p.add_argument("--seed", type=int, default=0, help="base seed: seed i uses split(PRNGKey(seed))[i]")
    p.add_argument("--out", type=Path, help="results directory (default: experiments/results/<figure>, "
                                            "or <figure>_<scale> for the tiny and paper scales)")
    p.add_argument("--steps", type=int, metavar="N", help="override every condition's env steps")
    p.add_argument("--eval-every", type=int, metavar="N", help="override every condition's evaluation interval")
    p.add_argument("--only", nargs="+", metavar="TEXT",
                   help="run only the conditions whose name contains one of these strings (the "
                        "figure's summary and checks still cover every other condition found "
                        "finished with the same config and seeds)")
    p.add_argument("--rerun", action="store_true", help="run conditions again even if finished")
    p.add_argument("--no-reuse-across-figures", action="store_true",
                   help="do not copy a finished run of the same config and seeds from another "
                        "results folder beside --out (another figure's, e.g. Fig. 2's MAGE-TD3 as Fig. "
                        "8's λ = 0.2, or an earlier --out); run it here instead")
    p.add_argument("--summarize-only", action="store_true",
                   help="run nothing: summarise, plot and check what is already under --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--one-program-per-condition", action="store_true",
                   help="compile and run every condition on its own (default: conditions that differ "
                        "only in traced hyper-parameters, e.g. Fig. 8's λ values, share one program)")
    p.add_argument("--compile-cache", metavar="DIR|off",
                   help="JAX's persistent compilation cache (default: experiments/.jax_cache): a "
                        "rerun, and a program another figure already compiled, skip XLA's 15-50 s "
                        "per condition; 'off' disables it")
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error(f"--seeds: must be >= 1, got {args.seeds}")
    return args


def _overridden(cond: Condition, changes: dict) -> Condition:
    """`cond` whose config gets `changes` (validated when the run builds its trainer)."""
    if not changes:
        return cond
    return dataclasses.replace(cond, make=lambda: configs.validate(cond.make().replace(**changes)))


def enable_compile_cache(path: Path) -> None:
    """Cache every compiled program of this process on disk (JAX's persistent cache)."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def default_out(figure: Figure, scale: str, results: Path) -> Path:
    """cpu scale writes to results/<figure>/, the others to results/<figure>_<scale>/, so a
    tiny smoke run never overwrites a measurement."""
    return results / (figure.name if scale == "cpu" else f"{figure.name}_{scale}")


def run_figure(figure: Figure, argv=None, results: Path = Path("experiments/results")) -> dict:
    """Parse the command line, run the figure's conditions, then summarise, plot and check.

    results: where default output directories go (scripts pass their own `results/`).
    Returns the figure's summary (also in `<out>/summary.json`).
    """
    args = parse_args(figure, argv)
    if args.compile_cache != "off":
        enable_compile_cache(Path(args.compile_cache) if args.compile_cache else results.parent / ".jax_cache")
    out = args.out or default_out(figure, args.scale, results)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / LOG_FILE, "a")

    def log(line: str) -> None:
        log_file.write(line + "\n")
        log_file.flush()
        if not args.quiet:
            print(line, flush=True)

    try:
        return _run(figure, args, out, log)
    finally:
        log_file.close()


def _run(figure: Figure, args: argparse.Namespace, out: Path, log: Callable[[str], None]) -> dict:
    seeds = figure.seeds[args.scale]
    log(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {figure.name} --scale {args.scale}")
    changes = {k: v for k, v in (("total_steps", args.steps), ("eval_every", args.eval_every)) if v is not None}
    conditions = [_overridden(cond, changes) for cond in figure.conditions(args.scale)]
    names = [cond.name for cond in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"{figure.name}: condition names are not unique: {names}")
    every_condition = conditions
    if args.only:
        conditions = [cond for cond in conditions if any(s in cond.name for s in args.only)]
    metrics = ("eval_return",) + tuple(figure.metrics)

    summaries, skipped = {}, {}
    t0 = time.perf_counter()
    if args.summarize_only:
        for cond in conditions:
            if (out / cond.name / metrics_io.METRICS_FILE).exists():
                summaries[cond.name] = summarize_condition(out / cond.name, cond.name, metrics)
        return finish_figure(figure, out, args.scale, conditions, summaries, log, skipped)
    runnable = []
    for cond in conditions:
        try:
            cond.config()
        except (configs.ConfigError, ValueError) as e:  # e.g. an environment not registered here
            log(f"[{cond.name}] SKIPPED: cannot build its config: {e}")
            skipped[cond.name] = str(e)
            continue
        runnable.append(cond)
    final_probe = (figure.final_probe or {}).get(args.scale)
    copied = []
    if not args.rerun and not args.no_reuse_across_figures and figure.probe is None:
        for cond in runnable:  # another figure's finished run of the same config and seeds
            source = adopt_finished_twin(cond, out, seeds=cond.seeds or args.seeds or seeds, base_seed=args.seed,
                                         scale=args.scale, search_root=out.parent,
                                         needs_final=final_probe is not None)
            if source is not None:
                log(f"[{cond.name}] the same config and seeds finished in {source}: copied, not rerun")
                copied.append(cond)
    # A copied condition is finished: it must not join a program with unfinished ones (which
    # would train it again), so it is summarised on its own.
    groups = program_groups([c for c in runnable if c not in copied], args.seeds or seeds,
                            separately=args.one_program_per_condition)
    groups += [([cond], cond.seeds or args.seeds or seeds) for cond in copied]
    for k, (group, group_seeds) in enumerate(groups):
        log(f"== {figure.name} [{args.scale}] program {k + 1}/{len(groups)}: "
            f"{', '.join(cond.name for cond in group)} (elapsed {hms(time.perf_counter() - t0)})")
        results = run_conditions(group, out, seeds=group_seeds, base_seed=args.seed, scale=args.scale,
                                 probe=figure.probe, metrics=metrics, rerun=args.rerun, log=log,
                                 final_probe=final_probe)
        summaries.update({cond.name: summary for cond, summary in zip(group, results)})
    # The figure's summary and checks cover every finished condition, not only those --only ran:
    # running one condition must not drop the others' results from summary.json.
    for cond in every_condition:
        if cond not in conditions:
            found = finished_summary(cond, out, seeds=cond.seeds or args.seeds or seeds, base_seed=args.seed,
                                     scale=args.scale, metrics=metrics, needs_final=final_probe is not None)
            if found is not None:
                log(f"[{cond.name}] not selected by --only; finished earlier with the same config and "
                    f"seeds: summarised with the others")
                summaries[cond.name] = found
    return finish_figure(figure, out, args.scale, every_condition, summaries, log, skipped)


def program_groups(conditions: list[Condition], seeds: int, separately: bool = False) -> list[tuple[list, int]]:
    """The conditions as (group, seeds) pairs, one compiled program each: conditions with the same
    seed count whose configs differ only in traced hyper-parameters (`configs.hyperparams`: a
    λ sweep, learning rates, ...) share one, in the order their first member appears.
    separately: one program per condition (to measure what sharing saves)."""
    groups: dict = {}
    for cond in conditions:
        n = cond.seeds or seeds
        key = (n, json.dumps(hyperparams.static_part(cond.config()), sort_keys=True)) if not separately else cond.name
        groups.setdefault(key, ([], n))[0].append(cond)
    return list(groups.values())


def finish_figure(figure: Figure, out: Path, scale: str, conditions: list[Condition], summaries: dict,
                  log: Callable[[str], None] = print, skipped: dict | None = None) -> dict:
    """Plots, checks and the figure's summary files from the conditions' results."""
    ran = [cond for cond in conditions if cond.name in summaries]
    # In the figure's order, whatever order the programs ran in (equal results, equal files).
    summaries = {cond.name: summaries[cond.name] for cond in ran} | summaries
    plots = []
    for plot in figure.plots:
        panels: dict = {}
        for cond in ran:
            rows = metrics_io.read_metrics(out / cond.name)
            if rows and plot.metric in rows[0]:
                panels.setdefault(cond.panel, {})[cond.label] = metrics_io.curves_from_metrics(rows, plot.metric)
        if panels:
            path = plotting.plot_panels(panels, out / f"{plot.metric}.png", ylabel=plot.ylabel,
                                        yscale=plot.yscale)
            plots.append(path.name)
    bars = figure.bars(summaries, scale)
    for bar in bars:
        log(bar.line())
    doc = {"figure": figure.name, "title": figure.title, "scale": scale,
           "conditions": summaries, "skipped": skipped or {},
           "bars": [dataclasses.asdict(b) for b in bars], "plots": plots}
    (out / SUMMARY_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    (out / "summary.md").write_text(summary_table(figure, scale, ran, summaries, bars))
    log(f"{figure.name}: results in {out}")
    return doc


def summary_table(figure: Figure, scale: str, conditions: list[Condition], summaries: dict,
                  bars: list[Bar]) -> str:
    """Markdown: one row per condition and summarised metric, then the checks."""
    lines = [f"# {figure.title} ({scale} scale)", "",
             "| condition | seeds | env steps | metric | final: IQM (95% CI) | AUC: IQM (95% CI) | max: IQM (95% CI) | env steps/s per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for cond in conditions:
        s = summaries[cond.name]
        rate = s.get("env_steps_per_s_per_seed")
        for metric, st in s["stats"].items():
            lines.append(f"| {cond.name} | {s['seeds']} | {s['env_steps']} | {metric} | {fmt(st['final'])} "
                         f"| {fmt(st['auc'])} | {fmt(st['max'])} | {'n/a' if rate is None else f'{rate:.2f}'} |")
        for metric, st in s.get("final_probe", {}).items():  # measured once, at the end
            lines.append(f"| {cond.name} | {s['seeds']} | {s['env_steps']} | {metric} (end of training) "
                         f"| {fmt(st)} | | | |")
    lines += ["", "IQM: interquartile mean over seeds; 95% CI: stratified bootstrap (Agarwal et al. 2021, rliable).",
              "", *[f"- {b.line()}" for b in bars], ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ checks
