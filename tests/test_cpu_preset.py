"""The `cpu` preset (issue: learning you can see on a 2-core CPU): it exists for Pendulum and
CartPole swing-up, is validated like every preset, is the sweep's chosen setting, and trains."""
from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from magejax import configs
from magejax.train import make_train

SWEEP = Path(__file__).resolve().parents[1] / "experiments" / "results" / "cpu_preset_sweep" / "sweep.json"


@pytest.mark.parametrize("env", ["pendulum", "cartpole_swingup"])
def test_cpu_preset_is_the_paper_preset_with_the_swept_critic_and_batch(env):
    cpu, paper = configs.preset(env, "mage", "cpu"), configs.preset(env, "mage", "paper")
    assert cpu.replace(critic_hidden=paper.critic_hidden, batch_size=paper.batch_size) == paper
    assert (cpu.critic_hidden, cpu.batch_size) == (configs.CPU_CRITIC, configs.CPU_BATCH)
    assert cpu.num_updates == 10 and cpu.normalize_obs and cpu.lam == 0.2
    # Every algorithm gets it, and it is validated like any other preset.
    for algo in configs.ALGOS:
        if algo != "maac":
            assert configs.preset(env, algo, "cpu").critic_hidden == configs.CPU_CRITIC
    with pytest.raises(configs.ConfigError, match="batch_size"):
        configs.preset(env, "mage", "cpu", batch_size=12)  # not divisible by the 8 members


def test_cpu_preset_is_the_sweeps_choice():
    sweep = json.loads(SWEEP.read_text())
    chosen = next(r for r in sweep["rows"] if r["setting"] == sweep["chosen"])
    assert chosen["passes"] and chosen["seeds_reached"] >= 4
    assert sweep["chosen"] == f"critic{configs.CPU_CRITIC[0]}_batch{configs.CPU_BATCH}"
    # Cheapest first: every setting measured cheaper than the choice ran and failed.
    cost = chosen["ms_per_env_step_5_seeds"]
    for row in sweep["rows"]:
        if row["ms_per_env_step_5_seeds"] < cost:
            assert "passes" in row and not row["passes"], row["setting"]


def test_cpu_preset_only_where_a_sweep_chose_it():
    with pytest.raises(configs.ConfigError, match="cpu preset exists for pendulum, cartpole_swingup"):
        configs.preset("halfcheetah", "mage", "cpu")


@pytest.mark.parametrize("env", ["pendulum", "cartpole_swingup"])
def test_cpu_preset_trains_in_a_short_run(env):
    config = configs.preset(env, "mage", "cpu", total_steps=200, eval_every=100, eval_episodes=2)
    trainer = make_train(config)
    state, rows = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    assert np.all(np.isfinite(np.asarray(rows["eval_return"])))
    assert float(rows["nonfinite_losses"].sum()) == 0 and np.isfinite(float(rows["critic_loss"][-1]))
    assert int(state.buffer.size) == 200


def test_sweep_report_from_a_fresh_checkout_keeps_every_setting_that_ran(tmp_path):
    """Without runs/ (a fresh clone), `--report` rebuilds the table from the committed copies of
    each setting's files, so the settings that ran and the choice are never lost."""
    import shutil
    import sys

    experiments = SWEEP.parents[2]
    sys.path.insert(0, str(experiments))
    import cpu_preset_report
    import cpu_preset_sweep

    results = tmp_path / "results"
    shutil.copytree(SWEEP.parent, results)
    cpu_preset_report.write(tmp_path / "no_runs", results, cpu_preset_sweep.settings(), plot=False)
    rebuilt, committed = json.loads((results / "sweep.json").read_text()), json.loads(SWEEP.read_text())
    assert rebuilt["chosen"] == committed["chosen"]
    finished = lambda doc: {r["setting"] for r in doc["rows"] if "passes" in r}
    assert finished(rebuilt) == finished(committed) and len(finished(rebuilt)) >= 4


def _sweep_module():
    import sys

    sys.path.insert(0, str(SWEEP.parents[2]))
    import cpu_preset_sweep
    return cpu_preset_sweep


def _fake_run(run_dir, config, hits, seeds=5, last=10_000, every=250):
    """A finished run dir whose seed i returns -1400 before env step hits[i] and -150 from it on."""
    from magejax.runs import metrics_io

    run_dir.mkdir(parents=True)
    metrics_io.write_config(run_dir, config, run={"seeds": seeds, "seed": 0})
    with open(run_dir / metrics_io.METRICS_FILE, "w") as f:
        for step in range(every, last + 1, every):
            for seed in range(seeds):
                ret = -150.0 if hits[seed] is not None and step >= hits[seed] else -1400.0
                f.write(json.dumps({"env_step": step, "seed": seed, "eval_return": ret}) + "\n")
    (run_dir / "summary.json").write_text(json.dumps({"train_s": 123.0, "env_steps": last}))


def test_sweep_adopts_a_finished_twin_up_to_where_its_stopping_rules_fire(tmp_path, monkeypatch):
    """The paper-size setting is Fig. 2's paper-size MAGE-TD3 run: a finished run of the same
    config and seeds is cut where the sweep's own rules would have stopped it, not retrained."""
    from magejax.runs import metrics_io

    sweep = _sweep_module()
    name = "critic384_batch512"
    overrides = sweep.settings()[name]
    config = sweep.config_of(overrides)
    results = tmp_path / "experiments" / "results"
    twin = results / "fig2_sample_efficiency_paper" / "pendulum" / "mage"
    _fake_run(twin, config, [1000, 1500, 2000, 2500, 3000])
    # Near misses, found first, are never taken: another config, another seed count.
    _fake_run(results / "a_near_misses" / "batch256", sweep.config_of({**overrides, "batch_size": 256}), [250] * 5)
    _fake_run(results / "a_near_misses" / "three_seeds", config, [250] * 3, seeds=3)
    monkeypatch.setattr(sweep, "ROOT", tmp_path)
    monkeypatch.setattr(sweep, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(sweep, "RESULTS", results / "cpu_preset_sweep")
    assert sweep.finished_twin(config) == twin

    summary = sweep.learn(name, overrides)
    # Success rule: every seed at -250 by 3000, then 1000 more steps.
    assert summary["stopped"] == "success" and summary["last_step"] == 4000
    assert summary["first_hit_step"] == [1000, 1500, 2000, 2500, 3000] and summary["passes"] is True
    assert summary["final_returns"] == [-150.0] * 5
    assert summary["copied_from"] == "experiments/results/fig2_sample_efficiency_paper/pendulum/mage"
    assert summary["twin_train_s"] == 123.0
    rows = metrics_io.read_metrics(tmp_path / "runs" / name)
    assert max(r["env_step"] for r in rows) == 4000 and len(rows) == 16 * 5
    assert metrics_io.read_config(tmp_path / "runs" / name) == config


def test_sweep_rules_cut_a_full_run_at_failure_and_keep_it_to_the_end_otherwise():
    sweep = _sweep_module()
    rows = lambda hits: [{"env_step": s, "seed": i, "eval_return": -150.0 if h is not None and s >= h else -1400.0}
                         for s in range(250, 10_001, 250) for i, h in enumerate(hits)]
    kept, reason, step = sweep.rows_until_stop(rows([2000, None, None, None, None]))
    assert (reason, step, max(r["env_step"] for r in kept)) == ("failure", 6000, 6000)
    kept, reason, step = sweep.rows_until_stop(rows([2000, 3000, None, None, 9500]))
    assert (reason, step, len(kept)) == ("end", 10_000, 40 * 5)
