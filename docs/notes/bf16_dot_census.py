# Which matrix products of the paper-size MAGE-TD3 update run in bf16 under the probe, and which XLA
# turned back into float32: a census of the optimised HLO's dots, weighted by FLOPs.
import re, sys, jax, jax.numpy as jnp
size = sys.argv[1] if len(sys.argv) > 1 else "pendulum"  # pendulum | halfcheetah
sys.path[:0] = ["benchmarks", "docs/notes"]
import bf16_probe
bf16_probe.install("bf16")
from bench_common import problem_inputs, size_problem
config, env, _ = size_problem(size, "mage", quick=False)
agent, state, model, batch = problem_inputs(config.replace(precision="bf16"), env, jax.random.PRNGKey(0))
text = jax.jit(agent.update_step).lower(state, model, batch, jax.random.PRNGKey(1), jnp.asarray(True)).compile().as_text()
shapes = {}
for m in re.finditer(r"%([\w.\-]+) = ([a-z0-9]+)\[([0-9,]*)\]", text):
    shapes[m.group(1)] = (m.group(2), [int(x) for x in m.group(3).split(",") if x])
for m in re.finditer(r"([\w.\-]+): ([a-z0-9]+)\[([0-9,]*)\]", text):
    shapes.setdefault(m.group(1), (m.group(2), [int(x) for x in m.group(3).split(",") if x]))
census = {}
for m in re.finditer(r"= ([a-z0-9]+)\[([0-9,]*)\]\{[0-9,]*\} dot\(%([\w.\-]+), %([\w.\-]+)\), (.*?)(?:, metadata|$)", text, re.M):
    out = [int(x) for x in m.group(2).split(",") if x]
    lhs, rhs = shapes.get(m.group(3)), shapes.get(m.group(4))
    contract = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", m.group(5)).group(1)
    k = 1
    for d in contract.split(","):
        k *= lhs[1][int(d)]
    flops = 2 * k * int(jnp.prod(jnp.asarray(out))) if out else 2 * k
    key = f"{lhs[0]} x {rhs[0]} -> {m.group(1)}"
    n, f = census.get(key, (0, 0))
    census[key] = (n + 1, f + flops)
total = sum(f for _, f in census.values())
print(f"{size}: {sum(n for n, _ in census.values())} dots, {total / 1e9:.2f} GFLOP per update")
for key, (n, f) in sorted(census.items(), key=lambda kv: -kv[1][1]):
    print(f"  {key:28s} {n:4d} dots  {100 * f / total:5.1f}% of the FLOPs")
