"""The experiment scripts and their shared runner: every script's conditions and checks, and real
tiny runs (files written, summaries equal to the metrics on disk, an interrupted condition keeps
its rows and resumes)."""
from __future__ import annotations

import csv
import functools
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from magejax import configs, envs
from magejax.analysis import statistics
from magejax.experiments import checks, conditions as experiment, figures
from magejax.runs import metrics_io

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SCRIPTS = ("fig2_sample_efficiency", "fig3_action_gradient_error", "fig4_learned_reward",
           "fig5_lambda_zero", "fig7_model_capacity", "fig8_lambda_sweep", "table1_halfcheetah",
           "maac_kstep_mpc", "bf16_parity")
PNG = b"\x89PNG\r\n\x1a\n"


def script(name: str):
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A persistent compilation cache for this module: a program compiled once (a rerun, a
    resumed condition) loads from disk instead of recompiling."""
    path = tmp_path_factory.mktemp("jax_cache")
    figures.enable_compile_cache(path)
    return path


# ------------------------------------------------------------------------------ every script

@pytest.mark.parametrize("name", SCRIPTS)
def test_script_documents_both_scales_and_builds_valid_conditions(name):
    mod = script(name)
    doc = mod.__doc__
    assert "--scale paper" in doc and "--scale cpu" in doc
    # The docstring states the cpu scale's numbers; this keeps it from drifting from the code.
    cpu = mod.conditions("cpu")[0]
    try:
        config = cpu.config()
    except configs.ConfigError:
        config = None  # table1: HalfCheetah not registered here
    if config is not None:
        steps = (f"{config.total_steps} env steps", f"{config.total_steps:,} env steps")
        assert any(text in doc for text in steps) and f"every {config.eval_every}" in doc
    for scale in experiment.SCALES:
        conds = mod.conditions(scale)
        assert conds and len({c.name for c in conds}) == len(conds)
        for cond in conds:
            try:
                config = cond.config()
            except configs.ConfigError as e:
                assert "unknown environment" in str(e)  # only a Brax env missing here may fail
                continue
            assert config.env in envs.names()
            if scale == "tiny":
                assert config.total_steps == configs.TINY["total_steps"]


def test_cpu_scale_is_the_paper_config_with_the_documented_changes():
    fig2 = script("fig2_sample_efficiency")
    cpu = fig2.config("cpu", "pendulum", "mage")
    paper = fig2.config("paper", "pendulum", "mage")
    changed = {k for k, v in cpu.to_dict().items() if paper.to_dict()[k] != v}
    # The cpu preset (critic width and batch from the measured sweep) plus the figure's schedule.
    assert changed == {"total_steps", "eval_every", "critic_hidden", "batch_size"}
    assert (cpu.critic_hidden, cpu.batch_size) == (configs.CPU_CRITIC, configs.CPU_BATCH)
    assert cpu.lam == paper.lam == 0.2 and cpu.num_updates == 10 and cpu.model_train_batches == 120
    # The learning figures' schedule (Figs. 2, 4, 7, 8): 10,000 / 20,000 env steps, 5 seeds.
    cartpole = fig2.config("cpu", "cartpole_swingup", "td3")
    assert (cpu.total_steps, cartpole.total_steps, cpu.eval_every) == (10_000, 20_000, 500)
    for name in ("fig2_sample_efficiency", "fig4_learned_reward", "fig7_model_capacity", "fig8_lambda_sweep"):
        mod = script(name)
        assert mod.FIGURE.seeds["cpu"] == 5
        assert {c.config().total_steps for c in mod.conditions("cpu") if c.panel == "pendulum"} == {10_000}


def test_figures_share_runs_of_equal_configs():
    """The conditions `adopt_finished_twin` copies between figures have equal configs."""
    fig2, fig4, fig7, fig8 = (script(n) for n in ("fig2_sample_efficiency", "fig4_learned_reward",
                                                   "fig7_model_capacity", "fig8_lambda_sweep"))
    assert fig8.config("cpu", "mage", 0.2) == fig2.config("cpu", "pendulum", "mage")
    assert fig8.config("cpu", "dyna", 0.2) == fig2.config("cpu", "pendulum", "dyna")
    assert fig7.config("cpu", "dyna", "default") == fig2.config("cpu", "pendulum", "dyna")
    assert fig7.config("cpu", "mage", "default") == fig4.config("cpu", "pendulum", "mage", "true")
    assert fig7.config("cpu", "mage", "small").lam == 0.05 and fig7.config("cpu", "mage", "small").ensemble_size == 2
    parity = script("bf16_parity")
    assert parity.config("cpu", "f32") == fig2.config("cpu", "pendulum", "mage")
    assert parity.config("cpu", "bf16") == fig2.config("cpu", "pendulum", "mage").replace(precision="bf16")


@functools.cache
def _flat_curve_stats(value: float) -> dict:
    """`curve_stats` of a flat curve near `value` (3 seeds); cached: its bootstrap intervals are
    the slow part of the check tests, and the same values recur across conditions."""
    curves = value + np.array([[-0.01], [0.0], [0.01]]) * abs(value) + np.zeros((3, 3))
    return statistics.curve_stats(np.array([0, 100, 200]), curves)


def _summaries(values: dict, metric: str = "eval_return") -> dict:
    """Fake condition summaries: condition name -> a flat curve near `value` (3 seeds)."""
    out = {}
    for name, value in values.items():
        stats = {"eval_return": _flat_curve_stats(value), metric: _flat_curve_stats(value)}
        out[name] = {"seeds": 3, "env_steps": 200, "stats": stats}
    return out


@pytest.mark.parametrize("name, metric, good, bad, verdict_index", [
    ("fig2_sample_efficiency", "eval_return", {"pendulum/mage": -200.0, "pendulum/dyna": -900.0},
     {"pendulum/mage": -900.0, "pendulum/dyna": -200.0}, 0),
    ("fig3_action_gradient_error", "action_grad_error", {"pendulum/mage": 1.0, "pendulum/dyna": 6.0},
     {"pendulum/mage": 1.0, "pendulum/dyna": 4.0}, 0),
    ("fig4_learned_reward", "eval_return", {"pendulum/mage-true": -300.0, "pendulum/mage-learned": -300.5},
     {"pendulum/mage-true": -300.0, "pendulum/mage-learned": -900.0}, 0),
    ("fig5_lambda_zero", "q_action_grad_norm", {"pendulum/lam0": 0.009, "pendulum/lam0.05": 1.0},
     {"pendulum/lam0": 0.011, "pendulum/lam0.05": 1.0}, 0),
    ("fig7_model_capacity", "eval_return",
     {"pendulum/mage-default": -300.0, "pendulum/mage-small": -350.0, "pendulum/mage-smaller": -400.0,
      "pendulum/dyna-default": -500.0, "pendulum/dyna-small": -600.0, "pendulum/dyna-smaller": -900.0},
     {"pendulum/mage-default": -300.0, "pendulum/mage-small": -700.0, "pendulum/mage-smaller": -400.0,
      "pendulum/dyna-default": -500.0, "pendulum/dyna-small": -600.0, "pendulum/dyna-smaller": -900.0}, 0),
    ("fig8_lambda_sweep", "eval_return",
     {"pendulum/mage-lam0.05": -300.0, "pendulum/mage-lam0.1": -300.0, "pendulum/mage-lam0.2": -300.0,
      "pendulum/mage-lam1": -300.0, "pendulum/dyna": -800.0},
     {"pendulum/mage-lam0.05": -900.0, "pendulum/mage-lam0.1": -300.0, "pendulum/mage-lam0.2": -300.0,
      "pendulum/mage-lam1": -300.0, "pendulum/dyna": -800.0}, 0),
    ("bf16_parity", "eval_return", {"pendulum/mage-f32": -200.0, "pendulum/mage-bf16": -200.5},
     {"pendulum/mage-f32": -200.0, "pendulum/mage-bf16": -600.0}, 0),
])
def test_checks_hold_and_fail_on_the_numbers(name, metric, good, bad, verdict_index):
    mod = script(name)
    good_bars = mod.bars(_summaries(good, metric), "tiny")
    bad_bars = mod.bars(_summaries(bad, metric), "tiny")
    assert good_bars[verdict_index].holds is True, good_bars[verdict_index].line()
    assert bad_bars[verdict_index].holds is False, bad_bars[verdict_index].line()
    # A check whose conditions did not run says so instead of passing.
    assert all(b.holds is None for b in mod.bars({}, "tiny"))


def test_fig7_small_model_check_compares_with_the_default_interval():
    """MAGE-TD3-small holds the bar inside (or above) the default run's interval, fails below it."""
    mod = script("fig7_model_capacity")
    near = mod.small_model_bar(_summaries({"pendulum/mage-default": -300.0, "pendulum/mage-small": -301.0}),
                               "pendulum", "tiny")
    far = mod.small_model_bar(_summaries({"pendulum/mage-default": -300.0, "pendulum/mage-small": -400.0}),
                              "pendulum", "tiny")
    assert near.holds is True and far.holds is False, (near.line(), far.line())
    assert mod.small_model_bar({}, "pendulum", "tiny").holds is None
    assert mod.bars({}, "tiny")[-1].claim == near.claim


def test_fig2_paper_pendulum_bar_is_on_the_mean_final_return():
    """The paper-size Pendulum bar (as make test-slow's): MAGE-TD3's mean final return >= -250.
    The mean, not the IQM: one seed at -1000 among four at -100 fails it (mean -280, IQM -100)."""
    mod = script("fig2_sample_efficiency")

    def bar(per_seed):
        curves = np.array(per_seed, dtype=np.float64)[:, None] * np.ones((1, 3))
        stats = {"eval_return": statistics.curve_stats(np.array([0, 100, 200]), curves)}
        summaries = {"pendulum/mage": {"seeds": len(per_seed), "stats": stats}}
        return next(b for b in mod.bars(summaries, "paper") if b.claim.startswith("Pendulum bar"))

    assert bar([-200.0, -240.0, -260.0, -150.0, -249.0]).holds is True
    failing = bar([-100.0, -100.0, -100.0, -100.0, -1000.0])
    assert failing.holds is False and "mean over seeds -280" in failing.detail, failing.line()
    assert all(not b.claim.startswith("Pendulum bar") for b in mod.bars({}, "cpu"))
    assert next(b for b in mod.bars({}, "paper") if b.claim.startswith("Pendulum bar")).holds is None


def test_table1_reports_max_average_return_beside_the_paper():
    mod = script("table1_halfcheetah")
    bars = mod.bars(_summaries({"halfcheetah/mage": 1234.0}), "cpu")
    assert all(b.info for b in bars)
    assert "1234.00 ±" in bars[0].detail and "NOT an asymptote" in bars[0].detail and "9660.79" in bars[0].detail
    assert "not run" in bars[1].detail


# ------------------------------------------------------------------------------ real tiny runs

def _csv_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


# One condition of Fig. 3 (the script with the most machinery: a probe, a log-scale plot, a
# ratio check): each compile of the training loop costs ~40 s of CPU, so the tests compile one
# program and reuse it through the persistent cache. Every script's own parts are tested above.
FIG3 = ["--scale", "tiny", "--seeds", "2", "--only", "pendulum/mage"]


def test_fig3_tiny_end_to_end_files_and_summaries_agree(tmp_path, compile_cache, capsys):
    out = tmp_path / "fig3"
    doc = script("fig3_action_gradient_error").main(FIG3 + ["--out", str(out), "--compile-cache", str(compile_cache)])
    printed = capsys.readouterr().out
    assert "step 200/200" in printed and "BAR Fig. 3 pendulum [tiny]" in printed
    assert (out / "log.txt").read_text().count("step 200/200") == 1
    name = "pendulum/mage"
    run = out / name
    for f in ("config.json", "metrics.jsonl", "metrics.csv", "summary.json"):
        assert (run / f).exists(), f
    rows = _csv_rows(run / "metrics.csv")
    assert len(rows) == 2 * 3  # 2 seeds × evaluations at 0, 100, 200
    jsonl = metrics_io.read_metrics(run)
    for a, b in zip(rows, jsonl):
        for k, v in a.items():
            assert (math.isnan(v) and math.isnan(b[k])) or v == pytest.approx(b[k], rel=1e-6), k
    # The summary is the statistics of exactly these rows.
    summary = json.loads((run / "summary.json").read_text())
    for metric in ("eval_return", "action_grad_error"):
        steps, values = metrics_io.curves_from_metrics(jsonl, metric)
        assert values.shape == (2, 3) and np.all(np.isfinite(values)), metric
        assert summary["stats"][metric]["final"]["per_seed"] == pytest.approx(values[:, -1].tolist())
        auc = np.trapezoid(values, steps, axis=1) / 200
        assert summary["stats"][metric]["auc"]["mean"] == pytest.approx(float(auc.mean()))
    assert doc["conditions"][name]["stats"] == summary["stats"]
    assert all(math.isnan(r["actor_loss"]) for r in rows)  # the study's actor is frozen
    assert (out / "action_grad_error.png").read_bytes()[:8] == PNG
    assert doc["bars"][0]["holds"] is None and "not run: pendulum/dyna" in doc["bars"][0]["detail"]
    figure_summary = json.loads((out / "summary.json").read_text())
    assert figure_summary["bars"] == doc["bars"] and "| pendulum/mage | 2 | 200 |" in (out / "summary.md").read_text()

    # Run again: finished conditions are reused, not rerun, and give the same summary.
    again = script("fig3_action_gradient_error").main(FIG3 + ["--out", str(out), "--compile-cache", str(compile_cache)])
    assert "finished earlier with the same config and seeds" in capsys.readouterr().out
    assert again["conditions"] == doc["conditions"]
    # A different seed count is a different run: not reused.
    assert not experiment._finished(out / "pendulum/mage", script("fig3_action_gradient_error").config(
        "tiny", "pendulum", "mage"), {"seeds": 3})


def test_interrupted_condition_keeps_its_rows_and_resumes(tmp_path, compile_cache):
    mod = script("fig3_action_gradient_error")
    cond = mod.conditions("tiny")[0]  # the program the test above compiled
    metrics = ("action_grad_error",)
    lines = []

    def stop_after_first_chunk(line):
        lines.append(line)
        if "step 100/200" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiment.run_condition(cond, tmp_path, seeds=2, scale="tiny", probe=mod.FIGURE.probe, metrics=metrics,
                                 log=stop_after_first_chunk)
    run = tmp_path / cond.name
    assert not (run / "summary.json").exists()
    assert [r["env_step"] for r in metrics_io.read_metrics(run)] == [0, 0, 100, 100]
    assert len(_csv_rows(run / "metrics.csv")) == 4

    # The final probe runs once, on each seed's trained state: its buffer holds all 200 steps.
    final_probe = lambda trainer: lambda state, key: {"stored": state.buffer.size.astype(np.float32)}
    summary = experiment.run_condition(cond, tmp_path, seeds=2, scale="tiny", probe=mod.FIGURE.probe,
                                       metrics=metrics, log=lines.append, final_probe=final_probe)
    assert [r["env_step"] for r in metrics_io.read_metrics(run)] == [0, 0, 100, 100, 200, 200]
    assert summary["env_steps"] == 200 and summary["algo"] == "mage"
    assert np.isfinite(summary["stats"]["action_grad_error"]["final"]["mean"])
    assert json.loads((run / experiment.FINAL_FILE).read_text()) == {"stored": [200.0, 200.0]}
    assert summary["final_probe"]["stored"]["per_seed"] == [200.0, 200.0]
    assert experiment.summarize_condition(run, cond.name, metrics)["final_probe"] == summary["final_probe"]
    # A finished run without its final probe is not finished for a figure that asks for one.
    (run / experiment.FINAL_FILE).unlink()
    assert not experiment._finished(run, cond.config(), experiment._run_settings(2, 0, cond, "tiny"), needs_final=True)
    assert experiment._finished(run, cond.config(), experiment._run_settings(2, 0, cond, "tiny"))


def _fake_run(run_dir: Path, cond, seeds: int, finished: bool = True, value: float = -100.0) -> None:
    """A run directory as `run_conditions` leaves it: config, rows, and a summary when finished."""
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_io.write_config(run_dir, cond.config(), run=experiment._run_settings(seeds, 0, cond, "cpu"))
    with metrics_io.MetricsWriter(run_dir) as writer:
        for step in (0, 500):
            writer.write_rows(step, {"eval_return": np.full(seeds, value + step, dtype=np.float32)})
    metrics_io.write_csv(run_dir)
    if finished:
        summary = experiment.summarize_condition(run_dir, cond.name, ("eval_return",))
        (run_dir / experiment.SUMMARY_FILE).write_text(json.dumps({**summary, "wall_s": 12.0}))


def test_a_finished_twin_in_another_figure_is_copied_not_rerun(tmp_path):
    fig2, fig8 = script("fig2_sample_efficiency"), script("fig8_lambda_sweep")
    mage2 = next(c for c in fig2.conditions("cpu") if c.name == "pendulum/mage")
    lam02 = next(c for c in fig8.conditions("cpu") if c.name == "pendulum/mage-lam0.2")
    lam01 = next(c for c in fig8.conditions("cpu") if c.name == "pendulum/mage-lam0.1")
    results = tmp_path / "results"
    _fake_run(results / "fig2_sample_efficiency" / "pendulum/mage", mage2, seeds=5)
    out = results / "fig8_lambda_sweep"
    adopt = lambda cond, seeds=5: experiment.adopt_finished_twin(cond, out, seeds=seeds, base_seed=0, scale="cpu",
                                                                 search_root=results)
    # Another seed count, or another λ, is another run: nothing copied.
    assert adopt(lam02, seeds=3) is None and adopt(lam01) is None and not out.exists()
    assert adopt(lam02) == results / "fig2_sample_efficiency" / "pendulum/mage"
    target = out / lam02.name
    assert metrics_io.read_metrics(target) == metrics_io.read_metrics(results / "fig2_sample_efficiency/pendulum/mage")
    assert metrics_io.read_run_settings(target)["label"] == lam02.label  # this figure's legend
    summary = json.loads((target / experiment.SUMMARY_FILE).read_text())
    assert summary["name"] == lam02.name and summary["copied_from"].endswith("fig2_sample_efficiency/pendulum/mage")
    assert experiment._finished(target, lam02.config(), experiment._run_settings(5, 0, lam02, "cpu"))
    assert adopt(lam02) is None  # already here: not copied again

    # An unfinished twin is not copied; an unfinished run of this condition here is left to resume.
    dyna2 = next(c for c in fig2.conditions("cpu") if c.name == "pendulum/dyna")
    dyna8 = next(c for c in fig8.conditions("cpu") if c.name == "pendulum/dyna")
    _fake_run(results / "fig2_sample_efficiency" / "pendulum/dyna", dyna2, seeds=5, finished=False)
    assert adopt(dyna8) is None
    _fake_run(results / "fig2_sample_efficiency" / "pendulum/dyna", dyna2, seeds=5, value=-50.0)
    _fake_run(out / dyna8.name, dyna8, seeds=5, finished=False, value=-900.0)
    assert adopt(dyna8) is None and metrics_io.read_metrics(out / dyna8.name)[0]["eval_return"] == -900.0
    # A different config's leftovers here are replaced by the twin.
    _fake_run(out / dyna8.name, lam01, seeds=5, finished=False, value=-900.0)
    assert adopt(dyna8) is not None and metrics_io.read_metrics(out / dyna8.name)[0]["eval_return"] == -50.0


def test_a_copied_condition_is_not_trained_again_with_its_sweep(tmp_path, monkeypatch):
    """Fig. 8's λ values share one compiled program; λ = 0.2 is Fig. 2's finished MAGE run. The
    copy must stay out of the program that trains the other λ values (a program resumes only
    when all its members are the same run, so it would train λ = 0.2 again from step 0)."""
    fig2, fig8 = script("fig2_sample_efficiency"), script("fig8_lambda_sweep")
    mage2 = next(c for c in fig2.conditions("cpu") if c.name == "pendulum/mage")
    results = tmp_path / "results"
    _fake_run(results / "fig2_sample_efficiency" / "pendulum/mage", mage2, seeds=5, value=-150.0)
    programs = []

    def fake_run_conditions(group, out, *, seeds, **kwargs):  # records each program; "trains" it
        programs.append(([c.name for c in group], seeds))
        for cond in group:
            if not (out / cond.name / experiment.SUMMARY_FILE).exists():
                _fake_run(out / cond.name, cond, seeds=seeds, value=-900.0)
        return [experiment.summarize_condition(out / c.name, c.name, kwargs["metrics"]) for c in group]

    monkeypatch.setattr(figures, "run_conditions", fake_run_conditions)
    doc = fig8.main(["--scale", "cpu", "--out", str(results / "fig8_lambda_sweep"), "--only", "mage-lam",
                     "--compile-cache", "off", "--quiet"])
    sweep = [names for names, _ in programs if len(names) > 1]
    assert sweep == [["pendulum/mage-lam0.05", "pendulum/mage-lam0.1", "pendulum/mage-lam1"]]
    assert (["pendulum/mage-lam0.2"], 5) in programs
    # λ = 0.2's results are Fig. 2's, not a new run's.
    assert doc["conditions"]["pendulum/mage-lam0.2"]["stats"]["eval_return"]["final"]["iqm"] == pytest.approx(350.0)
    assert doc["conditions"]["pendulum/mage-lam0.1"]["stats"]["eval_return"]["final"]["iqm"] == pytest.approx(-400.0)


def test_only_runs_its_conditions_but_the_summary_keeps_every_finished_one(tmp_path, monkeypatch):
    """`--only` trains only the selected conditions; the figure's summary and checks still cover
    the others finished here with the same config and seeds (running one condition used to drop
    every other result from summary.json). Unfinished runs and other configs' leftovers are left out."""
    fig2 = script("fig2_sample_efficiency")
    cond = {c.name: c for c in fig2.conditions("cpu")}
    out = tmp_path / "results" / "fig2_sample_efficiency"
    _fake_run(out / "pendulum/mage", cond["pendulum/mage"], seeds=5, value=-300.0)
    _fake_run(out / "pendulum/td3", cond["pendulum/td3"], seeds=5, value=-900.0)
    _fake_run(out / "pendulum/dyna", cond["pendulum/dyna"], seeds=5, finished=False)
    _fake_run(out / "cartpole_swingup/mage", cond["pendulum/mage"], seeds=5)  # another config's files
    _fake_run(out / "cartpole_swingup/td3", cond["cartpole_swingup/td3"], seeds=3)  # another seed count
    programs = []

    def fake_run_conditions(group, out, *, seeds, **kwargs):
        programs.append([c.name for c in group])
        for c in group:
            _fake_run(out / c.name, c, seeds=seeds, value=-600.0)
        return [experiment.summarize_condition(out / c.name, c.name, kwargs["metrics"]) for c in group]

    monkeypatch.setattr(figures, "run_conditions", fake_run_conditions)
    doc = fig2.main(["--scale", "cpu", "--out", str(out), "--only", "pendulum/td3-utd", "--compile-cache", "off",
                     "--quiet"])
    assert programs == [["pendulum/td3-utd"]]
    # In the figure's order, not the order the programs ran in.
    assert list(doc["conditions"]) == ["pendulum/mage", "pendulum/td3", "pendulum/td3-utd"]
    assert doc["conditions"]["pendulum/mage"]["wall_s"] == 12.0  # the stored summary's timings kept
    assert json.loads((out / "summary.json").read_text())["conditions"].keys() == doc["conditions"].keys()
    bars = {b["claim"]: b for b in doc["bars"]}
    vs_td3 = next(b for claim, b in bars.items() if "pendulum" in claim and ">= TD3 AUC" in claim)
    vs_utd = next(b for claim, b in bars.items() if "pendulum" in claim and ">= TD3-UTD AUC" in claim)
    vs_dyna = next(b for claim, b in bars.items() if "pendulum" in claim and ">= Dyna-TD3 AUC" in claim)
    assert vs_td3["holds"] is True and vs_utd["holds"] is True and vs_dyna["holds"] is None
    assert "pendulum/mage" in (out / "summary.md").read_text()


def test_mpc_probe_pairs_the_actor_and_the_planner_on_the_same_episodes():
    import jax

    from magejax.train import make_train

    mod = script("maac_kstep_mpc")
    trainer = make_train(mod.config("tiny", "pendulum", "mage"))
    state, _ = jax.jit(trainer.start)(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    out = jax.jit(mod.mpc_probe(2, trainer))(state, key)
    actor = jax.jit(make_train(trainer.config.replace(eval_episodes=2)).evaluate)(state, key)
    assert float(out["actor_return"]) == pytest.approx(float(actor.mean()), rel=1e-6)
    assert float(out["mpc_minus_actor"]) == pytest.approx(float(out["mpc_return"] - out["actor_return"]), abs=1e-3)
    assert np.isfinite(float(out["mpc_return"])) and float(out["mpc_return"]) != pytest.approx(float(actor.mean()))
    # The comparison's conditions: MAGE's horizon 1 and 3, MAAC's preset horizon.
    assert [mod.config("cpu", "pendulum", n).horizon for n in mod.ALGOS] == [3, 1, 3]
    assert mod.FIGURE.seeds["cpu"] == 5


def test_summarize_only_and_a_skipped_condition(tmp_path, compile_cache, capsys, monkeypatch):
    """--summarize-only runs nothing; a condition whose env is missing is skipped, not fatal."""
    mod = script("table1_halfcheetah")
    # Unregister HalfCheetah for this test: its conditions then cannot build their configs.
    registered = envs.names()
    monkeypatch.setattr(envs, "names", lambda: tuple(n for n in registered if n != "halfcheetah"))
    doc = mod.main(["--scale", "tiny", "--out", str(tmp_path), "--compile-cache", "off"])
    assert set(doc["skipped"]) == {"halfcheetah/mage", "halfcheetah/dyna", "halfcheetah/td3"}
    assert "SKIPPED" in capsys.readouterr().out and doc["conditions"] == {}
    doc = mod.main(["--scale", "tiny", "--out", str(tmp_path), "--summarize-only", "--compile-cache", "off"])
    assert doc["conditions"] == {} and all("not run" in b["detail"] for b in doc["bars"])


def test_cartpole_saturation_action_stats_counts_only_the_live_part_of_the_episode():
    action_stats = script("cartpole_saturation").action_stats
    actions = np.array([1.0, 0.995, -0.5, -1.0, 0.3, 0.3])
    alive = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # terminated after step 4
    stats = action_stats(actions, alive)
    assert stats["length"] == 4
    assert stats["frac_saturated"] == pytest.approx(0.75)  # 1.0, 0.995 and -1.0
    assert stats["mean_action"] == pytest.approx((1.0 + 0.995 - 0.5 - 1.0) / 4)
    assert stats["sign_changes"] == 1


def test_cartpole_saturation_diagnoses_finished_runs_from_their_checkpoints(tmp_path, capsys):
    import jax

    from magejax import replay
    from magejax.runs import driver, trained
    from magejax.train import make_train

    mod = script("cartpole_saturation")
    runs = {}
    for algo in ("mage", "td3"):
        runs[algo] = tmp_path / algo
        driver.run(configs.preset("cartpole_swingup", algo, "tiny"), runs[algo], seeds=2, seed=0)
    assert mod.main(["--runs", str(runs["mage"]), str(runs["td3"]), "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["algo"] for r in results] == ["mage", "td3"] and all(len(r["seeds"]) == 2 for r in results)
    for r in results:
        for seed in r["seeds"]:
            for k, v in seed.items():
                if "outward" in k or "frac" in k:
                    assert 0.0 <= v <= 1.0, (k, v)
    # The learned model's target exists only where there is a learned model.
    assert "target_grad_outward_learned_model" in results[0]["seeds"][0]
    assert "target_grad_outward_learned_model" not in results[1]["seeds"][0]
    assert "target_grad_outward_true_dynamics" in results[1]["seeds"][0]
    # The saturated fraction is that of the actor on the same buffer sample, computed here directly.
    run = trained.read_run(runs["mage"])
    trainer = make_train(run.config)
    state = trained.restore(run, trainer).state
    ts = jax.tree.map(lambda x: x[1], state)
    key = jax.random.split(jax.random.PRNGKey(101))[0]  # gradient_diagnosis's batch key for seed 1
    obs = replay.sample(ts.buffer, key, mod.STATES).obs
    frac = float(np.mean(np.abs(np.asarray(trainer.agent.policy(ts.agent, obs))) > mod.SATURATED))
    assert results[0]["seeds"][1]["frac_states_saturated"] == pytest.approx(frac)
    assert "∇ₐQ outward" in (tmp_path / "out" / "results.md").read_text()
    with pytest.raises(SystemExit):
        mod.main(["--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert "no run in" in capsys.readouterr().err


def test_iqm_curve_and_the_ratio_along_the_run():
    steps = np.array([0, 100, 200, 300])
    # 4 seeds: the IQM drops the lowest and the highest seed at every point.
    values = np.array([[1.0, 2.0, 4.0, 8.0], [3.0, 3.0, 3.0, 3.0], [5.0, 6.0, 6.0, 6.0], [100.0, 100, 100, 100]])
    low = statistics.curve_stats(steps, values)
    assert low["iqm_curve"] == {"env_step": [0, 100, 200, 300], "iqm": [4.0, 4.5, 5.0, 7.0]}
    high = statistics.curve_stats(steps, 3 * values)
    summaries = {"a": {"stats": {"m": low}}, "b": {"stats": {"m": high}}}
    bar = checks.ratio_over_time("ratio", summaries, "a", "b", metric="m", points=3)
    assert bar.info and bar.line() == "INFO ratio: m IQM b / a at env step 0: 3, 200: 3, 300: 3"
    with_nan = statistics.curve_stats(steps, np.where(values == 1.0, np.nan, values))
    assert with_nan["iqm_curve"]["iqm"][0] is None
    assert checks.ratio_over_time("r", {"a": {"stats": {"m": low}}}, "a", "b", metric="m").holds is None
