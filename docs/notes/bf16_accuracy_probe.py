# Relative error of ∇ₐδ and of the critic gradient under the bf16 probe (bf16-output backward) vs f32,
# paper sizes, fixed random batches (benchmarks' problem_inputs), one MAGE critic loss.
import sys, jax, jax.numpy as jnp
sys.path[:0] = ["benchmarks", "docs/notes"]
import bf16_probe
bf16_probe.install("bf16")
from bench_common import problem_inputs, size_problem
from magejax.agents import critic
for size in ("pendulum", "halfcheetah"):
    config, env, _ = size_problem(size, "mage", quick=False)
    out = {}
    for prec in ("f32", "bf16"):
        from magejax.agents.td3 import make_agent
        c = config.replace(precision=prec)
        agent, state, model, batch = problem_inputs(c, env, jax.random.PRNGKey(0))
        agent = make_agent(c, env)
        key = jax.random.PRNGKey(1)
        def grads(state, model, batch):
            (loss, m), g = jax.value_and_grad(agent.critic_loss, has_aux=True)(state.critic_params, state, model, batch, key)
            obs_in = agent.obs_input(state, batch.obs)
            action = agent.pi(state.actor_params, obs_in)
            tf = agent.imagined_target_fn(state, model, batch.obs, key)
            q1, _ = agent.q_fns
            _, ga = critic.td_errors_and_action_grads(state.critic_params, obs_in, action, tf, q_single=q1)
            return g, ga
        out[prec] = jax.jit(grads)(state, model, batch)
    rel = lambda a, b: float(jnp.linalg.norm(jnp.ravel(a - b)) / jnp.linalg.norm(jnp.ravel(b)))
    ga = rel(out["bf16"][1], out["f32"][1])
    flat = lambda t: jnp.concatenate([x.ravel() for x in jax.tree.leaves(t)])
    gc = rel(flat(out["bf16"][0]), flat(out["f32"][0]))
    print(f"{size}: relative error bf16 vs f32: grad_a delta {ga:.3e}, critic gradient {gc:.3e}", flush=True)
