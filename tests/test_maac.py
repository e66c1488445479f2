"""MAAC: the H-step objective and its pathwise gradient, value-expansion targets, H = 0 ≡ SAC,
the temperature update, the tanh-Gaussian policy, and training runs."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.scipy.stats import norm

from magejax import configs, envs
from magejax.agents import gaussian_policy
from magejax.models import normalization
from magejax.envs.base import Env
from magejax.replay import Transition
from magejax.train import METRIC_NAMES, make_train
from magejax.agents.td3 import make_agent
from tests.helpers import ACT, OBS, STAND_IN_ENV, to_f64

B, K, E = 8, 2, 4  # batch, rollouts per start state, ensemble members
GAMMA = 0.9        # far from 1, so that a wrong power of γ shows

# The stand-in environment, terminating where ŝ[0] > 0.42: on the fixed data below some real and
# imagined states do, some do not, and some imagined rollouts cross it midway (tests assert this).
TERMINATING_ENV = Env(name="stand-in-done", obs_size=OBS, action_size=ACT, episode_length=10,
                      reset=STAND_IN_ENV.reset, step=STAND_IN_ENV.step, reward_fn=STAND_IN_ENV.reward_fn,
                      done_fn=lambda s: (s[0] > 0.42).astype(s.dtype))


@pytest.fixture
def float64():
    with jax.enable_x64(True):
        yield


def maac_agent(horizon: int, env: Env = TERMINATING_ENV):
    fields = dict(configs.TINY, env=env.name, algo="maac", batch_size=B, ensemble_size=E, gamma=GAMMA,
                  actor_hidden=(8,), critic_hidden=(8, 8), model_hidden=(8,), horizon=horizon,
                  rollout_samples=K)
    return make_agent(configs.Config(**fields), env)


@functools.cache  # compiling this takes most of a minute on a busy 2-core machine: build it once
def _state_model_batch(seed: int):
    agent = maac_agent(horizon=1)  # the horizon shapes no parameter

    @jax.jit
    def build(key):
        k = jax.random.split(key, 8)
        state = to_f64(agent.init(k[0]))
        state = state.replace(log_alpha=jnp.log(0.3),
                              critic_target=jax.tree.map(lambda x: x + 0.1 * jax.random.normal(k[1], x.shape),
                                                         state.critic_target))
        obs = 0.5 * jax.random.normal(k[2], (B, OBS), jnp.float64)
        action = jax.random.uniform(k[3], (B, ACT), jnp.float64, -1, 1)
        next_obs = obs + 0.3 * jax.random.normal(k[4], (B, OBS), jnp.float64)
        batch = Transition(obs=obs, action=action, reward=jax.random.normal(k[5], (B,), jnp.float64),
                           next_obs=next_obs, terminated=jax.vmap(agent.env.done_fn)(next_obs),
                           truncated=jnp.zeros(B))
        model = agent.model.with_stats(
            to_f64(agent.model.init(k[6])),
            normalization.update(normalization.init(OBS + ACT), jnp.concatenate([obs, action], 1)),
            normalization.update(normalization.init(OBS), next_obs - obs))
        return state, model, batch

    return build(jax.random.PRNGKey(seed))


def problem(horizon: int, env: Env = TERMINATING_ENV, seed: int = 0):
    """A float64 MAAC agent, its state (targets ≠ online critics, α = 0.3), a model state and a real
    batch (terminated where TERMINATING_ENV's done_fn says so). Call inside the float64 fixture."""
    return (maac_agent(horizon, env),) + _state_model_batch(seed)


# ------------------------------------------------------------------ independent references
def tanh_gaussian(agent, params, s, eps):
    """One sample, written from the density: a = tanh(u), log π = log N(u; μ, σ²) − log(1 − a²)."""
    mean, log_std = agent.dist(params, s)
    u = mean + jnp.exp(log_std) * eps
    a = jnp.tanh(u)
    return a, jnp.sum(norm.logpdf(u, mean, jnp.exp(log_std)) - jnp.log(1.0 - a**2))


def member_step(agent, model, member, s, a, xi):
    """One transition through a single member, with the normalisation written out."""
    params = jax.tree.map(lambda x: x[member], model.params)
    x = (jnp.concatenate([s, a]) - model.input_stats.mean) / model.input_stats.std
    mean, logvar = agent.model.member_forward(params, x[None])
    return s + (mean[0] + jnp.exp(0.5 * logvar[0]) * xi) * model.delta_stats.std + model.delta_stats.mean


def reference_path(agent, actor_params, model, s, member, policy_eps, model_eps):
    """States, actions, log-probs, rewards, dones of one rollout, step by step."""
    env, path = agent.env, {"s": [s], "a": [], "logp": [], "r": [], "d": []}
    for t in range(agent.config.horizon + 1):
        a, logp = tanh_gaussian(agent, actor_params, s, policy_eps[t])
        path["a"].append(a)
        path["logp"].append(logp)
        if t == agent.config.horizon:
            break
        s_next = member_step(agent, model, member, s, a, model_eps[t])
        path["r"].append(env.reward_fn(s, a, s_next))
        path["d"].append(env.done_fn(s_next))
        path["s"].append(s_next)
        s = s_next
    return path


def reference_value(path, q_end, alpha, gamma, start):
    """Forward sum Σ_{k≥start} γ^(k−start) m (r_k − α logp_k) + γ^(H−start) m (q_end − α logp_H)."""
    horizon, value, alive = len(path["r"]), 0.0, 1.0
    for k in range(start, horizon):
        value += gamma ** (k - start) * alive * (path["r"][k] - alpha * path["logp"][k])
        alive = alive * (1.0 - path["d"][k])
    return value + gamma ** (horizon - start) * alive * (q_end - alpha * path["logp"][horizon])


def min_q(agent, params, s, a):
    return jnp.min(agent.q_fns[1](params, s[None], a[None])[:, 0])


def reference_actor_loss(agent, actor_params, critic_params, alpha, model, obs, noise):
    """−mean over the N = K·B rollouts; rollout r starts at tile(obs)[perm[r]] and uses member r // M.

    One rollout at a time (vmapped over r only for speed): the member is an explicit index."""
    starts = jnp.tile(obs, (K, 1))[noise.perm]
    n = starts.shape[0]

    def one(start, member, policy_eps, model_eps):
        path = reference_path(agent, actor_params, model, start, member, policy_eps, model_eps)
        q_end = min_q(agent, critic_params, path["s"][-1], path["a"][-1])
        return reference_value(path, q_end, alpha, agent.config.gamma, 0)

    values = jax.vmap(one, in_axes=(0, 0, 1, 1))(starts, jnp.arange(n) // (n // E),
                                                 noise.policy_eps, noise.model_eps)
    return -jnp.mean(values)


def reference_critic_loss(agent, critic_params, state, model, batch, noise):
    """½ (Q_i − y)² over both critics, the real transitions and the live imagined ones.

    Returns (loss, weights (B, 1 + H)): weight 1 for real transitions, 0/1 for imagined ones."""
    c, twin_q, alpha = agent.config, agent.q_fns[1], jnp.exp(state.log_alpha)

    def one(b, member, policy_eps, model_eps):
        path = reference_path(agent, state.actor_params, model, batch.next_obs[b], member, policy_eps, model_eps)
        q_end = min_q(agent, state.critic_target, path["s"][-1], path["a"][-1])
        live = 1.0 - batch.terminated[b]
        xs = [(batch.obs[b], batch.action[b])]
        ys = [batch.reward[b] + c.gamma * live * reference_value(path, q_end, alpha, c.gamma, 0)]
        ws = [jnp.ones_like(live)]
        alive = live
        for t in range(c.horizon):
            xs.append((path["s"][t], path["a"][t]))
            ys.append(path["r"][t] + c.gamma * (1.0 - path["d"][t])
                      * reference_value(path, q_end, alpha, c.gamma, t + 1))
            ws.append(alive)
            alive = alive * (1.0 - path["d"][t])
        s, a = jnp.stack([x[0] for x in xs]), jnp.stack([x[1] for x in xs])
        return twin_q(critic_params, s, a), jnp.stack(ys), jnp.stack(ws)  # (2, 1 + H), (1 + H,) x2

    q, y, w = jax.vmap(one, in_axes=(0, 0, 1, 1))(noise.perm, jnp.arange(B) // (B // E),
                                                  noise.policy_eps, noise.model_eps)
    delta = y[:, None] - q  # (B, 2, 1 + H)
    return jnp.sum(w[:, None] * 0.5 * delta**2) / (2 * jnp.sum(w)), w


def actor_noise(agent, seed=1):
    return agent.draw_noise(jax.random.PRNGKey(seed), K * B)


# ------------------------------------------------------------------ the H-step objective
def test_objective_matches_per_rollout_reference(float64):
    agent, state, model, batch = problem(horizon=2)
    noise = actor_noise(agent)
    alpha = jnp.exp(state.log_alpha)
    args = (state.critic_params, alpha, model, batch.obs, noise)
    loss_fn = jax.jit(lambda p: agent.actor_objective(p, *args)[0])
    ref_fn = jax.jit(lambda p: reference_actor_loss(agent, p, *args))
    np.testing.assert_allclose(loss_fn(state.actor_params), ref_fn(state.actor_params), rtol=1e-12)
    grads, ref_grads = jax.jit(jax.grad(loss_fn))(state.actor_params), jax.jit(jax.grad(ref_fn))(state.actor_params)
    np.testing.assert_allclose(ravel_pytree(grads)[0], ravel_pytree(ref_grads)[0], rtol=1e-10, atol=1e-14)
    # The masks are exercised: some rollouts terminate at their first step, others do not.
    roll = agent.rollout(state.actor_params, model, jnp.tile(batch.obs, (K, 1))[noise.perm], noise)
    assert 0 < float(roll.done[0].sum()) < roll.done.shape[1]


def test_objective_gradient_matches_central_differences(float64):
    """Also the check that nothing cuts the pathwise derivative: a stop_gradient on ŝ_{t+1} (the
    model's dependence on a_t) leaves a finite gradient that these differences reject."""
    agent, state, model, batch = problem(horizon=3)
    noise = actor_noise(agent, seed=2)
    flat, unravel = ravel_pytree(state.actor_params)
    loss = jax.jit(lambda f: agent.actor_objective(unravel(f), state.critic_params, jnp.exp(state.log_alpha),
                                                   model, batch.obs, noise)[0])
    grad = jax.grad(loss)(flat)
    assert jnp.linalg.norm(grad) > 1e-3
    rng = np.random.default_rng(0)
    directions = [rng.normal(size=flat.shape) for _ in range(4)] + list(np.eye(flat.size)[rng.choice(flat.size, 12, replace=False)])
    for d in map(jnp.asarray, directions):
        numeric = (loss(flat + 1e-6 * d) - loss(flat - 1e-6 * d)) / 2e-6
        np.testing.assert_allclose(jnp.dot(grad, d), numeric, rtol=1e-5, atol=1e-8)


# ------------------------------------------------------------------ critic targets
def test_value_expansion_critic_loss_matches_reference(float64):
    agent, state, model, batch = problem(horizon=2)
    assert 0 < float(batch.terminated.sum()) < B  # some real transitions terminate
    noise = agent.draw_noise(jax.random.PRNGKey(7), B)
    loss_fn = jax.jit(lambda p: agent.critic_loss(p, state, model, batch, noise)[0])
    ref_fn = jax.jit(lambda p: reference_critic_loss(agent, p, state, model, batch, noise)[0])
    # Imagination terminates a rollout from a live (non-terminal) real transition before its last
    # step, so the masks of both targets and weights matter.
    permuted = jax.tree.map(lambda x: x[noise.perm], batch)
    roll = agent.rollout(state.actor_params, model, permuted.next_obs, noise)
    assert float(jnp.sum((1 - permuted.terminated) * roll.done[0])) > 0
    np.testing.assert_allclose(loss_fn(state.critic_params), ref_fn(state.critic_params), rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(jax.jit(jax.grad(loss_fn))(state.critic_params))[0],
                               ravel_pytree(jax.jit(jax.grad(ref_fn))(state.critic_params))[0], rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------ H = 0 is SAC
def test_horizon_zero_is_sac(float64):
    agent, state, model, batch = problem(horizon=0)
    dist, twin_q = agent.dist, agent.q_fns[1]
    alpha = jnp.exp(state.log_alpha)

    def sample(params, s, eps):  # SAC's policy sample, written from the density
        mean, log_std = dist(params, s)
        u = mean + jnp.exp(log_std) * eps
        return jnp.tanh(u), jnp.sum(norm.logpdf(u, mean, jnp.exp(log_std)) - jnp.log(1 - jnp.tanh(u) ** 2), -1)

    noise = actor_noise(agent)
    assert noise.model_eps.shape[0] == 0

    def sac_actor(params):
        s = jnp.tile(batch.obs, (K, 1))[noise.perm]
        a, logp = sample(params, s, noise.policy_eps[0])
        return jnp.mean(alpha * logp - jnp.min(twin_q(state.critic_params, s, a), axis=0))

    maac_actor = lambda p: agent.actor_objective(p, state.critic_params, alpha, model, batch.obs, noise)[0]
    np.testing.assert_allclose(maac_actor(state.actor_params), sac_actor(state.actor_params), rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(jax.grad(maac_actor)(state.actor_params))[0],
                               ravel_pytree(jax.grad(sac_actor)(state.actor_params))[0], rtol=1e-10, atol=1e-14)

    critic_noise = agent.draw_noise(jax.random.PRNGKey(4), B)

    def sac_critic(params):
        t = jax.tree.map(lambda x: x[critic_noise.perm], batch)  # pairs transition perm[r] with ε_r
        a2, logp2 = sample(state.actor_params, t.next_obs, critic_noise.policy_eps[0])
        v = jnp.min(twin_q(state.critic_target, t.next_obs, a2), axis=0) - alpha * logp2
        y = t.reward + GAMMA * (1 - t.terminated) * v
        return jnp.mean(0.5 * (y[None] - twin_q(params, t.obs, t.action)) ** 2)

    maac_critic = lambda p: agent.critic_loss(p, state, model, batch, critic_noise)[0]
    np.testing.assert_allclose(maac_critic(state.critic_params), sac_critic(state.critic_params), rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(jax.grad(maac_critic)(state.critic_params))[0],
                               ravel_pytree(jax.grad(sac_critic)(state.critic_params))[0], rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------ temperature and policy
def _with_log_std(params, raw: float):
    """The policy with μ ≡ 0 and every pre-squash log-std output ≡ raw (last layer's weights zeroed)."""
    layers = params["params"]
    last = sorted(layers, key=lambda n: int(n.split("_")[1]))[-1]
    bias = jnp.concatenate([jnp.zeros(ACT), jnp.full(ACT, raw)]).astype(layers[last]["bias"].dtype)
    new_last = {"kernel": jnp.zeros_like(layers[last]["kernel"]), "bias": bias}
    return {"params": {**layers, last: new_last}}


def test_temperature_moves_towards_the_target_entropy(float64):
    """log σ = −5: entropy far below H̄ = −|A|, so α must grow; log σ ≈ 0 (σ = 1): entropy ≈ 1.4 > H̄,
    so α must shrink. Without an actor step α stays put."""
    agent, state, model, batch = problem(horizon=1, env=STAND_IN_ENV)
    update = jax.jit(agent.update_step)
    key = jax.random.PRNGKey(5)
    for raw, entropy_above_target in ((-10.0, False), (0.46, True)):
        start = state.replace(actor_params=_with_log_std(state.actor_params, raw))
        new_state, metrics = update(start, model, batch, key, jnp.asarray(True))
        assert (float(metrics["entropy"]) > agent.target_entropy) == entropy_above_target
        step = float(new_state.log_alpha - start.log_alpha)
        assert (step < 0) if entropy_above_target else (step > 0)
        assert float(metrics["temperature"]) == pytest.approx(0.3)  # the α the losses used
        same, metrics = update(start, model, batch, key, jnp.asarray(False))
        assert float(same.log_alpha) == float(start.log_alpha) and np.isnan(metrics["actor_loss"])


def test_tanh_gaussian_log_prob_matches_change_of_variables(float64):
    """log π(a) = log N(atanh a; μ, σ²) − log(1 − a²), including far in the tails."""
    mean = jnp.array([[0.3, -1.0], [2.0, 0.0]])
    log_std = jnp.array([[-1.0, 0.5], [0.0, -3.0]])
    eps = jnp.array([[0.7, -2.0], [1.5, 0.1]])
    a, logp = gaussian_policy.sample(mean, log_std, eps)
    expected = jnp.sum(norm.logpdf(jnp.arctanh(a), mean, jnp.exp(log_std)) - jnp.log1p(-a**2), -1)
    np.testing.assert_allclose(logp, expected, rtol=1e-9)
    # Stable where tanh saturates (u = 20: 1 − a² underflows to 0 in float32).
    _, logp_far = gaussian_policy.sample(jnp.array([20.0]), jnp.array([-5.0]), jnp.array([0.0]))
    assert np.isfinite(float(logp_far))


def test_maac_acts_stochastically_and_evaluates_with_the_mean_action():
    agent = make_agent(configs.preset("pendulum", "maac", "tiny"), envs.make("pendulum"))
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    params = state.actor_params
    obs = jnp.array([0.1, -2.0, 0.5])
    a1, a2 = (jax.jit(agent.explore)(state, obs, jax.random.PRNGKey(i)) for i in (1, 2))
    assert a1.shape == (1,) and not np.allclose(a1, a2) and float(jnp.max(jnp.abs(a1))) < 1
    np.testing.assert_allclose(agent.pi(params, obs), jnp.tanh(agent.dist(params, obs)[0]), rtol=1e-6)


def test_td3_style_exploration_is_the_clipped_noisy_action():
    """train.py's acting before `explore` existed, bit for bit."""
    config = configs.preset("pendulum", "mage", "tiny", exploration_noise=0.7)
    agent = make_agent(config, envs.make("pendulum"))
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    obs, key = jnp.array([0.1, -2.0, 0.5]), jax.random.PRNGKey(9)
    old = jnp.clip(agent.policy(state, obs) + 0.7 * jax.random.normal(key, (1,)), -1.0, 1.0)
    np.testing.assert_array_equal(agent.explore(state, obs, key), old)


# ------------------------------------------------------------------ configuration and training
def test_maac_preset_and_validation():
    config = configs.preset("pendulum", "maac")
    assert (config.horizon, config.rollout_samples, config.policy_delay, config.num_updates) == (3, 5, 1, 10)
    assert config.spec.uses_model and configs.preset("pendulum", "maac", horizon=0).horizon == 0
    with pytest.raises(configs.ConfigError, match="rollout_samples"):
        configs.preset("pendulum", "maac", rollout_samples=0)
    with pytest.raises(configs.ConfigError, match="reward: maac supports only"):
        configs.preset("pendulum", "maac", reward="learned")


def test_maac_trains_on_pendulum_with_seeds_vmapped():
    config = configs.preset("pendulum", "maac", "tiny")
    trainer = make_train(config)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state, metrics = jax.jit(jax.vmap(trainer.train))(keys)
    assert set(metrics) == set(METRIC_NAMES)
    for name in ("critic_loss", "td_error", "actor_loss", "q_action_grad_norm", "temperature", "entropy",
                 "model_nll", "eval_return"):
        assert np.all(np.isfinite(metrics[name][:, 1:])), name
    assert np.all(metrics["nonfinite_losses"] == 0)
    assert np.all(np.isnan(metrics["td_action_grad_norm"]))
    assert np.all(metrics["temperature"][:, 1:] != 1.0)  # α was trained
    assert not np.allclose(metrics["train_return"][0], metrics["train_return"][1])
