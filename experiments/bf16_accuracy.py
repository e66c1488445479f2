"""How far bf16 matrix products move MAGE's gradients: relative error of ∇ₐδ and of the critic
gradient under `precision="bf16"` against float32, on identical states, batches and keys.

MAGE's critic loss is built from ∇ₐδ = ∇ₐr + γ∇ₐQ̄(ŝ', π̄(ŝ')) − ∇ₐQ(s, a): once the critic fits,
this is a small difference of large action-gradients, so rounding errors grow relative to it.
That is why the error is measured on trained states as well as at initialisation:

* `init`: the paper sizes (Pendulum: critic 2×384, batch 512; HalfCheetah: 2×384, batch 1024,
  model 8 × 4×512), freshly initialised networks, the benchmarks' fixed random batch;
* `trained`: every seed of a finished run directory's newest checkpoint (`--run DIR`, e.g. Fig. 2's
  MAGE-TD3 on Pendulum at the cpu preset), a batch from its own replay buffer.

Per case: ‖bf16 − f32‖ / ‖f32‖ of ∇ₐδ (critic 1, the batch) and of the whole critic gradient, and
the f32 ‖∇ₐδ‖ for scale. Writes results.json and results.md to `--out`.

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


def gradients(config, env, state, model, batch, key) -> dict:
    """f32 and bf16 (∇ₐδ of critic 1, critic-parameter gradient) on the same inputs."""
    out = {}
    for precision in ("f32", "bf16"):
        agent = make_agent(config.replace(precision=precision), env)

        def grads(state, model, batch):
            g = jax.grad(lambda p: agent.critic_loss(p, state, model, batch, key)[0])(state.critic_params)
            obs_in = agent.obs_input(state, batch.obs)
            action = agent.pi(state.actor_params, obs_in)
            target = agent.imagined_target_fn(state, model, batch.obs, key)
            _, grad_a = critic.td_errors_and_action_grads(state.critic_params, obs_in, action, target,
                                                          q_single=agent.q_fns[0])
            return grad_a, jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])
        out[precision] = jax.jit(grads)(state, model, batch)
    rel = lambda a, b: float(jnp.linalg.norm(jnp.ravel(a - b)) / jnp.linalg.norm(jnp.ravel(b)))
    (ga32, gc32), (ga16, gc16) = out["f32"], out["bf16"]
    return dict(grad_a_delta=rel(ga16, ga32), critic_gradient=rel(gc16, gc32),
                grad_a_delta_norm_f32=float(jnp.mean(jnp.linalg.norm(ga32, axis=-1))))


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
                                     jax.random.PRNGKey(1))))
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
    lines = ["| case | ‖∇ₐδ‖ (f32, mean) | rel. error of ∇ₐδ | rel. error of the critic gradient |",
             "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['grad_a_delta_norm_f32']:.3g} | {r['grad_a_delta']:.2e} | {r['critic_gradient']:.2e} |"
              for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
