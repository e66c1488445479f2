# ms per paper-size MAGE-TD3 update, f32 against the bf16 probe (bf16-output backward), one process,
# interleaved repetitions. Run from the repository root on an idle machine.
import sys, time, jax, jax.numpy as jnp, numpy as np
sys.path[:0] = ["benchmarks", "docs/notes"]
import bf16_probe
bf16_probe.install("bf16")
from bench_common import problem_inputs, size_problem
for size in ("pendulum", "halfcheetah"):
    config, env, _ = size_problem(size, "mage", quick=False)
    fns = {}
    for prec in ("f32", "bf16"):
        agent, state, model, batch = problem_inputs(config.replace(precision=prec), env, jax.random.PRNGKey(0))
        f = jax.jit(agent.update_step).lower(state, model, batch, jax.random.PRNGKey(1), jnp.asarray(True)).compile()
        fns[prec] = (f, state, model, batch)
    times = {p: [] for p in fns}
    for i in range(25):
        for p, (f, state, model, batch) in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(state, model, batch, jax.random.PRNGKey(i), jnp.asarray(i % 2 == 0)))
            if i >= 5:
                times[p].append(time.perf_counter() - t)
    med = {p: 1e3 * float(np.median(v)) for p, v in times.items()}
    print(f"{size}: ms per update f32 {med['f32']:.1f}, bf16 {med['bf16']:.1f}, f32/bf16 {med['f32'] / med['bf16']:.2f}", flush=True)
