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
