"""Kernel-level benchmarks: the matmul peak, one agent update step per algorithm and size, one
model-training batch, and the HLO check that MAGE's critic gradient runs the model forward twice."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from bench_common import (Settings, compile_timed, config_summary, keys_for, log, model_state_for, problem_inputs,
                          random_batch, size_problem, summary, timed_call, xla_flops)
from magejax import configs
from magejax.agents import td3 as update
from magejax.envs.base import Env

def bench_matmul(s: Settings, key: jax.Array) -> dict:
    n = s.matmul_n
    ka, kb = jax.random.split(key)
    a = jax.block_until_ready(jax.random.normal(ka, (n, n), jnp.float32))
    b = jax.block_until_ready(jax.random.normal(kb, (n, n), jnp.float32))
    compiled, compile_times = compile_timed(jnp.matmul, a, b)
    for _ in range(s.warmup):
        timed_call(compiled, a, b)
    times = [timed_call(compiled, a, b)[1] for _ in range(max(s.reps, 20))]
    flops = 2.0 * n**3
    ms = summary(times)
    return dict(n=n, dtype="float32", flops=flops, xla_flops=xla_flops(compiled), ms=ms,
                gflops=dict(median=flops / ms["median"] / 1e6, best=flops / ms["min"] / 1e6),
                compile=compile_times)


def bench_update_one(config: configs.Config, env: Env, s: Settings, key: jax.Array, peak_gflops) -> dict:
    agent, state, model, batch = problem_inputs(config, env, key)
    true, false = jnp.asarray(True), jnp.asarray(False)
    step_key = jax.random.PRNGKey(1)
    compiled, compile_times = compile_timed(agent.update_step, state, model, batch, step_key, true)
    keys = keys_for(jax.random.PRNGKey(2), 2 * (s.warmup + s.reps) + 1)
    (state, _), compile_times["first_call_s"] = timed_call(compiled, state, model, batch, keys[-1], true)

    pairs, with_actor, critic_only = [], [], []
    for i in range(s.warmup + s.reps):
        (state, _), t_actor = timed_call(compiled, state, model, batch, keys[2 * i], true)
        (state, _), t_critic = timed_call(compiled, state, model, batch, keys[2 * i + 1], false)
        if i >= s.warmup:
            pairs.append((t_actor + t_critic) / 2)
            with_actor.append(t_actor)
            critic_only.append(t_critic)

    # FLOPs per branch: the program with a constant update_actor has only one branch left
    # (cost analysis of the `lax.cond` executable counts one branch, the costlier). Normally the
    # optimised (compiled) HLO is counted; --quick counts the lowered HLO to save two compilations.
    flops = dict(stage="lowered (pre-optimisation HLO)" if s.quick else "compiled (optimised HLO)")
    for name, pred in (("with_actor", True), ("critic_only", False)):
        lowered = jax.jit(lambda st, m, b, k, p=pred: agent.update_step(st, m, b, k, p)).lower(
            state, model, batch, step_key)
        flops[name] = xla_flops(lowered) if s.quick else xla_flops(lowered.compile())
    flops["cond_executable"] = xla_flops(compiled)
    flops["per_update_mean"] = (None if None in (flops["with_actor"], flops["critic_only"])
                                else (flops["with_actor"] + flops["critic_only"]) / 2)

    ms = summary(pairs)
    achieved = None if flops["per_update_mean"] is None else flops["per_update_mean"] / ms["median"] / 1e6
    return dict(ms_per_update=ms, ms_with_actor=summary(with_actor), ms_critic_only=summary(critic_only),
                compile=compile_times, flops=flops, gflops_achieved=achieved,
                fraction_of_matmul_peak=(None if achieved is None or not peak_gflops
                                         else achieved / peak_gflops))


def bench_update(s: Settings, key: jax.Array, peak_gflops) -> dict:
    out = {}
    for size in s.sizes:
        entry = dict(algos={})
        for algo in s.algos:
            config, env, note = size_problem(size, algo, s.quick)
            entry.setdefault("config", config_summary(config, env))
            entry.setdefault("problem", note.replace(repr(algo), "<algo>"))
            log(f"update_step {size} {algo}")
            entry["algos"][algo] = bench_update_one(config, env, s, key, peak_gflops)
        med = {a: r["ms_per_update"]["median"] for a, r in entry["algos"].items()}
        entry["ratios"] = {f"{a}/{b}": med[a] / med[b] for a, b in (("mage", "dyna"), ("mage", "td3"),
                                                                  ("dyna", "td3"))
                           if a in med and b in med}
        out[size] = entry
    return out


def bench_model_train(s: Settings, key: jax.Array) -> dict:
    out = {}
    for size in s.sizes:
        config, env, note = size_problem(size, "mage", s.quick)
        log(f"model_train_step {size}")
        model = update.make_agent(config, env).model
        e, n = config.ensemble_size, config.model_batch_size
        flat = random_batch(key, e * n, env)
        state = model_state_for(model, jax.random.PRNGKey(3), flat)
        obs, action, next_obs = (x.reshape(e, n, -1) for x in (flat.obs, flat.action, flat.next_obs))
        compiled, compile_times = compile_timed(model.train_step, state, obs, action, next_obs)
        (state, _), compile_times["first_call_s"] = timed_call(compiled, state, obs, action, next_obs)
        times = []
        for i in range(s.warmup + s.reps):
            (state, _), t = timed_call(compiled, state, obs, action, next_obs)
            if i >= s.warmup:
                times.append(t)
        ms = summary(times)
        flops = xla_flops(compiled)
        out[size] = dict(ensemble_size=e, samples_per_member=n, model_hidden=list(config.model_hidden),
                         obs_size=env.obs_size, action_size=env.action_size, ms=ms, compile=compile_times,
                         flops=flops, gflops_achieved=None if flops is None else flops / ms["median"] / 1e6,
                         ms_per_model_training_phase=ms["median"] * config.model_train_batches,
                         model_train_batches=config.model_train_batches)
    return out


def bench_hlo_check(s: Settings, key: jax.Array) -> dict:
    """FLOPs of the MAGE and Dyna critic-loss gradients relative to one forward model sample.

    Model-attributable FLOPs are isolated by a difference: the same programs with every model
    layer 1 unit wide (same depth, same critic/actor) cost the non-model part only.
    """
    out = {}
    for size in s.sizes:
        log(f"hlo_check {size}")
        flops = {}
        for model_kind in ("model", "min_model"):
            for algo in ("mage", "dyna"):
                config, env, _ = size_problem(size, algo, s.quick)
                if model_kind == "min_model":
                    config = config.replace(model_hidden=(1,) * len(config.model_hidden))
                agent, state, model, batch = problem_inputs(config, env, key)
                grad = jax.grad(lambda p, st, m, b, k: agent.critic_loss(p, st, m, b, k)[0])
                compiled, _ = compile_timed(grad, state.critic_params, state, model, batch, key)
                flops[f"{algo}_critic_grad_{model_kind}"] = xla_flops(compiled)
            action = agent.policy(state, batch.obs)
            compiled, _ = compile_timed(agent.model.sample_next_obs, model, batch.obs, action, key)
            flops[f"model_sample_forward_{model_kind}"] = xla_flops(compiled)

        entry = dict(flops=flops, batch_size=config.batch_size, model_hidden=list(
            size_problem(size, "mage", s.quick)[0].model_hidden))
        f = flops
        if None not in f.values():
            fwd = f["model_sample_forward_model"]
            fwd_model_part = fwd - f["model_sample_forward_min_model"]
            mage_model_part = f["mage_critic_grad_model"] - f["mage_critic_grad_min_model"]
            dyna_model_part = f["dyna_critic_grad_model"] - f["dyna_critic_grad_min_model"]
            entry.update(
                mage_over_dyna_extra_in_model_forwards=(f["mage_critic_grad_model"]
                                                        - f["dyna_critic_grad_model"]) / fwd,
                mage_model_part_in_model_forwards=mage_model_part / fwd_model_part,
                dyna_model_part_in_model_forwards=dyna_model_part / fwd_model_part,
                mage_over_dyna_non_model_extra_flops=(f["mage_critic_grad_min_model"]
                                                      - f["dyna_critic_grad_min_model"]),
            )
        out[size] = entry
    out["method"] = (
        "XLA cost_analysis FLOPs of jax.grad(agent.critic_loss) w.r.t. the online critic parameters "
        "(mage and dyna) and of agent.model.sample_next_obs alone (one forward model sample at the "
        "same batch). *_min_model: the same programs with every model hidden layer 1 unit wide; "
        "the difference (model minus min_model) is the model-attributable part. "
        "model_part_in_model_forwards = that part / the model-attributable FLOPs of one forward "
        "sample. A forward pass plus one backward pass to the action (what MAGE's ∇ₐy needs) is "
        "about 2; a forward only (Dyna) is about 1; differentiating the model a second time "
        "(w.r.t. the critic parameters through ∇ₐy) would add further model-sized passes.")
    return out
