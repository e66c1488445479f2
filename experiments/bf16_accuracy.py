"""How far bf16 matrix products move MAGE's gradients: relative error of ∇ₐδ and of the critic
gradient under `precision="bf16"` against float32, on identical states, batches and keys.

MAGE's critic loss is built from ∇ₐδ = ∇ₐr + γ∇ₐQ̄(ŝ', π̄(ŝ')) − ∇ₐQ(s, a): once the critic fits,
this is a small difference of large action-gradients, so rounding errors grow relative to it.
That is why the error is measured on trained states as well as at initialisation:

* `init`: the paper sizes (Pendulum: critic 2×384, batch 512; HalfCheetah: 2×384, batch 1024,
  model 8 × 4×512), freshly initialised networks, the benchmarks' fixed random batch;
* `trained`: every seed of a finished run directory's newest checkpoint (`--run DIR`, e.g. Fig. 2's
  MAGE-TD3 on Pendulum at the cpu preset), a batch from its own replay buffer.

Per case: ‖bf16 − f32‖ / ‖f32‖ of ∇ₐδ (both critics, the batch), of the whole critic gradient, and
of the two terms ∇ₐδ is the difference of (∇ₐy, the TD target's action-gradient, and ∇ₐQ), with
their f32 norms for scale. Writes results.json and results.md to `--out`.

    python experiments/bf16_accuracy.py --run experiments/results/fig2_sample_efficiency/pendulum/mage
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_common import problem_inputs, size_problem  # noqa: E402

from magejax import replay  # noqa: E402
from magejax.agents import critic  # noqa: E402
from magejax.agents.td3 import make_agent  # noqa: E402
from magejax.runs import trained  # noqa: E402


def gradients(config, env, state, model, batch, key, reward=None) -> dict:
    """Under f32 and bf16 on the same inputs: ∇ₐδ (both critics), the critic-parameter gradient,
    and the two terms ∇ₐδ is the difference of, ∇ₐy(a) (the TD target's) and ∇ₐQ_i(s, a)."""
    out = {}
    for precision in ("f32", "bf16"):
        agent = make_agent(config.replace(precision=precision), env)

        def grads(state, model, batch, reward):
            g = jax.grad(lambda p: agent.critic_loss(p, state, model, batch, key, reward)[0])(state.critic_params)
            obs_in = agent.obs_input(state, batch.obs)
            action = agent.pi(state.actor_params, obs_in)
            target = agent.imagined_target_fn(state, model, batch.obs, key, reward)
            q_single = agent.q_fns[0]
            _, grad_a = critic.td_errors_and_action_grads(state.critic_params, obs_in, action, target,
                                                          q_single=q_single)
            grad_y = jax.grad(lambda a: jnp.sum(target(a)))(action)
            grad_q = jax.vmap(lambda p: jax.grad(lambda a: jnp.sum(q_single(p, obs_in, a)))(action))(
                state.critic_params)
            return dict(grad_a_delta=grad_a, critic_gradient=jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]),
                        grad_a_target=grad_y, grad_a_q=grad_q)
        out[precision] = jax.jit(grads)(state, model, batch, reward)
    rel = lambda a, b: float(jnp.linalg.norm(jnp.ravel(a - b)) / jnp.linalg.norm(jnp.ravel(b)))
    norm = lambda x: float(jnp.mean(jnp.linalg.norm(x, axis=-1)))
    return dict(**{name: rel(out["bf16"][name], out["f32"][name]) for name in out["f32"]},
                grad_a_delta_norm_f32=norm(out["f32"]["grad_a_delta"]),
                grad_a_target_norm_f32=norm(out["f32"]["grad_a_target"]),
                grad_a_q_norm_f32=norm(out["f32"]["grad_a_q"]))


def at_init(size: str) -> dict:
    config, env, note = size_problem(size, "mage", quick=False)
    agent, state, model, batch = problem_inputs(config, env, jax.random.PRNGKey(0))
    return dict(case=f"{size}, paper size, at initialisation", problem=note,
                **gradients(config, env, state, model, batch, jax.random.PRNGKey(1)))


def on_trained(run_dir: Path) -> list[dict]:
    loaded = trained.load_seeds(run_dir)
    name = f"{run_dir.parent.name}/{run_dir.name}"
    rows = []
    for seed, ts in enumerate(loaded.states):
        batch = replay.sample(ts.buffer, jax.random.PRNGKey(100 + seed), loaded.run.config.batch_size)
        rows.append(dict(case=f"{name} seed {seed}, trained {loaded.env_step} env steps",
                         **gradients(loaded.run.config, loaded.trainer.env, ts.agent, ts.model, batch,
                                     jax.random.PRNGKey(1), ts.reward_model)))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, action="append", default=[], help="a finished MAGE run directory (repeatable)")
    p.add_argument("--sizes", nargs="*", default=["pendulum", "halfcheetah"], help="paper sizes at initialisation")
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "bf16_accuracy")
    args = p.parse_args(argv)
    rows = [at_init(size) for size in args.sizes]
    for run_dir in args.run:
        rows += on_trained(run_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(dict(jax=jax.__version__, rows=rows), indent=2) + "\n")
    lines = ["Relative error ‖bf16 − f32‖ / ‖f32‖; norms are f32 means over the batch. ∇ₐδ = ∇ₐy − ∇ₐQ: "
             "when ‖∇ₐδ‖ is small against ‖∇ₐQ‖ and ‖∇ₐy‖, their rounding errors dominate it.", "",
             "| case | ‖∇ₐQ‖ | ‖∇ₐy‖ | ‖∇ₐδ‖ | error ∇ₐQ | error ∇ₐy | error ∇ₐδ | error critic gradient |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['grad_a_q_norm_f32']:.3g} | {r['grad_a_target_norm_f32']:.3g} | "
              f"{r['grad_a_delta_norm_f32']:.3g} | {r['grad_a_q']:.2e} | {r['grad_a_target']:.2e} | "
              f"{r['grad_a_delta']:.2e} | {r['critic_gradient']:.2e} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
