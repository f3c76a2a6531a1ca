"""Rollout speed: the JAX engine against batched NumPy, a per-rollout Python loop, and a roofline.

All contenders compute the same imagined rollout: MLP policy, MLP reward and residual MLP dynamics
(state 8, action 2, hidden 64, tanh), batch 4096, horizon 50, float32. Every figure is measured in
this one run, after warm-up, as the best of several repeats, so ratios compare like with like on
the same (noisy) machine.

* ``jax``: :func:`imagination.rollout.make_rollout` (one fused, scanned, vmapped, jitted step).
* ``numpy``: the same computation with batched NumPy matrix multiplies, a Python loop over time.
* ``python``: a Python loop over rollouts and steps (NumPy on single vectors), run on a subset
  and scaled to the full batch.
* ``roofline``: the same matrix multiplies back to back in one jitted ``lax.scan``, with no
  nonlinearities, concatenations or reductions: what the hardware does at best for these shapes.
* ``activation``: the step's ``tanh`` evaluations alone. On a CPU they cost about as much as the
  small matrix multiplies, so roofline time plus activation time is the practical floor.

The command-line front end is ``benchmarks/rollout_speed.py``; chapter 1 and the performance
appendix call :func:`measure` and :func:`sweep` directly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import device, models, policies
from .rollout import make_rollout
from .timing import time_call

__all__ = ["measure", "sweep", "flops_per_step", "make_params"]

STATE, ACTION, HIDDEN = 8, 2, 64


def make_params(key):
    """Random MLP parameters ``(dynamics, reward, policy)`` of the benchmark's shapes."""
    kp, kr, kd = jax.random.split(key, 3)
    pol = models.mlp_init(kp, (STATE, HIDDEN, ACTION))
    rew = models.mlp_init(kr, (STATE + ACTION, HIDDEN, 1))
    dyn = models.mlp_init(kd, (STATE + ACTION, HIDDEN, STATE))
    return dyn, rew, pol


def flops_per_step(batch: int) -> int:
    """Multiply-add FLOPs of the six matrix multiplies of one step (2 per multiply-add)."""
    shapes = [
        (STATE, HIDDEN),
        (HIDDEN, ACTION),
        (STATE + ACTION, HIDDEN),
        (HIDDEN, 1),
        (STATE + ACTION, HIDDEN),
        (HIDDEN, STATE),
    ]
    return 2 * batch * sum(i * o for i, o in shapes)


# ----------------------------------------------------------------------------- contenders
def jax_runner(params, s0, horizon):
    run = make_rollout(
        models.dynamics_model,
        models.reward_model,
        policies.mlp,
        horizon=horizon,
        gamma=0.99,
    )
    dyn, rew, pol = params
    key = jax.random.key(0)
    return lambda: run(dyn, rew, pol, s0, key).returns


def numpy_runner(params, s0, horizon):
    (dW1, db1), (dW2, db2) = [
        (np.asarray(W), np.asarray(b)) for W, b in params[0]
    ]
    (rW1, rb1), (rW2, rb2) = [
        (np.asarray(W), np.asarray(b)) for W, b in params[1]
    ]
    (pW1, pb1), (pW2, pb2) = [
        (np.asarray(W), np.asarray(b)) for W, b in params[2]
    ]
    s_init = np.asarray(s0)

    def run():
        s = s_init
        ret = np.zeros(s.shape[0], np.float32)
        disc = np.float32(1.0)
        for _ in range(horizon):
            a = np.tanh(s @ pW1.T + pb1) @ pW2.T + pb2
            sa = np.concatenate([s, a], axis=1)
            r = (np.tanh(sa @ rW1.T + rb1) @ rW2.T + rb2)[:, 0]
            s = s + np.tanh(sa @ dW1.T + db1) @ dW2.T + db2
            ret += disc * r
            disc *= np.float32(0.99)
        return ret

    return run


def python_runner(params, s0, horizon):
    layers = [[(np.asarray(W), np.asarray(b)) for W, b in p] for p in params]
    (dW1, db1), (dW2, db2) = layers[0]
    (rW1, rb1), (rW2, rb2) = layers[1]
    (pW1, pb1), (pW2, pb2) = layers[2]
    starts = np.asarray(s0)

    def run():
        out = []
        for s in starts:
            ret, disc = 0.0, 1.0
            for _ in range(horizon):
                a = np.tanh(pW1 @ s + pb1) @ pW2.T + pb2
                sa = np.concatenate([s, a])
                r = float((rW2 @ np.tanh(rW1 @ sa + rb1) + rb2)[0])
                s = s + dW2 @ np.tanh(dW1 @ sa + db1) + db2
                ret += disc * r
                disc *= 0.99
            out.append(ret)
        return out

    return run


def roofline_runner(params, s0, horizon):
    """The step's matrix multiplies back to back: no tanh, no concat, no reward sum."""
    (dW1, _), (dW2, _) = params[0]
    (rW1, _), (rW2, _) = params[1]
    (pW1, _), (pW2, _) = params[2]
    batch = s0.shape[0]
    sa0 = jnp.zeros((batch, STATE + ACTION), s0.dtype)

    @jax.jit
    def run(s, sa):
        def step(carry, _):
            s, sa = carry
            a = (s @ pW1.T) @ pW2.T
            r = (sa @ rW1.T) @ rW2.T
            s_next = (sa @ dW1.T) @ dW2.T
            # feed results forward so nothing is dead code (cheap elementwise glue)
            return (s_next, sa + r + a[:, :1]), None

        (s, sa), _ = jax.lax.scan(step, (s, sa), None, length=horizon)
        return s.sum() + sa.sum()

    return lambda: run(s0, sa0)


def activation_runner(batch, horizon):
    """The step's ``tanh`` evaluations alone (three hidden layers of 64 per rollout and step)."""
    x0 = jax.random.normal(jax.random.key(2), (batch, 3 * HIDDEN), jnp.float32)

    @jax.jit
    def run(x):
        def step(c, _):
            return jnp.tanh(c) * 0.9 + 0.01, None

        c, _ = jax.lax.scan(step, x, None, length=horizon)
        return c.sum()

    return lambda: run(x0)


# ----------------------------------------------------------------------------- measurement
def measure(
    batch: int,
    horizon: int,
    repeats: int = 5,
    python_subset: int = 64,
    with_slow: bool = True,
) -> dict:
    """Time every contender on one problem size and return the figures as a dict.

    Parameters
    ----------
    batch, horizon:
        Rollouts per batch and steps per rollout.
    repeats:
        Warm calls per contender; the best is kept.
    python_subset:
        Rollouts timed in the per-rollout Python loop (its rate is per step, so it scales).
    with_slow:
        Also time batched NumPy and the Python loop (skip them in sweeps).

    Returns
    -------
    dict
        Keys ``jax_steps_per_s``, ``jax_flops_per_s``, ``roofline_flops_per_s``,
        ``fraction_of_roofline``, ``activation_s`` (the ``tanh`` evaluations alone),
        ``fraction_of_matmul_tanh_floor`` (roofline time plus activation time over engine time),
        ``jax_compile_s``, ``jax_run_s`` and, with ``with_slow``,
        ``numpy_steps_per_s``, ``python_steps_per_s``, ``speedup_vs_numpy``,
        ``speedup_vs_python``.
    """
    if batch < 1 or horizon < 1 or repeats < 1 or python_subset < 1:
        raise ValueError(
            "batch, horizon, repeats and python_subset must be positive"
        )
    params = make_params(jax.random.key(0))
    s0 = jax.random.normal(jax.random.key(1), (batch, STATE), jnp.float32)
    steps = batch * horizon
    flops = flops_per_step(batch) * horizon
    out = {
        "batch": batch,
        "horizon": horizon,
        "backend": device.backend(),
        "device": jax.devices()[0].device_kind,
    }

    if with_slow:
        # The NumPy contenders run first, before XLA's worker threads have work to spin on, and
        # best of at least three: their timings are not to be slowed by the engine's threads.
        t_np = time_call(numpy_runner(params, s0, horizon), repeats=repeats)
        sub = s0[:python_subset]
        t_py = time_call(
            python_runner(params, sub, horizon), repeats=max(3, repeats // 2)
        )
        out.update(
            numpy_steps_per_s=steps / t_np.best_s,
            python_steps_per_s=python_subset * horizon / t_py.best_s,
        )
    t_jax = time_call(jax_runner(params, s0, horizon), repeats=repeats)
    t_roof = time_call(roofline_runner(params, s0, horizon), repeats=repeats)
    t_act = time_call(activation_runner(batch, horizon), repeats=repeats)
    out.update(
        jax_compile_s=t_jax.compile_s,
        jax_run_s=t_jax.best_s,
        jax_steps_per_s=steps / t_jax.best_s,
        jax_flops_per_s=flops / t_jax.best_s,
        roofline_flops_per_s=flops / t_roof.best_s,
    )
    if with_slow:
        out["speedup_vs_numpy"] = (
            out["jax_steps_per_s"] / out["numpy_steps_per_s"]
        )
        out["speedup_vs_python"] = (
            out["jax_steps_per_s"] / out["python_steps_per_s"]
        )
    out["fraction_of_roofline"] = (
        out["jax_flops_per_s"] / out["roofline_flops_per_s"]
    )
    # The roofline omits the activations; matmuls plus tanh alone is the floor for this model.
    out["activation_s"] = t_act.best_s
    out["fraction_of_matmul_tanh_floor"] = (
        t_roof.best_s + t_act.best_s
    ) / t_jax.best_s
    return out


def sweep(batches, horizons, repeats: int = 3) -> list[dict]:
    """Steps/s of the engine and its roofline fraction across batch sizes (at horizon 50) and
    horizons (at batch 4096); one :func:`measure` row each, without the slow contenders."""
    rows = [measure(b, 50, repeats, 1, with_slow=False) for b in batches]
    rows += [measure(4096, h, repeats, 1, with_slow=False) for h in horizons]
    return rows
