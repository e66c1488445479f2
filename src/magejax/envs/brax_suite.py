"""Brax environments as magejax `Env`s, with exact rewards and a differentiable oracle.

`make(name, backend)` wraps `brax.envs.get_environment(name, backend=backend)`. The agent's action
in [-1, 1] is clipped and handed to Brax's own `step` (which maps it to the actuators' control
range for humanoid, pusher and inverted_pendulum; the other envs' ranges are [-1, 1]); reward,
`done` and observation are Brax's, with a prefix prepended (`brax_tasks`: e.g. the forward
velocity Δx/dt) so that `reward_fn(obs, action, next_obs)` and `done_fn(next_obs)` are exact
functions of observations. `terminated` is Brax's `done` (bootstrap with 0); `truncated` is our
time limit (`Task.episode_length`: 1000, pusher 100). `step` never resets (the training loop does).
The env state's `physics` is Brax's pipeline state.

The oracle `true_next_obs(obs, action)` rebuilds (q, qd) from `obs` (`Task.state_from_obs`),
calls `pipeline_init` and the env's own `step`, and returns the next observation in our layout.
The root's x (and y) position, absent from the observation, is set to 0: the floor, the fluid and
every force are invariant under horizontal translation, and the velocity prefix is a difference,
so this is exact. On the `generalized` backend (the CPU default), measured on random rollouts
(tests/test_brax_envs.py), up to float32 rounding amplified by contacts (relative ≤ 4e-4):

* exact: halfcheetah, ant, swimmer, inverted_pendulum; hopper while every joint velocity is
  within ±10 (the observation clips them there); inverted_double_pendulum while the cart speed is
  within ±10 (the pole velocities are in the unclipped prefix). Angles seen only as sin/cos
  (reacher, inverted_double_pendulum) are recovered by atan2, exact because those joints are
  unlimited or limited within (−π, π).
* pusher: exact while the object is at rest (and the goal always is): the observation holds the
  object's position but not its velocity, which the oracle sets to 0.
* reacher: the observation holds the fingertip velocity, a linear function of the two joint
  velocities whose matrix has determinant ∝ sin θ0; the oracle inverts it, which is exact where
  sin θ0 ≠ 0 and ill-conditioned near θ0 ∈ {0, π} (gradients scale as 1/sin θ0).
* walker2d and humanoid: exact only on the first step after a reset. Brax's generalized step
  uses an inverse mass matrix it carries in its state, refined by 20 Newton–Schulz iterations
  warm-started from the previous step's; for these two it does not converge (measured
  ‖M⁻¹M − I‖ ≈ 0.6 for walker2d and ≈ 0.9 for humanoid in random rollouts, ~1e-6 for the others),
  so the simulator's state holds more than (q, qd). `pipeline_init` (at reset and in the oracle)
  inverts exactly, and later steps of the oracle and of `env.step` can differ by O(1) in the
  velocities. The oracle is then the same physics with an exact inverse, not Brax's step.

On `mjx` the oracle is approximate: Brax's mjx pipeline state takes the link poses `x` from the
forward pass that `mjx.step` runs before integrating, so after a step `x` lags `q` by one physics
substep, and so do the observation entries and prefixes computed from `x` (hopper/walker2d's
torso height, every forward velocity, reacher/pusher/inverted_double_pendulum positions), while
the rebuilt state's `x` matches its `q` (measured on hopper: up to 0.2 relative error in the
velocity prefix; envs observing only q, qd, like inverted_pendulum, stay exact). The rewards stay
exact: `reward_fn` reads the same lagged quantities Brax's reward uses. Reverse-mode gradients
through mjx fail unless its solver runs one fixed iteration (ant and humanoid). On `spring` and
`positional` the state is in maximal coordinates, which (q, qd) do not determine: approximate.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable

import jax
import jax.numpy as jnp
from brax import envs as brax_envs
from brax.envs.base import State as BraxState

from magejax.envs import brax_specs
from magejax.envs.base import Env, EnvState
from magejax.envs.brax_tasks import TASKS, Task


def _fix_brax_fluid_clip() -> None:
    """Let brax 0.14.2's fluid forces (swimmer's only) run on jax >= 0.10.

    `brax/fluid.py` calls `jp.clip(x, a_min=1e-12)`; jax 0.10 removed the `a_min`/`a_max` keywords
    of `jnp.clip` (now `min`/`max`). We rebind the module's `jp` name to a view of `jax.numpy` whose
    `clip` also accepts the old keywords, touching nothing outside `brax.fluid`. A no-op where
    jnp.clip still takes `a_min` or brax already uses the new keywords.
    """
    import brax.fluid

    try:
        jnp.clip(jnp.zeros(()), a_min=0.0)
        return
    except TypeError:
        pass
    if getattr(brax.fluid.jp, "_magejax_legacy_clip", False):
        return

    def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # noqa: A002 — jnp.clip's names
        return jnp.clip(x, a_min if min is None else min, a_max if max is None else max)

    shim = types.ModuleType("jax.numpy (magejax: legacy clip keywords)")
    shim.__getattr__ = lambda attr: getattr(jnp, attr)  # PEP 562: everything else is jax.numpy's
    shim.clip, shim._magejax_legacy_clip = clip, True
    brax.fluid.jp = shim


def _brax_state(pipeline_state, brax_obs) -> BraxState:
    # Fresh metrics/info: Brax's step mutates `state.metrics` in place, and none of our envs read it.
    zero = jnp.zeros((), jnp.float32)
    return BraxState(pipeline_state=pipeline_state, obs=brax_obs, reward=zero, done=zero, metrics={}, info={})


@dataclasses.dataclass(frozen=True)
class BraxSuiteEnv:
    """A Brax environment as an `Env`, with what the oracle is built from.

    `state_from_obs(obs) -> EnvState`: the state `obs` shows, rebuilt (pipeline_init of
    `Task.state_from_obs`); `env.true_next_obs(obs, a)` is `env.step(state_from_obs(obs), a).obs`.
    """

    env: Env
    state_from_obs: Callable[[jax.Array], EnvState]
    brax_env: Any


def make(name: str, backend: str | None = None) -> Env:
    """The Brax environment `name` on `backend` (None: `brax_specs.default_backend(name)`)."""
    return build(name, backend).env


def build(name: str, backend: str | None = None) -> BraxSuiteEnv:
    """`make`, keeping the rebuilt-state function and the Brax env (for tests and diagnostics)."""
    if backend is None:
        backend = brax_specs.default_backend(name)
    task: Task = TASKS[name]
    if name == "swimmer":
        _fix_brax_fluid_clip()
    benv = brax_envs.get_environment(task.brax_name, backend=backend)
    P = task.prefix_size
    ctrl = benv.sys.actuator.ctrl_range
    zero = jnp.zeros((), jnp.float32)

    def applied(action):
        """The action as Brax's reward sees it: clipped, and mapped to the ctrl range if Brax does."""
        a = jnp.clip(action, -1.0, 1.0)
        if task.rescales_action:  # the same expression as in Brax's step
            a = (a + 1) * (ctrl[:, 1] - ctrl[:, 0]) * 0.5 + ctrl[:, 0]
        return a

    def obs_of(ps0, ps1, brax_obs):
        return jnp.concatenate([task.prefix(benv, ps0, ps1), brax_obs])

    def reset(key: jax.Array) -> EnvState:
        s = benv.reset(key)
        return EnvState(physics=s.pipeline_state, obs=obs_of(s.pipeline_state, s.pipeline_state, s.obs),
                        reward=zero, terminated=zero, truncated=zero, time=jnp.zeros((), jnp.int32))

    def step(state: EnvState, action: jax.Array) -> EnvState:
        nxt = benv.step(_brax_state(state.physics, state.obs[P:]), jnp.clip(action, -1.0, 1.0))
        time = state.time + 1
        return EnvState(physics=nxt.pipeline_state, obs=obs_of(state.physics, nxt.pipeline_state, nxt.obs),
                        reward=jnp.asarray(nxt.reward, jnp.float32),
                        terminated=jnp.asarray(nxt.done, jnp.float32),
                        truncated=(time >= task.episode_length).astype(jnp.float32), time=time)

    def reward_fn(obs, action, next_obs):
        return task.reward(obs, applied(action), next_obs)

    def state_from_obs(obs: jax.Array) -> EnvState:
        q, qd = task.state_from_obs(benv, obs)
        return EnvState(physics=benv.pipeline_init(q, qd), obs=obs, reward=zero, terminated=zero,
                        truncated=zero, time=jnp.zeros((), jnp.int32))

    def true_next_obs(obs, action):
        """(obs_size,), (action_size,) -> (obs_size,): one real step from the state `obs` shows."""
        return step(state_from_obs(obs), action).obs

    obs_size = P + int(jax.eval_shape(benv.reset, jax.random.PRNGKey(0)).obs.shape[-1])
    env = Env(name=name, obs_size=obs_size, action_size=benv.action_size,
              episode_length=task.episode_length, reset=reset, step=step, reward_fn=reward_fn,
              done_fn=task.done, true_next_obs=true_next_obs)
    return BraxSuiteEnv(env=env, state_from_obs=state_from_obs, brax_env=benv)
