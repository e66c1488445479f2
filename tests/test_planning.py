"""Test-time MPC: CEM finds known optima, the planner never does worse than the policy's own plan,
its return is the masked, discounted H-step return with a terminal critic, evaluation with
`eval_mpc` runs inside the training loop, and model-free algorithms refuse it."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import cli, configs, envs
from magejax.cli import args as cli_args
from magejax.cli import train as cli_train
from magejax.agents import planning
from magejax.models.dynamics import EnsembleModel
from magejax.train import make_train
from magejax.agents.td3 import make_agent

GAMMA = 0.9


def _quadratic_cost(target, weights):
    return lambda x: jnp.sum(weights * (x - target) ** 2, axis=(-2, -1))


@pytest.mark.parametrize("inside", [True, False])
def test_cem_finds_the_minimum_of_a_quadratic(inside):
    """cost(x) = Σ w (x − x*)² over (H=4, A=2) sequences; outside the box the optimum is clip(x*)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    target = jax.random.uniform(k1, (4, 2), minval=-0.9, maxval=0.9)
    if not inside:
        target = target.at[0].set(jnp.array([1.7, -2.5]))
    optimum = jnp.clip(target, -1.0, 1.0)
    weights = jnp.linspace(0.5, 3.0, 8).reshape(4, 2)
    cost = _quadratic_cost(target, weights)
    # The box centre. (From a far corner plain CEM stalls before the optimum: its std shrinks
    # geometrically, so it refines a seed within a few init_std. Hence the policy's seed.)
    seed = jnp.zeros((4, 2))
    best, best_score = jax.jit(lambda key: planning.cem(lambda x: -cost(x), seed, key, population=256,
                                                        elites=32, iterations=10, init_std=0.5))(k2)
    min_cost, seed_cost = float(cost(optimum)), float(cost(seed))
    assert float(-best_score) == pytest.approx(float(cost(best)), rel=1e-6)
    assert float(cost(best)) - min_cost < 1e-3 * (seed_cost - min_cost)
    np.testing.assert_allclose(best, optimum, atol=0.05)
    assert float(jnp.max(jnp.abs(best))) <= 1.0


def _toy_planner(policy_gain: float, horizon: int, done_fn=lambda s: jnp.zeros(()), **kwargs):
    """s' = s + a (2-D), r = −‖s'‖² − 0.1‖a‖², twin Q(s, a) = −2‖s‖², −3‖s‖², π(s) = clip(−g s)."""
    return planning.Planner(
        pi=lambda params, s: jnp.clip(-policy_gain * s, -1.0, 1.0),
        twin_q=lambda params, s, a: jnp.stack([-2.0 * jnp.sum(s**2, -1), -3.0 * jnp.sum(s**2, -1)]),
        step=lambda model_state, s, a, key: s + a,
        reward=lambda reward_state, s, a, s_next: -jnp.sum(s_next**2, -1) - 0.1 * jnp.sum(a**2, -1),
        done_fn=done_fn, horizon=horizon, population=64, elites=8, iterations=4, gamma=GAMMA, **kwargs)


def test_returns_are_the_discounted_masked_h_step_return_with_terminal_min_q():
    s = jnp.array([0.5, -0.3])
    actions = jnp.array([[[0.1, 0.2], [-0.4, 0.3]]])  # (N=1, H=2, A=2)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    s1 = s + actions[0, 0]
    s2 = s1 + actions[0, 1]
    r0 = -jnp.sum(s1**2) - 0.1 * jnp.sum(actions[0, 0] ** 2)
    r1 = -jnp.sum(s2**2) - 0.1 * jnp.sum(actions[0, 1] ** 2)
    q_min = -3.0 * jnp.sum(s2**2)  # the smaller of the two critics
    planner = _toy_planner(policy_gain=1.0, horizon=2)
    got = planner.returns(None, None, s, actions, keys)
    np.testing.assert_allclose(got, [r0 + GAMMA * r1 + GAMMA**2 * q_min], rtol=1e-6)
    # Terminal after the first step: its reward counts, nothing after it does.
    ends = _toy_planner(policy_gain=1.0, horizon=2, done_fn=lambda s_next: jnp.ones(()))
    np.testing.assert_allclose(ends.returns(None, None, s, actions, keys), [r0], rtol=1e-6)


def test_planner_with_an_optimal_seed_and_horizon_one_keeps_it():
    """For H = 1, r + γ min Q = −(1 + 3γ)‖s + a‖² − 0.1‖a‖² is maximal at a = −g* s with
    g* = (1 + 3γ) / (1.1 + 3γ): seeded with π(s) = −g* s, the plan keeps the seed's action."""
    optimal_gain = (1 + 3 * GAMMA) / (1.1 + 3 * GAMMA)
    planner = _toy_planner(policy_gain=optimal_gain, horizon=1)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (16, 2), minval=-0.8, maxval=0.8)
    keys = jax.random.split(jax.random.PRNGKey(2), 16)
    plan = jax.jit(jax.vmap(lambda o, k: planner.plan(None, None, o, k)))
    best, info = plan(obs, keys)
    assert best.shape == (16, 1, 2)
    assert np.all(np.asarray(info["plan_return"]) >= np.asarray(info["seed_return"]))
    np.testing.assert_allclose(best[:, 0], -optimal_gain * obs, atol=1e-4)


def test_planner_improves_a_poor_policy():
    """The same problem with π(s) = −0.2 s (too timid): planning moves the action towards −s."""
    planner = _toy_planner(policy_gain=0.2, horizon=3)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (16, 2), minval=-0.8, maxval=0.8)
    keys = jax.random.split(jax.random.PRNGKey(2), 16)
    best, info = jax.jit(jax.vmap(lambda o, k: planner.plan(None, None, o, k)))(obs, keys)
    gain = np.asarray(info["plan_return"] - info["seed_return"])
    assert np.all(gain > 0.05 * np.abs(np.asarray(info["seed_return"])))
    # Optimal first action of this problem is close to −s (a small action cost shrinks it).
    seed_error = np.abs(-0.2 * obs + obs).mean()
    plan_error = np.abs(np.asarray(best[:, 0]) + np.asarray(obs)).mean()
    assert plan_error < 0.3 * seed_error


def test_shared_sample_uses_one_member_and_one_noise_for_the_whole_batch():
    obs_size, act_size, members = 3, 2, 4
    model = EnsembleModel(obs_size=obs_size, action_size=act_size, ensemble_size=members, hidden=(8,))
    state = jax.jit(model.init)(jax.random.PRNGKey(0))  # jitted: eager init is slow on a busy CPU
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, obs_size))
    action = jax.random.uniform(jax.random.PRNGKey(2), (5, act_size), minval=-1, maxval=1)
    means = jax.jit(model.mean_next_obs)(state, obs, action)  # (E, B, O)
    all_members = jax.vmap(model.member_forward, in_axes=(0, None))
    _, logvar = jax.jit(all_members)(state.params, model._inputs(state, obs, action))

    @jax.jit
    @jax.vmap
    def spread_of_noise(key):
        """Per member, how far the rows' implied ε are from sharing one vector. -> (E,)"""
        sample = model.sample_next_obs_shared(state, obs, action, key)
        eps = (sample - means) / jnp.exp(0.5 * logvar)  # empty delta stats: denormalising is identity
        return jnp.max(jnp.abs(eps - eps[:, :1]), axis=(1, 2))

    spread = np.asarray(spread_of_noise(jax.random.split(jax.random.PRNGKey(10), 12)))  # (12, E)
    member = spread.argmin(axis=1)
    assert np.all(spread[np.arange(12), member] < 1e-4)  # every row: the same member, the same ε
    assert np.all(np.sort(spread, axis=1)[:, 1] > 1e-2)  # and no other member fits
    assert len(set(member.tolist())) > 1  # the member is drawn at random per call


def _agent_planner(algo="mage", **overrides):
    config = configs.preset("pendulum", algo, "tiny", eval_mpc=True, mpc_horizon=3, mpc_population=32,
                            mpc_elites=4, mpc_iterations=2, **overrides)
    env = envs.make("pendulum")
    agent = make_agent(config, env)
    return config, env, agent, planning.make_planner(config, env, agent)


@pytest.mark.parametrize("algo", [a for a in configs.ALGOS if configs.ALGO_SPECS[a].uses_model])
def test_planner_acts_for_every_model_based_algorithm(algo):
    """Same agent interface for all (MAAC's actor is a tanh-Gaussian: the planner uses its mode)."""
    _, env, agent, planner = _agent_planner(algo)
    agent_state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    model_state = jax.jit(agent.model.init)(jax.random.PRNGKey(1))
    obs = env.reset(jax.random.PRNGKey(2)).obs
    plan = jax.jit(planner.plan)
    best, info = plan(agent_state, model_state, obs, jax.random.PRNGKey(3))
    assert best.shape == (3, env.action_size) and bool(jnp.all(jnp.abs(best) <= 1.0))
    assert np.isfinite(info["plan_return"]) and float(info["plan_return"]) >= float(info["seed_return"])


def test_with_the_oracle_the_planned_return_is_the_real_return():
    """model="oracle": the planner's ŝ_t are the env's states, so G is the real H-step return plus
    γ^H min Q at the real state reached."""
    config, env, agent, planner = _agent_planner(model="oracle")
    agent_state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    state0 = env.reset(jax.random.PRNGKey(1))
    actions = jax.random.uniform(jax.random.PRNGKey(2), (3, 1), minval=-1, maxval=1)
    state, real = state0, 0.0
    for t in range(3):
        state = env.step(state, actions[t])
        real += config.gamma**t * float(state.reward)
    s_h = state.obs[None]
    real += config.gamma**3 * float(jnp.min(agent.critic_values(agent_state, agent_state.critic_params, s_h,
                                                                agent.policy(agent_state, s_h))))
    got = planner.returns(agent_state, None, state0.obs,
                          actions[None], jax.random.split(jax.random.PRNGKey(3), 3))
    np.testing.assert_allclose(got, [real], rtol=1e-5)


def test_with_a_learned_reward_the_planner_scores_with_it():
    config, env, agent, planner = _agent_planner(reward="learned")
    agent_state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    model_state = jax.jit(agent.model.init)(jax.random.PRNGKey(1))
    reward_state = jax.jit(agent.reward_model.init)(jax.random.PRNGKey(2))
    obs = env.reset(jax.random.PRNGKey(3)).obs
    actions = jax.random.uniform(jax.random.PRNGKey(4), (4, 3, 1), minval=-1, maxval=1)
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    returns = jax.jit(planner.returns)
    learned = returns(agent_state, model_state, obs, actions, keys, reward_state)

    @jax.jit
    def by_hand():  # the same rollout, rewards from r̂ (jitted: eager ops are slow on a busy CPU)
        s, total = jnp.broadcast_to(obs, (4, 3)), jnp.zeros(4)
        for t in range(3):
            s_next = agent.model.sample_next_obs_shared(model_state, s, actions[:, t], keys[t])
            total += config.gamma**t * agent.reward_model.predict(reward_state, s, actions[:, t], s_next)
            s = s_next
        q = agent.critic_values(agent_state, agent_state.critic_params, s, agent.policy(agent_state, s))
        return total + config.gamma**3 * jnp.min(q, 0)

    np.testing.assert_allclose(learned, by_hand(), rtol=1e-5)
    act = jax.jit(planner.act)(agent_state, model_state, obs, jax.random.PRNGKey(6), reward_state)
    assert act.shape == (1,) and bool(jnp.all(jnp.abs(act) <= 1.0))


def test_eval_mpc_runs_in_a_tiny_training_run_and_changes_the_evaluation():
    mpc = dict(eval_mpc=True, mpc_horizon=3, mpc_population=32, mpc_elites=4, mpc_iterations=2)
    config = configs.preset("pendulum", "mage", "tiny", total_steps=100, eval_every=100, **mpc)
    state, metrics = jax.jit(make_train(config).train)(jax.random.PRNGKey(0))
    assert np.all(np.isfinite(metrics["eval_return"])) and metrics["eval_return"].shape == (2,)
    assert np.isfinite(metrics["model_nll"][1])
    # The same key with the actor instead of the planner evaluates differently: the planner acted.
    _, actor_row = jax.jit(make_train(config.replace(eval_mpc=False)).start)(jax.random.PRNGKey(0))
    assert float(actor_row["eval_return"]) != pytest.approx(float(metrics["eval_return"][0]), rel=1e-3)


@pytest.mark.parametrize("algo", ["td3", "td3-utd"])
def test_model_free_algorithms_refuse_eval_mpc(algo):
    with pytest.raises(configs.ConfigError, match=r"^eval_mpc: .*algorithm '" + algo):
        make_train(configs.Config(algo=algo, eval_mpc=True))


def test_cli_eval_mpc_flag(tmp_path, capsys):
    def config(*flags):
        return cli_train._settings(cli_args.parser().parse_args(["train", "--preset", "tiny", *flags, "--out", "x"]))[0]

    assert config("--eval-mpc", "--mpc-horizon", "2").eval_mpc and config("--mpc-horizon", "2").mpc_horizon == 2
    assert not config().eval_mpc
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--preset", "tiny", "--algo", "td3", "--eval-mpc", "--out", str(tmp_path / "b")])
    assert e.value.code == 2
    assert "eval_mpc: test-time MPC plans in the learned model" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (dict(mpc_population=1), "mpc_population: must be an integer >= 2"),
    (dict(mpc_elites=600), "mpc_elites: 600 is more than the population (512)"),
    (dict(mpc_horizon=0), "mpc_horizon: must be a positive integer"),
    (dict(mpc_init_std=0.0), "mpc_init_std: must be > 0"),
])
def test_bad_mpc_settings_name_the_field(change, message):
    with pytest.raises(configs.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        configs.validate(configs.Config(**change))
