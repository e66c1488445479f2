"""Mixed precision: the paper-size MAGE-TD3 update in float32 against bf16 (`Config.precision`),
timed interleaved in one process so that load affects both alike; the matmul peak in each; and a
census of the compiled update's matrix products by operand type, weighted by FLOPs, which shows
how much of the work XLA actually runs in bf16 (it converts some product forms back to float32);
and a per-operation profile of both updates (`bench_profile`): where the time goes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from bench_profile import dot_census, profile_compiled
from bench_common import Settings, keys_for, log, problem_inputs, size_problem, summary, timed_call

# The targets for the f32/bf16 ratio of the paper-size MAGE-TD3 update.
TARGET_SPEEDUP = {"halfcheetah": 2.0, "pendulum": 1.5}


def matmul_gflops(n: int, dtype, reps: int, key: jax.Array) -> float:
    """Median GFLOP/s of an n³ product with `dtype` operands and float32 accumulation."""
    a, b = (jax.random.normal(k, (n, n)).astype(dtype) for k in jax.random.split(key))
    f = jax.jit(lambda a, b: jax.lax.dot(a, b, preferred_element_type=jnp.float32)).lower(a, b).compile()
    timed_call(f, a, b)
    times = [timed_call(f, a, b)[1] for _ in range(max(reps, 10))]
    return 2.0 * n**3 / float(np.median(times)) / 1e9


def bench_precision(s: Settings, key: jax.Array) -> dict:
    out = {"matmul_gflops": {name: matmul_gflops(256 if s.quick else 2048, dtype, s.reps, key)
                             for name, dtype in (("f32", jnp.float32), ("bf16", jnp.bfloat16))}}
    for size in s.sizes:
        config, env, note = size_problem(size, "mage", s.quick)
        log(f"precision {size}: f32 and bf16 MAGE-TD3 updates")
        compiled = {}
        for precision in ("f32", "bf16"):
            agent, state, model, batch = problem_inputs(config.replace(precision=precision), env, key)
            fn = jax.jit(agent.update_step).lower(state, model, batch, jax.random.PRNGKey(1), jnp.asarray(True))
            compiled[precision] = (fn.compile(), state, model, batch)
        times = {p: [] for p in compiled}
        keys = keys_for(jax.random.PRNGKey(2), s.warmup + s.reps)
        for i, k in enumerate(keys):  # interleaved: f32, bf16, f32, ...; actor and critic-only alternate
            for p, (fn, state, model, batch) in compiled.items():
                _, t = timed_call(fn, state, model, batch, k, jnp.asarray(i % 2 == 0))
                if i >= s.warmup:
                    times[p].append(t)
        ms = {p: summary(t) for p, t in times.items()}
        speedup = ms["f32"]["median"] / ms["bf16"]["median"]
        out[size] = dict(problem=note.replace("'mage'", "MAGE-TD3"), ms_per_update=ms, f32_over_bf16=speedup,
                         target=TARGET_SPEEDUP[size], meets_target=bool(speedup >= TARGET_SPEEDUP[size]),
                         bf16_dot_census=dot_census(compiled["bf16"][0].as_text()),
                         profile={p: profile_compiled(fn, (state, model, batch, keys[0], jnp.asarray(True)), s.reps)
                                  for p, (fn, state, model, batch) in compiled.items()})
    return out
