"""Per-environment pieces of the Brax suite: observation prefix, reward, termination, state from obs.

Each Brax env's reward and `done` are transcribed from brax 0.14.2's `brax/envs/<name>.py` into
functions of our observations. Our observation is `[prefix, brax_obs]`: `prefix(benv, ps0, ps1)`
holds what the reward or `done` needs that Brax's observation lacks, computed from the pre- and
post-step pipeline states exactly as the env's own `step` computes it (at reset,
`prefix(benv, ps, ps)`: a velocity prefix is 0 there). With P = prefix size:

| env | P | prefix | reward r(s, u, s') (u: action as Brax applies it) | done(s') |
|---|---|---|---|---|
| halfcheetah | 1 | Δx_torso/dt | s'[0] − 0.1‖u‖² | never |
| hopper | 1 | Δx_torso/dt | s'[0] + 1 − 1e-3‖u‖² | not (0.7 < s'[1], |s'[2]| < 0.2, |s'[2:]| < 100) |
| walker2d | 1 | Δx_torso/dt | s'[0] + 1 − 1e-3‖u‖² | not (0.8 < s'[1] < 2, −1 < s'[2] < 1) |
| ant | 1 | Δx_torso/dt | s'[0] + 1 − 0.5‖u‖² | s'[1] < 0.2 or s'[1] > 1 |
| swimmer | 1 | Δq_x/dt | s'[0] − 1e-4‖u‖² | never |
| humanoid | 1 | Δx_com/dt | 1.25 s'[0] + 5 − 0.1‖u‖², u ∈ [−0.4, 0.4] | s'[1] < 1 or s'[1] > 2 |
| pusher | 0 | — | −‖obj − goal‖ − 0.1‖u‖² − 0.5‖obj − tip‖ of s (pre-step), u ∈ [−2, 2] | never |
| reacher | 0 | — | −‖s'[8:11]‖ − ‖u‖² (tip-to-target of the post-step obs) | never |
| inverted_pendulum | 0 | — | 1 | |s'[1]| > 0.2 |
| inverted_double_pendulum | 4 | tip x, tip z, θ̇1, θ̇2 | 10 (1 − done) − 0.01 x² − (z − 2)² − 1e-3 θ̇1² − 5e-3 θ̇2² | z ≤ 1 |

The one inexact case: hopper's `done` also requires every unclipped joint velocity below 100,
but the observation clips velocities to ±10 (Brax's and the MAGE paper's layout), so a velocity
beyond 100 (a simulator blow-up, never seen in our rollouts) is invisible to `done_fn`.
Inverted-double-pendulum's prefix carries the unclipped θ̇1, θ̇2 because its reward uses them and
its observation clips them to ±10.

`state_from_obs(benv, s) -> (q, qd)` rebuilds the generalized coordinates for the differentiable
oracle (`brax_suite`); see there for where that is exact.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from brax import base, kinematics, math

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Task:
    brax_name: str
    episode_length: int
    prefix_size: int
    prefix: Callable[[Any, Any, Any], Array]          # (benv, ps0, ps1) -> (prefix_size,)
    reward: Callable[[Array, Array, Array], Array]    # (obs, applied action, next_obs) -> ()
    done: Callable[[Array], Array]                    # next_obs -> () float, 1.0 = terminal
    state_from_obs: Callable[[Any, Array], tuple[Array, Array]]  # (benv, obs) -> (q, qd)
    rescales_action: bool = False  # Brax's step maps [-1, 1] to the actuators' ctrl range itself


# ---- prefixes (exactly the expressions of the Brax envs' `step`) ----

def _no_prefix(benv, ps0, ps1):
    return jnp.zeros((0,), ps1.q.dtype)


def _torso_x_velocity(benv, ps0, ps1):
    return ((ps1.x.pos[0, 0] - ps0.x.pos[0, 0]) / benv.dt)[None]


def _q_x_velocity(benv, ps0, ps1):  # swimmer measures the root slide joint, not a body
    return ((ps1.q[0] - ps0.q[0]) / benv.dt)[None]


def _com_x_velocity(benv, ps0, ps1):  # humanoid: centre of mass, via the env's own `_com`
    return ((benv._com(ps1)[0] - benv._com(ps0)[0]) / benv.dt)[:1]


def _double_pendulum_tip(benv, ps0, ps1):
    tip = ps1.x.take(2).do(base.Transform.create(pos=jnp.array([0.0, 0.0, 0.6])))
    return jnp.stack([tip.pos[0], tip.pos[2], ps1.qd[1], ps1.qd[2]])


# ---- rewards and terminations in observation space ----

def _sq(u):
    return jnp.sum(jnp.square(u))


def _never(next_obs):
    return jnp.zeros((), next_obs.dtype)


def _flag(unhealthy):
    return unhealthy.astype(jnp.float32)


def _hopper_done(s):
    z, angle, state_vec = s[1], s[2], s[2:]
    healthy = jnp.all((-100.0 < state_vec) & (state_vec < 100.0))
    healthy &= (0.7 < z) & (z < jnp.inf)
    healthy &= (-0.2 < angle) & (angle < 0.2)
    return _flag(~healthy)


def _walker_done(s):
    z, angle = s[1], s[2]
    return _flag(~((0.8 < z) & (z < 2.0) & (-1.0 < angle) & (angle < 1.0)))


def _pusher_reward(s, u, next_s):
    tip, obj, goal = s[14:17], s[17:20], s[20:23]
    return -math.safe_norm(obj - goal) + 0.1 * -_sq(u) + 0.5 * -math.safe_norm(obj - tip)


def _idp_done(s):
    return _flag(s[1] <= 1.0)


def _idp_reward(s, u, next_s):
    x, z, v1, v2 = next_s[0], next_s[1], next_s[2], next_s[3]
    done = _idp_done(next_s)
    return (1.0 - done) * 10.0 - (0.01 * x**2 + (z - 2.0) ** 2) - (1e-3 * v1**2 + 5e-3 * v2**2)


# ---- generalized coordinates from an observation (for the oracle) ----

def _slide_to(benv, q, index, target, position):
    """Set slide joint `q[index]` so that `position(q)` (affine in it, slope 1) equals `target`."""
    q = q.at[index].set(0.0)
    return q.at[index].set(target - position(q))


def _planar_walker_state(benv, s):
    """hopper/walker2d obs [vx, z_torso, q[2:], clip(qd)]: rootx := 0, rootz from the torso height."""
    n = benv.sys.q_size()
    q = jnp.concatenate([jnp.zeros(2, s.dtype), s[2:n]])
    torso_z = lambda q: kinematics.forward(benv.sys, q, jnp.zeros_like(q))[0].pos[0, 2]
    return _slide_to(benv, q, 1, s[1], torso_z), s[n:]


def _free_root_state(benv, s):
    """ant/humanoid/swimmer obs [v, q[2:], qd, ...]: the root's x and y are set to 0."""
    nq, nqd = benv.sys.q_size(), benv.sys.qd_size()
    q = jnp.concatenate([jnp.zeros(2, s.dtype), s[1:nq - 1]])
    return q, s[nq - 1:nq - 1 + nqd]


def _cheetah_state(benv, s):
    return jnp.concatenate([jnp.zeros(1, s.dtype), s[1:9]]), s[9:18]


def _pusher_state(benv, s):
    """Arm q, qd from the obs; object and goal slides from their observed positions; their
    velocities (unobserved) set to 0."""
    q = jnp.concatenate([s[:7], jnp.zeros(4, s.dtype)])
    inertia_pos = lambda q, link: kinematics.forward(benv.sys, q, jnp.zeros_like(q))[0].vmap().do(
        base.Transform.create(pos=benv.sys.link.inertia.transform.pos)).pos[link]
    for link, target in ((benv._object_idx, s[17:20]), (benv._goal_idx, s[20:23])):
        # Each body hangs off the world by a y-slide then an x-slide (pusher.xml): q ids 7, 8 / 9, 10.
        first = 7 if link == benv._object_idx else 9
        q = _slide_to(benv, q, first, target[1], lambda q: inertia_pos(q, link)[1])
        q = _slide_to(benv, q, first + 1, target[0], lambda q: inertia_pos(q, link)[0])
    return q, jnp.concatenate([s[7:14], jnp.zeros(4, s.dtype)])


def _reacher_tip_velocity(benv, q, qd):
    """Brax reacher's `tip_vel`: body1's motion shifted by a world-frame offset (0.11, 0, 0)."""
    xd = kinematics.forward(benv.sys, q, qd)[1]
    return base.Transform.create(pos=jnp.array([0.11, 0.0, 0.0])).do(xd.take(1)).vel[:2]


def _reacher_state(benv, s):
    """θ = atan2(sin, cos); target slides from the obs, target at rest; arm velocities by solving
    the linear map qd[:2] -> tip_vel (singular where sin θ0 = 0, see brax_suite)."""
    theta = jnp.arctan2(s[2:4], s[0:2])
    q = jnp.concatenate([theta, s[4:6]])
    tip_vel = lambda w: _reacher_tip_velocity(benv, q, jnp.concatenate([w, jnp.zeros(2, s.dtype)]))
    jac = jax.jacfwd(tip_vel)(jnp.zeros(2, s.dtype))
    return q, jnp.concatenate([jnp.linalg.solve(jac, s[6:8]), jnp.zeros(2, s.dtype)])


def _idp_state(benv, s):
    """obs [tip x, tip z, θ̇1, θ̇2, x, sin θ1, sin θ2, cos θ1, cos θ2, clip(qd)]."""
    q = jnp.stack([s[4], jnp.arctan2(s[5], s[7]), jnp.arctan2(s[6], s[8])])
    return q, jnp.stack([s[9], s[2], s[3]])


def _full_state(benv, s):  # inverted_pendulum obs [q, qd]
    return s[:2], s[2:4]


_L = 1000  # Brax's training episode length (brax.envs.create's default)

TASKS: dict[str, Task] = {
    "halfcheetah": Task("halfcheetah", _L, 1, _torso_x_velocity,
                        lambda s, u, n: n[0] - 0.1 * _sq(u), _never, _cheetah_state),
    "hopper": Task("hopper", _L, 1, _torso_x_velocity,
                   lambda s, u, n: n[0] + 1.0 - 1e-3 * _sq(u), _hopper_done, _planar_walker_state),
    "walker2d": Task("walker2d", _L, 1, _torso_x_velocity,
                     lambda s, u, n: n[0] + 1.0 - 1e-3 * _sq(u), _walker_done, _planar_walker_state),
    "ant": Task("ant", _L, 1, _torso_x_velocity, lambda s, u, n: n[0] + 1.0 - 0.5 * _sq(u),
                lambda n: _flag((n[1] < 0.2) | (n[1] > 1.0)), _free_root_state),
    "swimmer": Task("swimmer", _L, 1, _q_x_velocity, lambda s, u, n: n[0] - 1e-4 * _sq(u), _never,
                    _free_root_state),
    "humanoid": Task("humanoid", _L, 1, _com_x_velocity,
                     lambda s, u, n: 1.25 * n[0] + 5.0 - 0.1 * _sq(u),
                     lambda n: _flag((n[1] < 1.0) | (n[1] > 2.0)), _free_root_state, rescales_action=True),
    # 100 steps as in gym's Pusher-v2 and the MAGE paper: the push takes a few seconds (dt 0.05 s).
    "pusher": Task("pusher", 100, 0, _no_prefix, _pusher_reward, _never, _pusher_state,
                   rescales_action=True),
    "reacher": Task("reacher", _L, 0, _no_prefix,
                    lambda s, u, n: -math.safe_norm(n[-3:]) - _sq(u), _never, _reacher_state),
    "inverted_pendulum": Task("inverted_pendulum", _L, 0, _no_prefix,
                              lambda s, u, n: jnp.ones((), n.dtype), lambda n: _flag(jnp.abs(n[1]) > 0.2),
                              _full_state, rescales_action=True),
    "inverted_double_pendulum": Task("inverted_double_pendulum", _L, 4, _double_pendulum_tip,
                                     _idp_reward, _idp_done, _idp_state),
}
