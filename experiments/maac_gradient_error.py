"""MAAC's gradient-error study (Clavera et al. 2020, §5.2, Fig. 3) on a double integrator.

For a linear policy u = Kx on the double integrator (`magejax.analysis.lqr`: dt = 0.2, γ = 0.99, cost
xᵀx + u², K = half the LQR gain), compare the gradient of MAAC's objective

    J_H(K) = mean_{x0} [Σ_{t<H} γ^t r(x_t, Kx_t) + γ^H Q(x_H, Kx_H)]     (back-propagated through H steps)

with the exact ∇_K J (discrete Lyapunov, `lqr.policy_gradient`, with Σ₀ the second moment of the
same start states, so no Monte-Carlo error enters the reference), for H ∈ {0, 1, 2, 5, 10} and four
combinations:
  dynamics  learned: magejax's `EnsembleModel` (8 × 2×64 swish, Gaussian NLL) fitted on transitions of
                     the system; the rollout uses the ensemble's mean prediction (the system is
                     noiseless, so sampling the model's noise would only add variance and bias);
            true:    x' = Ax + Bu;
  critic    learned: magejax's twin critic (2×64 swish) fitted to Q^K by TD(0) on the same transitions,
                     with the TD3 target r + γ min_i Q̄_i(x', Kx') (Polyak targets, Adam, the agents'
                     Huber loss `critic.td_loss`); MAAC's objective uses min_i Q_i;
            exact:   Q^{K} of the current policy, held fixed in K (as any critic is).
Start states x0 ~ N(0, I); the training data are episodes from the same distribution with
exploration noise on the actions. Seeds are vmapped; two data regimes (--episodes) show how the
quality of the fits moves the errors.

A critic held fixed in K biases the gradient even when it is exact: with true dynamics ∇J*_H is
the deterministic policy gradient Σ_{t≤H} γ^t E[∇ₐQ(x_t, Kx_t) x_tᵀ] cut after H + 1 steps
(tests/test_lqr.py), not ∇J. So errors are reported both against ∇J (MAAC Fig. 3's quantity) and
against ∇J*_H (the learned parts' error alone, Lemma 4.1's quantity). Writes `gradients.csv`
(every gradient), `table.md` and one `errors_<episodes>_episodes.png` per regime under --out.

    python experiments/maac_gradient_error.py                  # 5 seeds, the measurement in the README
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from magejax.agents import critic
from magejax.analysis import lqr
from magejax.models import normalization
from magejax.analysis import statistics
from magejax.runs import plotting
from magejax.models.dynamics import EnsembleModel

HORIZONS = (0, 1, 2, 5, 10)
COMBOS = (("learned", "learned"), ("true", "learned"), ("learned", "exact"), ("true", "exact"))
"""(dynamics, critic) pairs; the first two are MAAC's Fig. 3 curves."""
HIDDEN = (64, 64)


def collect(key, system, K, episodes: int, length: int, noise: float) -> dict:
    """Transitions of `episodes` episodes from x0 ~ N(0, I), u = Kx + N(0, noise²). Leaves (N, ·)."""
    x_key, u_key = jax.random.split(key)
    u_noise = noise * jax.random.normal(u_key, (length, episodes, K.shape[0]))

    def body(x, eps):
        u = x @ K.T + eps
        x_next = lqr.step(system, x, u)
        return x_next, (x, u, x_next)

    _, (obs, action, next_obs) = jax.lax.scan(body, jax.random.normal(x_key, (episodes, 2)), u_noise)
    flat = lambda a: a.reshape(-1, a.shape[-1])
    return {"obs": flat(obs), "action": flat(action), "next_obs": flat(next_obs),
            "reward": lqr.reward(system, flat(obs), flat(action))}


def fit_model(key, data: dict, steps: int, batch: int = 256):
    """Ensemble fitted by Gaussian NLL, each member on its own uniform mini-batches."""
    model = EnsembleModel(obs_size=2, action_size=1, ensemble_size=8, hidden=HIDDEN, lr=1e-3)
    init_key, key = jax.random.split(key)
    state = model.init(init_key)
    state = model.with_stats(
        state, normalization.update(normalization.init(3), jnp.concatenate([data["obs"], data["action"]], 1)),
        normalization.update(normalization.init(2), data["next_obs"] - data["obs"]))
    n = data["obs"].shape[0]

    def body(state, key):
        idx = jax.random.randint(key, (model.ensemble_size, batch), 0, n)
        state, metrics = model.train_step(state, data["obs"][idx], data["action"][idx], data["next_obs"][idx])
        return state, metrics["model_mse"]

    state, mse = jax.lax.scan(body, state, jax.random.split(key, steps))
    return model, state, mse[-100:].mean()


def fit_critic(key, data: dict, system, K, steps: int, batch: int = 256, tau: float = 0.01):
    """Twin critic fitted to Q^K by TD(0) on `data` (policy evaluation of u = Kx)."""
    _, twin_q = critic.make_apply(HIDDEN)
    init_key, key = jax.random.split(key)
    params = critic.init(init_key, 2, 1, HIDDEN)
    optimizer = optax.adam(1e-3)
    n = data["obs"].shape[0]

    def body(carry, key):
        params, target, opt_state = carry
        idx = jax.random.randint(key, (batch,), 0, n)
        # Not critic.td_target: it clips the next action to [-1, 1], which Kx' may leave.
        next_obs = data["next_obs"][idx]
        y = data["reward"][idx] + system.gamma * jnp.min(twin_q(target, next_obs, next_obs @ K.T), axis=0)
        grads, metrics = jax.grad(critic.td_loss, has_aux=True)(params, data["obs"][idx], data["action"][idx],
                                                                 y, twin_q=twin_q)
        updates, opt_state = optimizer.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        target = jax.tree.map(lambda t, p: (1 - tau) * t + tau * p, target, params)
        return (params, target, opt_state), metrics["td_error"]

    (params, _, _), td = jax.lax.scan(body, (params, params, optimizer.init(params)), jax.random.split(key, steps))
    return (lambda x, u: jnp.min(twin_q(params, x, u), axis=0)), td[-100:].mean()


def run_seed(key, *, system, K, episodes, length, noise, model_steps, critic_steps, starts):
    """Every MAAC gradient of one seed: (len(COMBOS), len(HORIZONS), m, n), the exact gradient
    (m, n), and model/critic diagnostics."""
    data_key, model_key, critic_key, x0_key = jax.random.split(key, 4)
    data = collect(data_key, system, K, episodes, length, noise)
    model, model_state, model_mse = fit_model(model_key, data, model_steps)
    learned_q, td_error = fit_critic(critic_key, data, system, K, critic_steps)

    dynamics = {"true": lambda x, u: lqr.step(system, x, u),
                "learned": lambda x, u: jnp.mean(model.mean_next_obs(model_state, x, u), axis=0)}
    critics = {"exact": lambda x, u: lqr.q_value(system, K, x, u), "learned": learned_q}
    x0 = jax.random.normal(x0_key, (starts, 2))
    true_grad = lqr.policy_gradient(system, K, x0.T @ x0 / starts)
    grads = jnp.stack([jnp.stack([jax.grad(lqr.maac_objective)(K, system, x0, h, dynamics[d], critics[c])
                                  for h in HORIZONS]) for d, c in COMBOS])

    # Lemma 4.1's ε_f and ε_Q at the start states: errors of the model's Jacobian ∂f/∂(x, u) and of
    # the critic's gradient ∇_(x, u) Q, relative to the true ones' mean norm.
    u0 = x0 @ K.T
    jac = lambda f: jax.vmap(jax.jacfwd(lambda x, u: f(x[None], u[None])[0], argnums=(0, 1)))(x0, u0)
    true_jac = jnp.concatenate([system.A, system.B], 1)
    model_jac = jnp.concatenate(jac(dynamics["learned"]), -1)  # (N, n, n + m)
    eps_f = jnp.mean(jnp.linalg.norm(model_jac - true_jac, axis=(1, 2))) / jnp.linalg.norm(true_jac)
    q_grad = lambda f: jnp.concatenate(jac(lambda x, u: f(x, u)[:, None]), -1)[:, 0]  # (N, n + m)
    exact_q_grad = q_grad(critics["exact"])
    eps_q = (jnp.mean(jnp.linalg.norm(q_grad(learned_q) - exact_q_grad, axis=-1))
             / jnp.mean(jnp.linalg.norm(exact_q_grad, axis=-1)))
    diagnostics = {"model_mse": model_mse, "critic_td_error": td_error, "eps_f": eps_f, "eps_q": eps_q}
    return grads, true_grad, diagnostics


def relative_errors(grads, true_grad) -> tuple[np.ndarray, np.ndarray]:
    """Relative L1 errors |g − ∇J|₁ / |∇J|₁ (vs the true gradient) and |g − g*_H|₁ / |∇J|₁ (vs
    g*_H, the gradient with true dynamics and the exact critic: only the learned parts' error,
    Lemma 4.1's quantity). grads (S, C, H, m, n), true_grad (S, m, n) -> (S, C, H) each."""
    grads, true_grad = np.asarray(grads, np.float64), np.asarray(true_grad, np.float64)
    scale = np.abs(true_grad).sum(axis=(-2, -1))[:, None, None]
    exact = grads[:, COMBOS.index(("true", "exact"))][:, None]
    return (np.abs(grads - true_grad[:, None, None]).sum(axis=(-2, -1)) / scale,
            np.abs(grads - exact).sum(axis=(-2, -1)) / scale)


def _cell(values) -> str:
    mean, lo, hi = (float(v[0]) for v in statistics.mean_t_interval(np.asarray(values)[:, None]))
    return f"{mean:.3f} ({lo:.3f} .. {hi:.3f})"


def regime_section(episodes: int, grads, true_grad, diagnostics, args, out: Path) -> list[str]:
    """Markdown tables and the PNG of one data regime."""
    vs_true, vs_exact = relative_errors(grads, true_grad)
    seeds = vs_true.shape[0]
    names = [f"{d} dynamics, {c} critic" for d, c in COMBOS]
    learned = [i for i, combo in enumerate(COMBOS) if combo != ("true", "exact")]
    true_l1 = np.abs(np.asarray(true_grad)).sum(axis=(-2, -1))

    def table(errors, columns):
        rows = ["| H | " + " | ".join(names[c] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
        return rows + [f"| {h} | " + " | ".join(_cell(errors[:, c, i]) for c in columns) + " |"
                       for i, h in enumerate(HORIZONS)]

    d = {k: np.asarray(v) for k, v in diagnostics.items()}
    lines = [f"### Data: {episodes} episodes × {args.length} steps ({episodes * args.length} transitions)", "",
             f"{seeds} seeds; |∇J|₁ = {_cell(true_l1)}. Mean over seeds (95% CI).", "",
             "Relative L1 error against the true policy gradient, |∇J_H − ∇J|₁ / |∇J|₁ (MAAC Fig. 3's quantity):",
             "", *table(vs_true, range(len(COMBOS))), "",
             "Relative L1 error against ∇J_H with true dynamics and the exact critic, |∇J_H − ∇J*_H|₁ / |∇J|₁ "
             "(the error of the learned parts alone, Lemma 4.1's quantity):", "", *table(vs_exact, learned), "",
             "Fits (ε_f: relative error of the model's Jacobian ∂f/∂(x, u); ε_Q: relative error of the critic's "
             "∇_(x, u) Q; both at the start states):", "",
             "| seed | model MSE (normalised) | critic TD error | ε_f | ε_Q |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {d['model_mse'][s]:.2e} | {d['critic_td_error'][s]:.3g} | {d['eps_f'][s]:.3g} "
              f"| {d['eps_q'][s]:.3g} |" for s in range(seeds)]
    x = np.asarray(HORIZONS)
    plotting.plot_panels(
        {f"vs the true gradient ∇J ({episodes} episodes)": {names[c]: (x, vs_true[:, c]) for c in range(len(COMBOS))},
         f"vs ∇J*_H: true dynamics, exact critic ({episodes} episodes)": {names[c]: (x, vs_exact[:, c]) for c in learned}},
        out / f"errors_{episodes}_episodes.png", ylabel="relative L1 error of the policy gradient",
        xlabel="horizon H", yscale="log")
    return lines + [""]


def write_csv(path: Path, results: dict) -> None:
    """One row per (episodes, seed, dynamics, critic, horizon): the gradient, the true one, the errors."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["episodes", "seed", "dynamics", "critic", "horizon", "grad_k0", "grad_k1", "true_k0",
                    "true_k1", "relative_l1_vs_true", "relative_l1_vs_exact_objective"])
        for episodes, (grads, true_grad, _) in results.items():
            vs_true, vs_exact = relative_errors(grads, true_grad)
            grads, true_grad = np.asarray(grads), np.asarray(true_grad)
            for s in range(grads.shape[0]):
                for c, (dyn, cri) in enumerate(COMBOS):
                    for h, horizon in enumerate(HORIZONS):
                        w.writerow([episodes, s, dyn, cri, horizon, *grads[s, c, h].ravel(), *true_grad[s].ravel(),
                                    vs_true[s, c, h], vs_exact[s, c, h]])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dt", type=float, default=0.2)
    parser.add_argument("--gain-fraction", type=float, default=0.5, help="K = this × the LQR gain")
    parser.add_argument("--episodes", type=int, nargs="+", default=[100, 3],
                        help="data regimes: episodes of training data for model and critic")
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.5, help="std of the exploration noise on u")
    parser.add_argument("--model-steps", type=int, default=2000)
    parser.add_argument("--critic-steps", type=int, default=10000)
    parser.add_argument("--starts", type=int, default=2048, help="start states x0 per gradient")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/maac_gradient_error"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    system = lqr.double_integrator(dt=args.dt)
    K = args.gain_fraction * lqr.optimal_gain(system)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    results, start = {}, time.time()
    for episodes in args.episodes:
        run = jax.jit(jax.vmap(lambda key: run_seed(
            key, system=system, K=K, episodes=episodes, length=args.length, noise=args.noise,
            model_steps=args.model_steps, critic_steps=args.critic_steps, starts=args.starts)))
        results[episodes] = jax.block_until_ready(run(keys))
        print(f"{episodes} episodes: {time.time() - start:.0f} s", flush=True)

    write_csv(args.out / "gradients.csv", results)
    lines = [f"Double integrator dt = {args.dt}, γ = {system.gamma}, cost xᵀx + u², K = "
             f"{np.round(np.asarray(K), 4).tolist()} ({args.gain_fraction} × the LQR gain), x0 ~ N(0, I); "
             f"action noise {args.noise} in the data; model {args.model_steps} NLL steps, critic "
             f"{args.critic_steps} TD steps; {args.starts} start states per gradient; seeds: "
             f"split(PRNGKey({args.seed}), {args.seeds}), the same in every regime. Run time "
             f"{time.time() - start:.0f} s.", ""]
    for episodes, (grads, true_grad, diagnostics) in results.items():
        lines += regime_section(episodes, grads, true_grad, diagnostics, args, args.out)
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
