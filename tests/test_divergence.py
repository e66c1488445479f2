"""A run whose losses go non-finite stops cleanly: exit 1, one message naming the env step, the
seed and the losses, no traceback; the metrics rows before it and the last good checkpoint are
kept, and that checkpoint restores.

The divergence is injected, not provoked: an absurd learning rate does not reliably make a tiny
run's losses non-finite within a few hundred steps (clipped gradients, bounded Pendulum), and
which seed would diverge first is not known in advance. Instead seed 1's critic weights are set
to NaN at the start of the third chunk (env steps 201..300), after checkpoints at 100 and 200."""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import cli
from magejax.runs import checkpoint, metrics_io
from magejax.runs import divergence
from magejax import train as train_lib

SEEDS, POISONED_SEED, POISONED_CHUNK = 2, 1, 2
MARK = 12345.0
MAKE_TRAIN = train_lib.make_train  # the real one; the CLI gets the poisoning one
ARGS = ["train", "--preset", "tiny", "--seeds", str(SEEDS), "--steps", "400", "--eval-every", "100",
        "--quiet"]


def _poisoning_make_train(config):
    """make_train whose run_chunk NaNs the critic of seed POISONED_SEED at chunk POISONED_CHUNK.

    The seed is recognised by a mark in the last replay slot, written by `start` for that seed's
    key; the buffer (1000 slots) never fills in 400 steps, so the mark is never sampled.
    """
    trainer = MAKE_TRAIN(config)
    poisoned_key = jax.random.split(jax.random.PRNGKey(0), SEEDS)[POISONED_SEED]

    def start(key):
        state, row = trainer.start(key)
        mark = jnp.where(jnp.all(key == poisoned_key), MARK, 0.0)
        data = state.buffer.data.replace(reward=state.buffer.data.reward.at[-1].set(mark))
        return state.replace(buffer=state.buffer.replace(data=data)), row

    def run_chunk(state, chunk_index):
        poison = (chunk_index == POISONED_CHUNK) & (state.buffer.data.reward[-1] == MARK)
        critic = jax.tree.map(lambda x: jnp.where(poison, jnp.nan, x), state.agent.critic_params)
        return trainer.run_chunk(state.replace(agent=state.agent.replace(critic_params=critic)), chunk_index)

    return train_lib.Trainer(config=config, env=trainer.env, agent=trainer.agent, start=start,
                             run_chunk=run_chunk, run_last_chunk=run_chunk, train=trainer.train,
                             evaluate=trainer.evaluate)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "diverged"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_lib, "make_train", _poisoning_make_train)
        stderr = io.StringIO()
        mp.setattr("sys.stderr", stderr)
        with pytest.raises(SystemExit) as e:
            cli.main(ARGS + ["--out", str(out)])
    return out, e.value.code, stderr.getvalue()


def test_stops_with_exit_1_and_one_clear_message(diverged):
    out, code, stderr = diverged
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1  # --quiet: the error is the only output
    assert stderr.startswith("magejax: error: training diverged at env step 300: seed 1: non-finite ")
    assert "critic_loss" in stderr and "(nonfinite_losses 104 in this chunk)" in stderr  # 100 updates, 4 model fits
    assert "seed 0" not in stderr  # the other seed is fine
    assert str(out / "metrics.jsonl") in stderr
    assert "the newest checkpoint, from before it, is at env step 200" in stderr
    assert not (out / "summary.json").exists()


def test_rows_before_the_divergence_are_kept(diverged):
    out, _, _ = diverged
    rows = metrics_io.read_metrics(out)
    assert [(r["env_step"], r["seed"]) for r in rows] == [(s, i) for s in (0, 100, 200, 300) for i in range(SEEDS)]
    assert all(np.isfinite(r["eval_return"]) and r["nonfinite_losses"] == 0 for r in rows if r["env_step"] <= 200)
    last = {r["seed"]: r for r in rows if r["env_step"] == 300}
    assert last[POISONED_SEED]["nonfinite_losses"] > 0 and last[0]["nonfinite_losses"] == 0


def test_last_good_checkpoint_restores(diverged):
    out, _, _ = diverged
    config = metrics_io.read_config(out)
    ckpts = checkpoint.RunCheckpoints(out, checkpoint.identity(config, SEEDS, 0))
    assert ckpts.steps() == [100, 200]  # the diverged state was never checkpointed
    trainer = train_lib.make_train(config)
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    logs = []
    state, progress = ckpts.restore(jax.eval_shape(jax.vmap(trainer.start), keys)[0], log=logs.append)
    ckpts.close()
    assert progress.env_step == 200 and progress.metrics_rows == 3 * SEEDS and logs == []
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.agent))


def test_message_names_losses_nan_in_every_seed():
    """All seeds diverging at once: a loss NaN in every seed is named, not taken for absent."""
    nan = float("nan")
    row = {name: np.array([1.0, 1.0]) for name in train_lib.METRIC_NAMES}
    row.update(critic_loss=np.array([nan, nan]), td_error=np.array([nan, nan]),
               model_nll=np.array([nan, nan]), nonfinite_losses=np.array([100.0, 0.0]))
    problems = divergence.non_finite(row)
    message = divergence.describe(700, row, problems, uses_model=False)
    assert message == ("training diverged at env step 700: seed 0: non-finite critic_loss, td_error "
                       "(nonfinite_losses 100 in this chunk)")  # model_nll not named: model-free
    row["critic_loss"] = row["td_error"] = np.array([1.0, 1.0])  # NaN only mid-chunk: means finite
    assert "seed 0: non-finite loss (which one is not visible: the chunk means skip NaN)" in divergence.describe(
        700, row, divergence.non_finite(row), uses_model=False)


def test_message_names_reward_and_model_losses_only_where_learned():
    """The oracle learns no model, true rewards need no reward model: their NaN is absence."""
    nan = float("nan")
    row = {name: np.array([1.0]) for name in train_lib.METRIC_NAMES}
    row.update(reward_mse=np.array([nan]), model_nll=np.array([nan]), nonfinite_losses=np.array([3.0]))
    problems = divergence.non_finite(row)
    assert divergence.describe(700, row, problems, uses_model=False, learns_reward=True) == (
        "training diverged at env step 700: seed 0: non-finite reward_mse (nonfinite_losses 3 in this chunk)")
    assert "which one is not visible" in divergence.describe(700, row, problems, uses_model=False)
