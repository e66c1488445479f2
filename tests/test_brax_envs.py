"""The Brax suite: exact rewards and terminations, the oracle, backends, and a short MAGE run.

Brax programs take tens of seconds each to compile on CPU, so each environment's checks share one
compiled rollout: a few envs under vmap, and in every step the real state and the state rebuilt
from its observation (the oracle's) stepped together as a batch of two, one copy of the physics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magejax import configs, envs, train
from magejax.envs import brax_specs

# XLA options for short test programs: on CPU they cut Brax compile times ~4x (hopper's rollout
# program: 44 -> 9 CPU-seconds; a MAGE run on inverted_pendulum: ~70 -> 13) for slower code.
FAST_COMPILE = dict(xla_backend_optimization_level=0, xla_cpu_use_fusion_emitters=False)

N_ENVS, STEPS = 3, 32
TRUNCATE_AT = 20  # rollouts start this many steps before the time limit, to see the truncation

# Random actions make these fall (or the pole drop) within STEPS: the done check sees both values.
TERMINATING = ("hopper", "walker2d", "inverted_pendulum", "inverted_double_pendulum", "humanoid")


def rollout(suite, key):
    """N_ENVS random-action rollouts of STEPS steps from fresh resets, with the oracle's prediction.

    Returns the reset observations (N_ENVS, obs) and a dict of (N_ENVS, STEPS, ...) arrays.
    """
    env = suite.env

    def one(key):
        reset_key, act_key = jax.random.split(key)
        start = env.reset(reset_key)
        start = start.replace(time=start.time + env.episode_length - TRUNCATE_AT)

        def body(state, key):
            action = jax.random.uniform(key, (env.action_size,), minval=-1.0, maxval=1.0)
            pair = jax.tree.map(lambda a, b: jnp.stack([a, b]), state, suite.state_from_obs(state.obs))
            nxt = jax.vmap(env.step, in_axes=(0, None))(pair, action)
            real = jax.tree.map(lambda x: x[0], nxt)
            return real, dict(obs=state.obs, action=action, next_obs=real.obs, oracle=nxt.obs[1],
                              reward=real.reward, terminated=real.terminated, truncated=real.truncated,
                              q=state.physics.q, qd=state.physics.qd)

        return start.obs, jax.lax.scan(body, start, jax.random.split(act_key, STEPS))[1]

    start_obs, out = jax.vmap(one)(jax.random.split(key, N_ENVS))
    both = lambda f: jax.vmap(jax.vmap(f))
    out["reward_fn"] = both(env.reward_fn)(out["obs"], out["action"], out["next_obs"])
    out["done_fn"] = both(env.done_fn)(out["next_obs"])
    return start_obs, out


def until_first_termination(terminated: np.ndarray) -> np.ndarray:
    """(N, T) mask of the steps up to and including each rollout's first termination (Brax
    envs stepped past their end can produce NaN, so nothing after it is compared)."""
    before = np.cumsum(terminated, axis=1) - terminated
    return before == 0


def oracle_exact(name: str, out: dict) -> np.ndarray:
    """(N, T) mask of the transitions where the oracle is exact (brax_suite's docstring)."""
    q, qd = np.asarray(out["q"]), np.asarray(out["qd"])
    if name in ("walker2d", "humanoid"):  # Brax's carried inverse mass matrix: exact after a reset
        return np.arange(q.shape[1]) == 0
    if name == "hopper":  # the observation clips joint velocities at ±10
        return np.all(np.abs(qd) <= 10.0, axis=-1)
    if name == "inverted_double_pendulum":  # ... and the cart's
        return np.abs(qd[..., 0]) <= 10.0
    if name == "pusher":  # the object's velocity is not observed
        return np.all(qd[..., 7:] == 0.0, axis=-1)
    if name == "reacher":  # tip velocity -> joint velocities is singular at sin θ0 = 0
        return np.abs(np.sin(q[..., 0])) > 0.05
    return np.ones(q.shape[:2], bool)


# Every env on the device's default backend, and the other backends on a few (the rewards and
# terminations are the same functions; the prefixes read the backends' own pipeline states).
CASES = [(name, brax_specs.default_backend(name)) for name in brax_specs.NAMES] + [
    ("hopper", "mjx"), ("hopper", "positional"), ("inverted_pendulum", "spring")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{b}" for n, b in CASES])
def rolled_out(request):
    from magejax.envs import brax_suite

    name, backend = request.param
    suite = brax_suite.build(name, backend)
    program = jax.jit(lambda key: rollout(suite, key), compiler_options=FAST_COMPILE)
    start_obs, out = program(jax.random.PRNGKey(0))
    return name, backend, suite.env, np.asarray(start_obs), jax.tree.map(np.asarray, out)


def test_reward_fn_and_done_fn_reproduce_brax(rolled_out):
    name, backend, env, _, out = rolled_out
    alive = until_first_termination(out["terminated"])
    reward = out["reward"][alive]
    assert np.all(np.isfinite(reward)) and reward.size >= N_ENVS * 5
    scale = max(1.0, float(np.abs(reward).max()))
    np.testing.assert_allclose(out["reward_fn"][alive], reward, rtol=0, atol=1e-4 * scale)
    np.testing.assert_array_equal(out["done_fn"][alive], out["terminated"][alive])
    if name in TERMINATING and backend == brax_specs.default_backend(name):
        assert out["terminated"][alive].any(), f"no {name} rollout terminated: the done check saw only 0"
    # Truncation is the time limit only, independent of termination.
    time_after = np.arange(1, STEPS + 1) + env.episode_length - TRUNCATE_AT
    expected = np.broadcast_to(time_after >= env.episode_length, (N_ENVS, STEPS))
    np.testing.assert_array_equal(out["truncated"], expected)


def test_reset_is_random_and_shapes_agree(rolled_out):
    name, _, env, start_obs, out = rolled_out
    assert start_obs.shape == (N_ENVS, env.obs_size)
    assert out["action"].shape == (N_ENVS, STEPS, env.action_size)
    distinct = {tuple(np.round(row, 7)) for row in start_obs}
    assert len(distinct) == N_ENVS, f"{name}: reset gave the same observation for different keys"


# The oracle is exact only on `generalized` (brax_suite's docstring: on mjx, spring and positional
# it is approximate by construction), so it is checked on the cases that use that backend.
GENERALIZED_CASES = [case for case in CASES if case[1] == "generalized"]


@pytest.mark.parametrize("rolled_out", GENERALIZED_CASES, ids=[f"{n}-{b}" for n, b in GENERALIZED_CASES],
                         indirect=True)
def test_oracle_reproduces_step_where_exact(rolled_out):
    name, backend, env, _, out = rolled_out
    mask = until_first_termination(out["terminated"]) & oracle_exact(name, out)
    assert mask.sum() >= N_ENVS, f"{name}: too few transitions where the oracle is exact"
    next_obs, oracle = out["next_obs"][mask], out["oracle"][mask]
    scale = np.maximum(1.0, np.abs(next_obs).max(axis=0))  # per observation entry
    # float32 contact dynamics amplify rounding: measured up to 4e-4 relative (halfcheetah).
    worst = np.abs(oracle - next_obs) / scale
    assert worst.max() < 2e-3, \
        f"{name}: oracle off by {worst.max():.2e} (relative) in obs entry {worst.max(0).argmax()}"
    assert np.abs(next_obs - out["obs"][mask]).max() > 0.05  # the rollout moves


def test_oracle_is_differentiable_in_the_action():
    # Reverse mode, as the MAGE critic loss uses it, through generalized physics with joint limits.
    env = envs.make("inverted_pendulum", "generalized")
    obs = env.reset(jax.random.PRNGKey(1)).obs
    action = jnp.array([0.3])
    jac = jax.jit(jax.jacrev(env.true_next_obs, argnums=1), compiler_options=FAST_COMPILE)(obs, action)[:, 0]
    eps = 1e-2  # one step is nearly affine in the force away from the joint limits: a large eps
    # keeps float32 rounding out of the difference quotient
    ahead, behind = jax.jit(jax.vmap(env.true_next_obs, in_axes=(None, 0)), compiler_options=FAST_COMPILE)(
        obs, jnp.stack([action + eps, action - eps]))
    fd = (ahead - behind) / (2 * eps)
    np.testing.assert_allclose(jac, fd, rtol=1e-2, atol=1e-3)
    assert float(jnp.abs(jac[2])) > 0.1  # the push changes the cart's velocity


def test_unknown_environment_and_backend_errors():
    with pytest.raises(ValueError, match="unknown environment 'cheetah'; valid: ant, .*halfcheetah.*walker2d"):
        envs.make("cheetah")
    with pytest.raises(ValueError, match="unknown backend 'physx' for hopper; valid: generalized, mjx, spring, positional"):
        envs.make("hopper", backend="physx")
    with pytest.raises(ValueError, match="unsupported backend 'mjx' for swimmer; valid: generalized"):
        envs.make("swimmer", backend="mjx")
    for name in ("pendulum", "cartpole_swingup"):
        with pytest.raises(ValueError, match=f"'{name}' is pure JAX and has no physics backend"):
            envs.make(name, backend="generalized")
    assert set(brax_specs.NAMES) <= set(envs.names())


def test_config_validates_the_backend():
    for env, backend, message in [("hopper", "physx", "env_backend: unknown backend 'physx'"),
                                  ("swimmer", "spring", "env_backend: unsupported backend 'spring'"),
                                  ("pendulum", "mjx", "env_backend: .*pure JAX")]:
        with pytest.raises(configs.ConfigError, match=message):
            configs.validate(configs.Config(env=env, env_backend=backend))
    configs.validate(configs.Config(env="hopper", env_backend="mjx"))


def test_default_backend_per_device():
    assert brax_specs.default_backend("hopper", "cpu") == "generalized"
    assert brax_specs.default_backend("hopper", "gpu") == "mjx"
    assert brax_specs.default_backend("swimmer", "gpu") == "generalized"  # its only backend


def test_make_train_passes_the_backend_through(monkeypatch):
    calls, pendulum = [], envs.make("pendulum")

    def spy(name, backend=None):
        calls.append((name, backend))
        return pendulum  # a stand-in: building the Brax env is not what is tested

    monkeypatch.setattr(train.envs, "make", spy)
    train.make_train(configs.preset("hopper", "td3", "tiny", env_backend="spring"))
    assert calls == [("hopper", "spring")]


@pytest.mark.parametrize("name", brax_specs.NAMES)
def test_paper_presets_cover_the_suite(name):
    c = configs.preset(name, "mage", "paper")
    assert (c.warmup_steps, c.batch_size, c.actor_hidden, c.critic_hidden, c.model_hidden, c.ensemble_size) == \
        (1000, 1024, (384, 384), (384, 384), (512,) * 4, 8)


def test_fluid_clip_fix_is_scoped_to_brax_fluid():
    import brax.fluid

    from magejax.envs import brax_suite

    brax_suite._fix_brax_fluid_clip()
    brax_suite._fix_brax_fluid_clip()  # idempotent
    np.testing.assert_array_equal(brax.fluid.jp.clip(jnp.array([-1.0, 2.0]), a_min=0.0), [0.0, 2.0])
    np.testing.assert_array_equal(brax.fluid.jp.clip(jnp.array([-1.0, 2.0]), max=1.0), [-1.0, 1.0])
    assert brax.fluid.jp.sqrt is jnp.sqrt  # everything else is jax.numpy's own
    with pytest.raises(TypeError):
        jnp.clip(jnp.zeros(()), a_min=0.0)  # jax.numpy itself is untouched


# A MAGE run compiles the whole training loop around three copies of the physics (acting and two
# evaluations): 20-150 s per environment on the 2-core CPU even with FAST_COMPILE (humanoid the
# most), ~10 minutes for the ten, which `make test` spreads over its xdist workers. Every env
# runs in CI, so none can silently break.
@pytest.mark.parametrize("name", brax_specs.NAMES)
def test_short_mage_run(name):
    config = configs.preset(name, "mage", "tiny", total_steps=200, eval_every=200, warmup_steps=50)
    state, metrics = jax.jit(train.make_train(config).train, compiler_options=FAST_COMPILE)(jax.random.PRNGKey(0))
    assert all(v.shape == (2,) for v in metrics.values())
    for metric in ("eval_return", "critic_loss", "td_error", "td_action_grad_norm", "actor_loss", "model_nll"):
        assert np.isfinite(metrics[metric][-1]), metric
    assert metrics["nonfinite_losses"][-1] == 0
    assert int(state.buffer.size) == 200 and np.all(np.isfinite(state.buffer.data.obs[:200]))


@pytest.mark.slow  # ~3 min on a 2-core CPU: reverse mode through Hopper's contacts compiles slowly
def test_oracle_return_gradient_through_contacts_matches_central_differences_and_the_probe_runs():
    # The ground truth of the Fig. 3 study on a Brax env: ∂G/∂a_0 of a 3-step discounted return
    # through the oracle (contacts, joint limits, the reward's forward-velocity prefix) against
    # central differences, then `grad_error.mean_error` over one whole 1000-step episode.
    from magejax.analysis import grad_error

    config = configs.preset("hopper", "mage", "tiny", model="oracle", train_actor=False)
    trainer = train.make_train(config)
    env, agent = trainer.env, trainer.agent
    params = agent.init(jax.random.PRNGKey(1))
    pi = lambda s: agent.policy(params, s)
    obs0 = env.reset(jax.random.PRNGKey(2)).obs

    def discounted_return(first_action_offset):
        def body(carry, t):
            obs, discount = carry
            action = pi(obs) + jnp.where(t == 0, first_action_offset, 0.0)
            next_obs = env.true_next_obs(obs, action)
            return (next_obs, discount * config.gamma), discount * env.reward_fn(obs, action, next_obs)

        return jax.lax.scan(body, (obs0, 1.0), jnp.arange(3))[1].sum()

    grad = np.asarray(jax.jit(jax.grad(discounted_return), compiler_options=FAST_COMPILE)(
        jnp.zeros(env.action_size)))
    ret = jax.jit(discounted_return, compiler_options=FAST_COMPILE)
    eps = 1e-2
    unit = np.eye(env.action_size, dtype=np.float32)
    fd = np.array([(ret(eps * u) - ret(-eps * u)) / (2 * eps) for u in unit])
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4)
    assert np.max(np.abs(grad)) > 0.05  # the actions move the return

    q_single, _ = agent.q_fns
    first = jax.tree.map(lambda p: p[0], params.critic_params)
    q = lambda s, a: q_single(first, s[None], a[None])[0]
    error = jax.jit(lambda key: grad_error.mean_error(env, pi, q, key, episodes=1, gamma=config.gamma),
                    compiler_options=FAST_COMPILE)(jax.random.PRNGKey(3))
    assert np.isfinite(float(error)) and float(error) > 0
