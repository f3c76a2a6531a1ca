"""Trying to break the book's theorems: a gradient search for the worst case.

A bound that is checked only on the systems that attain it shows that the
formula is attained, not that it holds for every system the theorem covers.
This module searches the theorem's class for a counterexample. Each search

1. states the class (the theorem's hypotheses) and parametrises a rich
   family inside it, with every constant enforced *by construction*:
   nonlinear maps whose Jacobian blocks are bounded by spectral
   normalisation (:func:`lipschitz_map`), perturbations of the learned
   model projected into a ball of radius ``eps`` (:func:`ball_map`), start
   states, horizons, discounts, policies;
2. maximises ``measured / bound`` over the family by gradient ascent through
   the rollouts (``jax.grad``, Adam from :mod:`optax`), from many random
   restarts batched with ``vmap``, in float64 (:func:`ascend`);
3. runs the *same* search against plausible wrong bounds (a dropped factor,
   an exponent or a horizon off by one, ...). A search that refutes none of
   them (finds no ratio above one) is no evidence: it might simply be weak.

The five searches are :func:`compounding_search` (chapter 2),
:func:`return_error_search` (chapter 3), :func:`z_block_search` (chapter 5),
:func:`noise_variance_search` (chapter 6) and :func:`certificate_search`
(chapter 9). Each returns a :class:`Search`, which
:func:`imagination.claims.Ledger.search` records.

The family's maps (:func:`lipschitz_map`): with ``U(W) = W / ||W||_2``,

``g(x_1, ..., x_k) = c sum_i l_i U(A_i) x_i + (1 - c) U(W_2) tanh(sum_i l_i U(W_i) x_i + b) + d``

with ``c in (0, 1)``. The Jacobian block of input ``i`` is
``l_i [c U(A_i) + (1 - c) U(W_2) D U(W_i)]`` with ``||D||_2 <= 1``, so its
spectral norm is at most ``l_i`` everywhere: the map is ``l_i``-Lipschitz in
``x_i`` for the others fixed, and with ``l_i = L`` for every ``i`` it is
``L``-Lipschitz for the sum of norms ``||x_1|| + ... + ||x_k||``, the norm
on state-action pairs the book uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import bounds, device
from ._checks import integer, number

__all__ = [
    "Search",
    "AscentResult",
    "ascend",
    "lipschitz_map",
    "normalise",
    "apply_normalised",
    "ball_map",
    "init_lipschitz_map",
    "init_ball_map",
    "compounding_search",
    "return_error_search",
    "z_block_search",
    "noise_variance_search",
    "certificate_search",
    "default_restarts",
    "plot_search",
]

Array = jax.Array
Params = Any


# ----------------------------------------------------------------------------- the family
def _shapes_lipschitz(d_out: int, d_ins: tuple[int, ...], hidden: int) -> dict:
    return {
        "A": [(d_out, d) for d in d_ins],
        "W": [(hidden, d) for d in d_ins],
        "b": (hidden,),
        "W2": (d_out, hidden),
        "mix": (),
        "d": (d_out,),
    }


def _shapes_ball(d_out: int, d_in: int, hidden: int) -> dict:
    return {
        "W1": (hidden, d_in),
        "b1": (hidden,),
        "W2": (d_out, hidden),
        "b2": (d_out,),
        "gain": (),
    }


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def _normal_tree(key: Array, shapes: Any) -> Any:
    """A pytree of standard normal arrays with the given shapes, from one
    draw (one random call, however many leaves: cheap to compile)."""
    leaves, treedef = jax.tree_util.tree_flatten(shapes, is_leaf=_is_shape)
    sizes = [math.prod(s) for s in leaves]
    flat = jax.random.normal(key, (sum(sizes),))
    out, i = [], 0
    for s, n in zip(leaves, sizes):
        out.append(flat[i : i + n].reshape(s))
        i += n
    return jax.tree_util.tree_unflatten(treedef, out)


def init_lipschitz_map(
    key: Array, d_out: int, d_ins: tuple[int, ...], hidden: int = 8
) -> dict:
    """Random parameters of :func:`lipschitz_map` (standard normal entries).

    Parameters
    ----------
    key:
        PRNG key.
    d_out:
        Output dimension.
    d_ins:
        Dimension of each input block.
    hidden:
        Width of the ``tanh`` layer.
    """
    return _normal_tree(key, _shapes_lipschitz(d_out, tuple(d_ins), hidden))


def normalise(tree: Any) -> Any:
    """Every parameter dict of :func:`init_lipschitz_map` in ``tree`` with
    its matrices divided by their spectral norms (one batched SVD).

    The result is what :func:`apply_normalised` takes: normalise once, then
    apply the map at every step of a rollout.
    """
    is_map = lambda x: isinstance(x, dict) and "W2" in x and "A" in x  # noqa: E731
    maps, treedef = jax.tree_util.tree_flatten(tree, is_leaf=is_map)
    mats = [W for m in maps if is_map(m) for W in (*m["A"], *m["W"], m["W2"])]
    if not mats:
        return tree
    rows = max(W.shape[0] for W in mats)
    cols = max(W.shape[1] for W in mats)
    padded = jnp.stack(
        [
            jnp.zeros((rows, cols), W.dtype)
            .at[: W.shape[0], : W.shape[1]]
            .set(W)
            for W in mats
        ]
    )
    norms = jnp.linalg.svd(padded, compute_uv=False)[:, 0]
    it = iter(range(len(mats)))
    out = []
    for m in maps:
        if not is_map(m):
            out.append(m)
            continue
        A = [W / norms[next(it)] for W in m["A"]]
        Wl = [W / norms[next(it)] for W in m["W"]]
        out.append({**m, "A": A, "W": Wl, "W2": m["W2"] / norms[next(it)]})
    return jax.tree_util.tree_unflatten(treedef, out)


def apply_normalised(p: dict, xs: tuple[Array, ...], lips: tuple) -> Array:
    """:func:`lipschitz_map` with parameters already passed through
    :func:`normalise` (every matrix of spectral norm one)."""
    c = jax.nn.sigmoid(p["mix"])
    lin = sum(
        lip * (A @ x) for A, x, lip in zip(p["A"], xs, lips, strict=True)
    )
    pre = sum(
        lip * (W @ x) for W, x, lip in zip(p["W"], xs, lips, strict=True)
    )
    return c * lin + (1 - c) * p["W2"] @ jnp.tanh(pre + p["b"]) + p["d"]


def lipschitz_map(p: dict, xs: tuple[Array, ...], lips: tuple) -> Array:
    """``g(x_1, ..., x_k)`` whose Jacobian block ``i`` has spectral norm at most ``lips[i]``.

    See the module docstring for the form. The constants hold by
    construction (every matrix is divided by its spectral norm), whatever
    the parameters ``p`` (:func:`init_lipschitz_map`).
    """
    return apply_normalised(normalise(p), xs, lips)


def init_ball_map(key: Array, d_out: int, d_in: int, hidden: int = 8) -> dict:
    """Random parameters of :func:`ball_map` (standard normal, ``gain`` 0)."""
    p = _normal_tree(key, _shapes_ball(d_out, d_in, hidden))
    return {**p, "gain": jnp.zeros_like(p["gain"])}


def ball_map(p: dict, x: Array, radius: Array) -> Array:
    """A perturbation ``u(x)`` with ``||u(x)|| <= radius`` everywhere.

    A free ``tanh`` network ``v(x)``, scaled by ``exp(gain)`` and projected
    onto the ball: ``radius * v / max(1, ||v||)``. The radius is attained
    wherever ``||v|| >= 1``, so the search can make the error as large as
    the hypothesis allows, in any direction, varying with ``x``.
    """
    v = jnp.exp(p["gain"]) * (
        p["W2"] @ jnp.tanh(p["W1"] @ x + p["b1"]) + p["b2"]
    )
    return radius * v / jnp.maximum(1.0, jnp.linalg.norm(v))


def _in_range(x: Array, low: float, high: float) -> Array:
    """``low + (high - low) sigmoid(x)``: a constant searched inside a range."""
    return low + (high - low) * jax.nn.sigmoid(x)


def _log_range(x: Array, low: float, high: float) -> Array:
    return jnp.exp(_in_range(x, math.log(low), math.log(high)))


# ----------------------------------------------------------------------------- the ascent
class AscentResult(NamedTuple):
    """What :func:`ascend` found, one row per objective.

    Attributes
    ----------
    best:
        ``(n_objectives,)`` largest value found over restarts and steps.
    history:
        ``(n_objectives, steps)`` best-so-far value (over all restarts) after
        each ascent step.
    params, context:
        Parameters and context of the best restart of each objective
        (leading axis ``n_objectives``).
    values_at_best:
        ``(n_objectives, n_objectives)``: row ``k`` is every objective
        evaluated at objective ``k``'s best point.
    """

    best: np.ndarray
    history: np.ndarray
    params: Any
    context: Any
    values_at_best: np.ndarray


@partial(jax.jit, static_argnames=("values", "init", "restarts", "lr"))
def _start(values, init, key, restarts, lr):
    params, ctx = jax.vmap(init)(jax.random.split(key, restarts))
    state = jax.vmap(optax.adam(lr).init)(params)
    best = jnp.full((restarts,), -jnp.inf, jnp.result_type(float))
    return params, ctx, state, best, params


@partial(jax.jit, static_argnames=("values", "lr"))
def _step(values, lr, which, params, ctx, state, best, best_p):
    """One Adam step of every restart on objective ``which`` (traced, so
    one compilation serves every objective), keeping each restart's best."""
    opt = optax.adam(lr)

    def one(p, c, s, b, bp):
        val, g = jax.value_and_grad(lambda q: values(q, c)[which])(p)
        ok = jnp.isfinite(val)
        g = jax.tree_util.tree_map(
            lambda x: jnp.where(ok & jnp.isfinite(x), -x, 0.0), g
        )
        better = ok & (val > b)
        bp = jax.tree_util.tree_map(
            lambda x, y: jnp.where(better, x, y), p, bp
        )
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, jnp.where(better, val, b), bp

    return jax.vmap(one)(params, ctx, state, best, best_p)


@partial(jax.jit, static_argnames=("values",))
def _values(values, params, ctx):
    return jax.vmap(values)(params, ctx)


def ascend(
    values: Callable[[Params, Any], Array],
    init: Callable[[Array], tuple[Params, Any]],
    key: Array,
    *,
    restarts: int,
    steps: int,
    learning_rate: float = 0.05,
) -> AscentResult:
    """Maximise each of several objectives by Adam from many random restarts.

    Parameters
    ----------
    values:
        ``values(params, context) -> (n_objectives,)``, differentiable in
        ``params``: here the ratios ``measured / bound`` of one measurement
        against the theorem's bound and against each wrong bound. Objective
        ``k`` is ascended on its own, from the same restarts as the others.
        A module-level function (it is a static argument of the jitted
        search).
    init:
        ``init(key) -> (params, context)``: a random starting point; the
        context (e.g. an integer horizon) is held fixed during the ascent.
        Module-level, like ``values``.
    key:
        PRNG key of the restarts.
    restarts, steps:
        Number of random restarts (batched with ``vmap``) and Adam steps.
    learning_rate:
        Adam's step size.

    Returns
    -------
    AscentResult
        Non-finite values (an overflow) are never counted as a best value,
        and their gradients are dropped.

    Raises
    ------
    ValueError
        If ``restarts`` or ``steps`` is not a positive integer, or
        ``learning_rate`` is not positive.
    """
    restarts = integer("restarts", restarts, minimum=1)
    steps = integer("steps", steps, minimum=1)
    lr = number("learning_rate", learning_rate, positive=True)
    out = {"best": [], "hist": [], "params": [], "ctx": []}
    n_obj = None
    k = 0
    while n_obj is None or k < n_obj:
        params, ctx, state, best, best_p = _start(
            values, init, key, restarts, lr
        )
        hist = []
        for _ in range(steps):
            params, state, best, best_p = _step(
                values, lr, k, params, ctx, state, best, best_p
            )
            hist.append(best)
        # the last point counts too
        last = _values(values, params, ctx)
        n_obj = last.shape[1]
        last = jnp.where(jnp.isfinite(last[:, k]), last[:, k], -jnp.inf)
        better = last > best
        best_p = jax.tree_util.tree_map(
            lambda x, y: jnp.where(
                better.reshape((-1,) + (1,) * (x.ndim - 1)), x, y
            ),
            params,
            best_p,
        )
        best = jnp.maximum(best, last)
        hist[-1] = best
        win = int(jnp.argmax(best))
        out["best"].append(float(best[win]))
        out["hist"].append(np.asarray(jnp.stack(hist)).max(axis=1))
        out["params"].append(jax.tree_util.tree_map(lambda x: x[win], best_p))
        out["ctx"].append(jax.tree_util.tree_map(lambda x: x[win], ctx))
        k += 1
    stack = lambda *xs: np.stack([np.asarray(x) for x in xs])  # noqa: E731
    bp = jax.tree_util.tree_map(stack, *out["params"])
    bc = jax.tree_util.tree_map(stack, *out["ctx"])
    at_best = np.asarray(_values(values, bp, bc))
    return AscentResult(
        np.asarray(out["best"]), np.stack(out["hist"]), bp, bc, at_best
    )


# ----------------------------------------------------------------------------- results
@dataclass
class Search:
    """A worst-case search over a theorem's class, and its power.

    Attributes
    ----------
    name:
        Short name of the theorem.
    statement:
        The inequality searched, in words.
    family:
        The class and the family searched inside it, in words.
    bound_names:
        ``("theorem", <wrong bound>, ...)``.
    ratio:
        Largest ``measured / bound`` found for the theorem's bound, recomputed
        at the best point with the package's own bound where there is one.
    wrong_bounds:
        Largest ``measured / wrong bound`` found by the same search, by name.
    where:
        The best point for the theorem's bound (constants, horizon, ...).
    history:
        Best-so-far ratio after each ascent step, by bound name.
    budget:
        Restarts, steps, ratio evaluations, seconds.
    at_best:
        Every bound's ratio at the theorem's best point (does the worst case
        for the theorem also break the wrong bounds?).
    """

    name: str
    statement: str
    family: str
    bound_names: tuple[str, ...]
    ratio: float
    wrong_bounds: dict[str, float]
    where: dict[str, float]
    history: dict[str, np.ndarray]
    budget: dict[str, float]
    at_best: dict[str, float] = field(default_factory=dict)

    def budget_text(self) -> str:
        """The budget in one line."""
        b = self.budget
        return (
            f"{int(b['restarts'])} restarts x {int(b['steps'])} Adam steps x "
            f"{len(self.bound_names)} bounds, {b['seconds']:.1f} s"
        )

    def summary(self, width: int = 79) -> str:
        """Budget, best ratio and where it was found, wrapped to ``width``."""
        import textwrap

        return "\n".join(
            [
                textwrap.fill(self.budget_text(), width),
                textwrap.fill(
                    f"best ratio {self.ratio!r} at {self.where_text()}",
                    width,
                    subsequent_indent="  ",
                ),
            ]
        )

    def where_text(self) -> str:
        """The best point in one line."""
        return ", ".join(
            f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
            for k, v in self.where.items()
        )


def default_restarts(cpu: int = 16) -> int:
    """Restarts for a search: ``cpu`` on a CPU, 64 times more on an accelerator
    (:func:`imagination.device.mc_size`)."""
    return device.mc_size(cpu, cpu * 64)


@partial(jax.jit, static_argnames=("fn",))
def _jit_point(fn, params, ctx):
    return fn(params, ctx)


def _run(
    name: str,
    statement: str,
    family: str,
    names: tuple[str, ...],
    values: Callable,
    init: Callable,
    point: Callable[[Params, Any], dict],
    check: Callable[[dict], float] | None,
    key: Array,
    restarts: int,
    steps: int,
    learning_rate: float,
) -> Search:
    """Run the ascent for every bound; ``point(params, ctx)`` (jittable)
    describes the theorem's best point, and ``check(point)`` recomputes its
    ratio with the package's own bound."""
    t0 = time.perf_counter()
    with device.enable_x64():  # JAX 0.4.30 has no jax.enable_x64
        res = ascend(
            values,
            init,
            key,
            restarts=restarts,
            steps=steps,
            learning_rate=learning_rate,
        )
        p0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x[0]), res.params)
        c0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x[0]), res.context)
        spot = {
            k: (int(v) if jnp.issubdtype(v.dtype, jnp.integer) else float(v))
            for k, v in _jit_point(point, p0, c0).items()
        }
    ratio = float(res.best[0]) if check is None else float(check(spot))
    seconds = time.perf_counter() - t0
    return Search(
        name=name,
        statement=statement,
        family=family,
        bound_names=names,
        ratio=ratio,
        wrong_bounds={n: float(b) for n, b in zip(names[1:], res.best[1:])},
        where=spot,
        history={n: res.history[i] for i, n in enumerate(names)},
        budget={
            "restarts": restarts,
            "steps": steps,
            "evaluations": restarts * steps * len(names),
            "seconds": seconds,
        },
        at_best={n: float(v) for n, v in zip(names, res.values_at_best[0])},
    )


def _geometric(L: Array, t: Array, t_max: int) -> Array:
    """``sum_{k < t} L^k`` for an integer ``t <= t_max`` (no 0/0 at ``L = 1``)."""
    k = jnp.arange(t_max)
    return jnp.sum(jnp.where(k < t, L**k, 0.0))


def _deltas(eps: Array, L: Array, t_max: int) -> Array:
    """``(t_max + 1,)`` compounding bounds ``eps sum_{k<t} L^k``, ``t = 0..t_max``."""
    return eps * jnp.concatenate(
        [jnp.zeros((1,)), jnp.cumsum(L ** jnp.arange(t_max))]
    )


# ----------------------------------------------------------------------------- closed-loop pairs
DS, DA, HIDDEN = 3, 2, 8
T_MAX = 6
H_MIN = 3  # from three steps on, the compounding is what is searched


def _pair_rollout(model_step, true_step, s0, horizon):
    """Imagined and true closed-loop trajectories from the same start.

    ``model_step(s, t) -> (s_next, reward)`` and ``true_step`` likewise;
    returns ``(s_hat, s, r_hat, r)`` of shapes ``(horizon + 1, ds)`` and
    ``(horizon,)``.
    """

    def step(carry, t):
        s_hat, s = carry
        nh, rh = model_step(s_hat, t)
        n, r = true_step(s, t)
        return (nh, n), (s_hat, s, rh, r)

    (lh, lt), (sh, st, rh, rt) = jax.lax.scan(
        step, (s0, s0), jnp.arange(horizon)
    )
    return (
        jnp.concatenate([sh, lh[None]]),
        jnp.concatenate([st, lt[None]]),
        rh,
        rt,
    )


_BLOCK_SHAPES = {
    "f": _shapes_lipschitz(DS, (DS, DA), HIDDEN),
    "r": _shapes_lipschitz(1, (DS, DA), HIDDEN),
    "pi": _shapes_lipschitz(DA, (DS,), HIDDEN),
    "e": _shapes_ball(DS, DS + DA, HIDDEN),
    "er": _shapes_ball(1, DS + DA, HIDDEN),
    "u": (T_MAX, DA),
    "s0": (DS,),
    "c": (8,),  # the constants, mapped to their ranges
}


def _init_blocks(key):
    """A system with separate (block) constants: learned dynamics, learned
    reward, policy, perturbations, open-loop offsets and the constants;
    the context is the horizon, uniform on ``2..T_MAX``."""
    k1, k2 = jax.random.split(key)
    p = _normal_tree(k1, _BLOCK_SHAPES)
    p["u"] = 0.3 * p["u"]
    for e in ("e", "er"):
        p[e] = {**p[e], "gain": jnp.zeros_like(p[e]["gain"])}
    return p, jax.random.randint(k2, (), H_MIN, T_MAX + 1)


def _block_constants(p):
    c = p["c"]
    return {
        "L_z": _in_range(c[0], 0.0, 2.0),
        "L_a": _in_range(c[1], 0.0, 2.0),
        "R_z": _in_range(c[2], 0.5, 2.0),
        "R_a": _in_range(c[3], 0.5, 2.0),
        "L_pi": _in_range(c[4], 0.0, 2.0),
        "eps_d": _log_range(c[5], 1e-2, 1.0),
        "eps_r": _log_range(c[6], 1e-4, 1e-3),
        "gamma": _in_range(c[7], 0.5, 1.0),
    }


def _block_rollout(p, k, open_loop: bool):
    """Rollouts of a system whose learned dynamics have Jacobian blocks
    ``L_z`` (state) and ``L_a`` (action), learned reward blocks ``R_z``,
    ``R_a``, an ``L_pi``-Lipschitz policy plus (if ``open_loop``) an
    open-loop offset ``u_t``; the true system is the learned one minus
    perturbations of size ``eps_d``, ``eps_r``."""
    u = p["u"] if open_loop else jnp.zeros_like(p["u"])
    p = normalise(p)

    def act(s, t):
        return apply_normalised(p["pi"], (s,), (k["L_pi"],)) + u[t]

    def model(s, t):
        a = act(s, t)
        nxt = apply_normalised(p["f"], (s, a), (k["L_z"], k["L_a"]))
        rew = apply_normalised(p["r"], (s, a), (k["R_z"], k["R_a"]))[0]
        return nxt, rew

    def true(s, t):
        a = act(s, t)
        nxt, rew = model(s, t)
        sa = jnp.concatenate([s, a])
        return (
            nxt - ball_map(p["e"], sa, k["eps_d"]),
            rew - ball_map(p["er"], sa, k["eps_r"])[0],
        )

    return _pair_rollout(model, true, p["s0"], T_MAX)


def _reward_share(eps_r, bound, gamma, horizon):
    """Share of a return bound paid for the reward error alone."""
    t = jnp.arange(T_MAX)
    return eps_r * jnp.sum(jnp.where(t < horizon, gamma**t, 0)) / bound


def _return_gap(r_hat, r, gamma, horizon):
    disc = jnp.where(
        jnp.arange(T_MAX) < horizon, gamma ** jnp.arange(T_MAX), 0
    )
    return (r_hat - r) @ disc


def _return_bound(eps_r, eps_d, L, lip_r, gamma, horizon):
    """``sum_{t<H} gamma^t (eps_r + lip_r delta_t)``, ``delta_t = eps_d sum_{k<t} L^k``."""
    t = jnp.arange(T_MAX)
    delta = _deltas(eps_d, L, T_MAX)[:-1]
    return jnp.sum(
        jnp.where(t < horizon, gamma**t * (eps_r + lip_r * delta), 0)
    )


# ----------------------------------------------------------------------------- (a) compounding
_COMPOUNDING_NAMES = (
    "theorem",
    "L_f in place of L_f (1 + L_pi)",
    "L^t in place of (L^t - 1)/(L - 1)",
    "horizon off by one: t - 1 steps",
    "no compounding: t eps_d",
)


def _compounding_constants(p, expanding=False):
    k = _block_constants(p)
    if expanding:  # L = L_f (1 + L_pi) >= 0.8 * 1.3 = 1.04
        k["L_z"] = _in_range(p["c"][0], 0.8, 2.0)
        k["L_pi"] = _in_range(p["c"][4], 0.3, 2.0)
    lf = k["L_z"]  # one constant for the pair norm: both blocks L_f
    return {**k, "L_f": lf, "L_a": lf}


def _compounding_values(p, horizon, expanding=False):
    k = _compounding_constants(p, expanding)
    sh, st, _, _ = _block_rollout(p, k, open_loop=False)
    delta = jnp.linalg.norm(sh[horizon] - st[horizon])
    eps, lf, lp = k["eps_d"], k["L_f"], k["L_pi"]
    L = lf * (1 + lp)
    bound = jnp.stack(
        [
            eps * _geometric(L, horizon, T_MAX),
            eps * _geometric(lf, horizon, T_MAX),
            eps * L**horizon,
            eps * _geometric(L, horizon - 1, T_MAX),
            eps * horizon,
        ]
    )
    return delta / bound


def _compounding_point(p, horizon, expanding=False):
    k = _compounding_constants(p, expanding)
    sh, st, _, _ = _block_rollout(p, k, open_loop=False)
    return {
        "t": horizon,
        "L_f": k["L_f"],
        "L_pi": k["L_pi"],
        "eps_d": k["eps_d"],
        "delta_t": jnp.linalg.norm(sh[horizon] - st[horizon]),
    }


def _compounding_check(w):
    """The best ratio against :func:`imagination.bounds.compounding_error_bound`."""
    L = w["L_f"] * (1 + w["L_pi"])
    return w["delta_t"] / bounds.compounding_error_bound(w["eps_d"], L, w["t"])


_EXPANDING = (
    partial(_compounding_values, expanding=True),
    partial(_compounding_point, expanding=True),
)


def compounding_search(
    key: Array,
    *,
    restarts: int | None = None,
    steps: int = 150,
    learning_rate: float = 0.05,
    expanding: bool = False,
) -> Search:
    """Search for a system that breaks the compounding bound (chapter 2).

    Class: deterministic true dynamics ``f`` (any), learned ``f_hat``
    ``L_f``-Lipschitz for ``||s|| + ||a||``, policy ``L_pi``-Lipschitz,
    one-step error ``||f_hat - f|| <= eps_d`` along the true trajectory.
    Family: ``f_hat`` and ``pi`` from :func:`lipschitz_map` (state dimension
    3, action dimension 2), ``f = f_hat - u`` with ``u`` from
    :func:`ball_map`, ``L_f, L_pi in (0, 2)``, ``eps_d in (0.01, 1)``, any
    start state, ``t in 3..6``. Measured: ``delta_t = ||s_hat_t - s_t||``
    against ``eps_d (L^t - 1)/(L - 1)`` and four wrong bounds.

    Parameters
    ----------
    key:
        PRNG key of the restarts.
    restarts:
        Random restarts; default :func:`default_restarts`.
    steps, learning_rate:
        Adam steps and step size.
    expanding:
        Search only expanding closed loops: ``L_f in (0.8, 2)`` and
        ``L_pi in (0.3, 2)``, so ``L >= 1.04`` (the unrestricted search
        may find its worst case at ``L < 1``).
    """
    values, point = (
        _EXPANDING if expanding else (_compounding_values, _compounding_point)
    )
    return _run(
        "compounding bound" + (" (expanding loops)" if expanding else ""),
        "delta_t <= eps_d (L^t - 1)/(L - 1), L = L_f (1 + L_pi)",
        "f_hat, pi: spectrally normalised tanh maps (ds = 3, da = 2) with "
        + (
            "L_f in (0.8, 2), L_pi in (0.3, 2) (L >= 1.04)"
            if expanding
            else "L_f, L_pi in (0, 2)"
        )
        + "; f = f_hat - u, ||u|| <= eps_d in (0.01, 1); any start; t in 3..6",
        _COMPOUNDING_NAMES,
        values,
        _init_blocks,
        point,
        _compounding_check,
        key,
        default_restarts() if restarts is None else restarts,
        steps,
        learning_rate,
    )


# ----------------------------------------------------------------------------- (b) return error
_RETURN_NAMES = (
    "theorem",
    "L_r in place of L_r (1 + L_pi)",
    "L = L_f in the compounding",
    "horizon off by one: t < H - 1",
    "no compounding: delta_t = t eps_d",
)


def _return_values(p, horizon):
    k = _compounding_constants(p)
    _, _, rh, rt = _block_rollout(p, _as_pair_norm(k), open_loop=False)
    gap = jnp.abs(_return_gap(rh, rt, k["gamma"], horizon))
    er, ed, lf, lr, lp, g = (
        k[n] for n in ("eps_r", "eps_d", "L_f", "R_z", "L_pi", "gamma")
    )
    L = lf * (1 + lp)
    t = jnp.arange(T_MAX)
    linear = jnp.sum(
        jnp.where(t < horizon, g**t * (er + lr * (1 + lp) * ed * t), 0)
    )
    bound = jnp.stack(
        [
            _return_bound(er, ed, L, lr * (1 + lp), g, horizon),
            _return_bound(er, ed, L, lr, g, horizon),
            _return_bound(er, ed, lf, lr * (1 + lp), g, horizon),
            _return_bound(er, ed, L, lr * (1 + lp), g, horizon - 1),
            linear,
        ]
    )
    return gap / bound


def _as_pair_norm(k):
    """Pair-norm constants: both blocks of f_hat are L_f, both of r_hat L_r."""
    return {**k, "L_a": k["L_z"], "R_a": k["R_z"]}


def _return_point(p, horizon):
    k = _compounding_constants(p)
    _, _, rh, rt = _block_rollout(p, _as_pair_norm(k), open_loop=False)
    return {
        "H": horizon,
        "gamma": k["gamma"],
        "L_f": k["L_f"],
        "L_r": k["R_z"],
        "L_pi": k["L_pi"],
        "eps_d": k["eps_d"],
        "eps_r": k["eps_r"],
        "gap": jnp.abs(_return_gap(rh, rt, k["gamma"], horizon)),
        "reward_share": _reward_share(
            k["eps_r"],
            _return_bound(
                k["eps_r"],
                k["eps_d"],
                k["L_f"] * (1 + k["L_pi"]),
                k["R_z"] * (1 + k["L_pi"]),
                k["gamma"],
                horizon,
            ),
            k["gamma"],
            horizon,
        ),
    }


def _return_check(w):
    """The best ratio against :func:`imagination.bounds.return_error_bound`."""
    b = bounds.return_error_bound(
        w["eps_d"],
        w["eps_r"],
        w["L_f"],
        w["L_r"],
        w["L_pi"],
        w["gamma"],
        horizon=w["H"],
    )
    return w["gap"] / b


def return_error_search(
    key: Array,
    *,
    restarts: int | None = None,
    steps: int = 150,
    learning_rate: float = 0.05,
) -> Search:
    """Search for a system that breaks the return-error bound (chapter 3).

    Class: the compounding class of :func:`compounding_search`, plus a
    learned reward ``L_r``-Lipschitz for ``||s|| + ||a||`` and a reward error
    ``|r_hat - r| <= eps_r`` along the true trajectory. Family: the maps of
    :func:`compounding_search`, ``r_hat`` from :func:`lipschitz_map` with
    ``L_r in (0.5, 2)``, ``r = r_hat - u_r`` with ``|u_r| <= eps_r in
    (1e-4, 1e-3)`` (:func:`ball_map`), ``gamma in (0.5, 1)``, ``H in 3..6``.
    Measured: ``|J_hat - J|`` against
    ``sum_{t<H} gamma^t [eps_r + L_r (1 + L_pi) delta_t]`` and four wrong
    bounds.

    Parameters
    ----------
    key:
        PRNG key of the restarts.
    restarts:
        Random restarts; default :func:`default_restarts`.
    steps, learning_rate:
        Adam steps and step size.
    """
    return _run(
        "return-error bound",
        "|J_hat - J| <= sum_{t<H} gamma^t [eps_r + L_r (1 + L_pi) delta_t]",
        "f_hat, r_hat, pi: spectrally normalised tanh maps (ds = 3, da = 2) "
        "with L_f, L_pi in (0, 2), L_r in (0.5, 2); f = f_hat - u, ||u|| <= eps_d; "
        "r = r_hat - u_r, |u_r| <= eps_r; eps_d in (0.01, 1), eps_r in "
        "(1e-4, 1e-3); gamma in (0.5, 1); any start; H in 3..6",
        _RETURN_NAMES,
        _return_values,
        _init_blocks,
        _return_point,
        _return_check,
        key,
        default_restarts() if restarts is None else restarts,
        steps,
        learning_rate,
    )


# ----------------------------------------------------------------------------- (c) z blocks
_ZBLOCK_NAMES = (
    "theorem",
    "L_z in place of L_z + L_a L_pi",
    "R_z in place of R_z + R_a L_pi",
    "horizon off by one: t < H - 1",
    "no compounding: delta_t = t eps_d",
)


def _zblock_values(p, horizon):
    k = _block_constants(p)
    _, _, rh, rt = _block_rollout(p, k, open_loop=True)
    gap = jnp.abs(_return_gap(rh, rt, k["gamma"], horizon))
    er, ed, g, lp = k["eps_r"], k["eps_d"], k["gamma"], k["L_pi"]
    L = k["L_z"] + k["L_a"] * lp
    R = k["R_z"] + k["R_a"] * lp
    t = jnp.arange(T_MAX)
    linear = jnp.sum(jnp.where(t < horizon, g**t * (er + R * ed * t), 0))
    bound = jnp.stack(
        [
            _return_bound(er, ed, L, R, g, horizon),
            _return_bound(er, ed, k["L_z"], R, g, horizon),
            _return_bound(er, ed, L, k["R_z"], g, horizon),
            _return_bound(er, ed, L, R, g, horizon - 1),
            linear,
        ]
    )
    return gap / bound


def _zblock_point(p, horizon):
    k = _block_constants(p)
    _, _, rh, rt = _block_rollout(p, k, open_loop=True)
    return {
        "H": horizon,
        **{n: k[n] for n in ("gamma", "L_z", "L_a", "R_z", "R_a", "L_pi")},
        "eps_d": k["eps_d"],
        "eps_r": k["eps_r"],
        "gap": jnp.abs(_return_gap(rh, rt, k["gamma"], horizon)),
        "reward_share": _reward_share(
            k["eps_r"],
            _return_bound(
                k["eps_r"],
                k["eps_d"],
                k["L_z"] + k["L_a"] * k["L_pi"],
                k["R_z"] + k["R_a"] * k["L_pi"],
                k["gamma"],
                horizon,
            ),
            k["gamma"],
            horizon,
        ),
    }


def _zblock_check(w):
    """The best ratio against :func:`imagination.latent.bound_from_constants`
    with ``L_f = L_z + L_a L_pi`` and ``L_r = R_z + R_a L_pi``."""
    from . import latent

    b = latent.bound_from_constants(
        w["eps_d"],
        w["eps_r"],
        w["L_z"] + w["L_a"] * w["L_pi"],
        w["R_z"] + w["R_a"] * w["L_pi"],
        w["gamma"],
        w["H"],
    )
    return w["gap"] / float(b)


def z_block_search(
    key: Array,
    *,
    restarts: int | None = None,
    steps: int = 150,
    learning_rate: float = 0.05,
) -> Search:
    """Search for a latent system that breaks chapter 5's z-block bound.

    Class: learned latent dynamics with Jacobian blocks
    ``||d_z f_hat|| <= L_z``, ``||d_a f_hat|| <= L_a``, learned reward with
    ``||d_z r_hat|| <= R_z``, ``||d_a r_hat|| <= R_a``, actions
    ``a_t = pi(z_t) + u_t`` (an ``L_pi``-Lipschitz feedback plus an
    open-loop sequence ``u_t`` shared by both rollouts; ``L_pi = 0`` is a
    replayed action sequence), and a comparison trajectory ``z*`` with
    one-step error at most ``eps_d`` and reward error at most ``eps_r``.
    Family: :func:`lipschitz_map` blocks (latent dimension 3, action
    dimension 2) with ``L_z, L_a, L_pi in (0, 2)``, ``R_z, R_a in (0.5, 2)``, :func:`ball_map`
    errors, any ``u_t``, start, ``gamma in (0.5, 1)``, ``H in 3..6``.
    Measured: ``|J_hat - J|`` against
    ``sum_{t<H} gamma^t [eps_r + (R_z + R_a L_pi) delta_t]`` with
    ``L = L_z + L_a L_pi`` (:func:`imagination.latent.bound_from_constants`)
    and four wrong bounds.

    Parameters
    ----------
    key:
        PRNG key of the restarts.
    restarts:
        Random restarts; default :func:`default_restarts`.
    steps, learning_rate:
        Adam steps and step size.
    """
    return _run(
        "z-block bound",
        "|J_hat - J| <= sum_{t<H} gamma^t [eps_r + (R_z + R_a L_pi) delta_t],"
        " delta_t from L = L_z + L_a L_pi",
        "latent f_hat, r_hat, pi: spectrally normalised tanh maps (dz = 3, "
        "da = 2) with L_z, L_a, L_pi in (0, 2), R_z, R_a in (0.5, 2); "
        "open-loop offsets u_t; errors in balls of radius eps_d in (0.01, 1), "
        "eps_r in (1e-4, 1e-3); gamma in (0.5, 1); any start; H in 3..6",
        _ZBLOCK_NAMES,
        _zblock_values,
        _init_blocks,
        _zblock_point,
        _zblock_check,
        key,
        default_restarts() if restarts is None else restarts,
        steps,
        learning_rate,
    )


# ----------------------------------------------------------------------------- (e) certificate
_CERT_NAMES = (
    "theorem",
    "L_cl^t in place of (L_cl^t - 1)/(L_cl - 1)",
    "horizon off by one: t < H - 1",
    "L_cl = 1: delta_t = t eps_dyn",
    "no accumulation: delta_t = eps_dyn",
)

_CERT_SHAPES = {
    "F": _shapes_lipschitz(DS, (DS,), HIDDEN),
    "R": _shapes_lipschitz(1, (DS,), HIDDEN),
    "e": _shapes_ball(DS, DS, HIDDEN),
    "er": _shapes_ball(1, DS, HIDDEN),
    "s0": (DS,),
    "c": (5,),
}


def _init_cert(key):
    k1, k2 = jax.random.split(key)
    p = _normal_tree(k1, _CERT_SHAPES)
    for e in ("e", "er"):
        p[e] = {**p[e], "gain": jnp.zeros_like(p[e]["gain"])}
    return p, jax.random.randint(k2, (), H_MIN, T_MAX + 1)


def _cert_constants(p):
    c = p["c"]
    return {
        "L_cl": _in_range(c[0], 0.0, 3.0),
        "l_cl": _in_range(c[1], 0.5, 3.0),
        "eps_dyn": _log_range(c[2], 1e-2, 1.0),
        "eps_rew": _log_range(c[3], 1e-4, 1e-3),
        "gamma": _in_range(c[4], 0.5, 1.0),
    }


def _cert_rollout(p, k):
    q = normalise(p)

    def model(s, t):
        return (
            apply_normalised(q["F"], (s,), (k["L_cl"],)),
            apply_normalised(q["R"], (s,), (k["l_cl"],))[0],
        )

    def true(s, t):
        nxt, rew = model(s, t)
        return (
            nxt - ball_map(q["e"], s, k["eps_dyn"]),
            rew - ball_map(q["er"], s, k["eps_rew"])[0],
        )

    return _pair_rollout(model, true, p["s0"], T_MAX)


def _cert_values(p, horizon):
    k = _cert_constants(p)
    _, _, rh, rt = _cert_rollout(p, k)
    shortfall = _return_gap(rh, rt, k["gamma"], horizon)  # J_hat - J
    er, ed, L, l, g = (
        k[n] for n in ("eps_rew", "eps_dyn", "L_cl", "l_cl", "gamma")
    )
    t = jnp.arange(T_MAX)

    def cert(delta, h=horizon):
        return jnp.sum(jnp.where(t < h, g**t * (er + l * delta), 0))

    geo = _deltas(ed, L, T_MAX)[:-1]
    bound = jnp.stack(
        [
            cert(geo),
            cert(ed * L**t),
            cert(geo, horizon - 1),
            cert(ed * t),
            cert(jnp.where(t > 0, ed, 0.0)),
        ]
    )
    return shortfall / bound


def _cert_point(p, horizon):
    k = _cert_constants(p)
    _, _, rh, rt = _cert_rollout(p, k)
    return {
        "H": horizon,
        **k,
        "shortfall": _return_gap(rh, rt, k["gamma"], horizon),
        "reward_share": _reward_share(
            k["eps_rew"],
            _return_bound(
                k["eps_rew"],
                k["eps_dyn"],
                k["L_cl"],
                k["l_cl"],
                k["gamma"],
                horizon,
            ),
            k["gamma"],
            horizon,
        ),
    }


def _cert_check(w):
    """The best ratio against the certificate computed as chapter 9 does:
    :func:`imagination.bounds.return_error_bound` with the closed-loop
    constants and ``L_pi = 0``."""
    b = bounds.return_error_bound(
        w["eps_dyn"],
        w["eps_rew"],
        w["L_cl"],
        w["l_cl"],
        0.0,
        w["gamma"],
        horizon=w["H"],
    )
    return w["shortfall"] / b


def certificate_search(
    key: Array,
    *,
    restarts: int | None = None,
    steps: int = 150,
    learning_rate: float = 0.05,
) -> Search:
    """Search for a system that breaks chapter 9's certificate ``J >= J_hat - E``.

    Class: deterministic true dynamics and reward under a deterministic
    policy; the learned closed loop ``F_hat(s) = f_hat(s, pi(s))`` is
    ``L_cl``-Lipschitz and ``R_hat(s) = r_hat(s, pi(s))`` is
    ``l_cl``-Lipschitz; one-step errors at most ``eps_dyn`` and ``eps_rew``
    along the true trajectory. Only the compositions enter, so the family
    parametrises them directly: :func:`lipschitz_map` (state dimension 3)
    with ``L_cl in (0, 3)``, ``l_cl in (0.5, 3)``, :func:`ball_map` errors with
    ``eps_dyn in (0.01, 1)``, ``eps_rew in (1e-4, 1e-3)``, any start, ``gamma in (0.5, 1)``, ``H in 3..6``.
    Measured: the shortfall ``J_hat - J`` (signed: the certificate is one
    sided) against ``E = sum_{t<H} gamma^t (eps_rew + l_cl delta_t)`` and
    four wrong certificates.

    Parameters
    ----------
    key:
        PRNG key of the restarts.
    restarts:
        Random restarts; default :func:`default_restarts`.
    steps, learning_rate:
        Adam steps and step size.
    """
    return _run(
        "certificate",
        "J >= J_hat - sum_{t<H} gamma^t (eps_rew + l_cl delta_t), delta_t "
        "from L_cl",
        "closed-loop F_hat, R_hat: spectrally normalised tanh maps (ds = 3) "
        "with L_cl in (0, 3), l_cl in (0.5, 3); true F = F_hat - u, R = R_hat - u_r in "
        "balls of radius eps_dyn in (0.01, 1), eps_rew in (1e-4, 1e-3); "
        "gamma in (0.5, 1); any start; H in 3..6",
        _CERT_NAMES,
        _cert_values,
        _init_cert,
        _cert_point,
        _cert_check,
        key,
        default_restarts() if restarts is None else restarts,
        steps,
        learning_rate,
    )


# ----------------------------------------------------------------------------- (d) label noise
N_STATES, N_ACTIONS, H_NOISE = 2, 2, 4
_NOISE_NAMES = (
    "theorem",
    "mean sigma in place of sigma_max",
    "horizon off by one: t < H - 1",
    "per-step scores psi_t in place of Psi_t",
    "sigma_max in place of sigma_max^2",
)
_NOISE_SHAPES = {
    "start": (N_STATES,),
    "trans": (N_STATES, N_ACTIONS, N_STATES),
    "theta": (N_STATES, N_ACTIONS),
    "reward": (N_STATES, N_ACTIONS),
    "noise": (N_STATES, N_ACTIONS),
    "c": (2,),
}


def _enumeration():
    """Every ``(s_0, a_0, ..., s_{H-1}, a_{H-1})`` and every sign pattern
    of the label noise, as index arrays."""
    pairs = N_STATES * N_ACTIONS
    seq = np.array(
        np.unravel_index(np.arange(pairs**H_NOISE), (pairs,) * H_NOISE)
    ).T
    signs = np.array(np.unravel_index(np.arange(2**H_NOISE), (2,) * H_NOISE)).T
    return seq // N_ACTIONS, seq % N_ACTIONS, 1.0 - 2.0 * signs


def _tabular_log_prob(theta, s, a):
    """``log pi(a | s)`` of a softmax policy; ``s``, ``a`` one-hot."""
    return a @ jax.nn.log_softmax(s @ theta)


def _init_noise(key):
    k1, k2 = jax.random.split(key)
    p = _normal_tree(k1, _NOISE_SHAPES)
    p["noise"] = 0.5 + 0.5 * p["noise"]
    return p, jax.random.randint(k2, (), 2, H_NOISE + 1)


def _noise_parts(p, horizon):
    """Exact moments by enumeration of every trajectory and noise pattern."""
    from . import reinforce

    S, A, xi = _enumeration()
    sigma_max = _log_range(p["c"][0], 0.1, 10.0)
    gamma = _in_range(p["c"][1], 0.5, 1.0)
    sigma = sigma_max * jnp.clip(p["noise"], 0.0, 1.0)  # <= sigma_max
    log_mu = jax.nn.log_softmax(p["start"])
    log_pi = jax.nn.log_softmax(p["theta"], axis=-1)
    log_P = jax.nn.log_softmax(p["trans"], axis=-1)
    logp = (
        log_mu[S[:, 0]]
        + jnp.sum(log_pi[S, A], axis=1)
        + jnp.sum(log_P[S[:, :-1], A[:, :-1], S[:, 1:]], axis=1)
    )
    prob = jnp.exp(logp)  # (M,), sums to one
    eye_s, eye_a = jnp.eye(N_STATES), jnp.eye(N_ACTIONS)
    psi = reinforce.step_scores(
        _tabular_log_prob, p["theta"], eye_s[S], eye_a[A]
    ).reshape(S.shape[0], H_NOISE, -1)  # (M, H, D) by jax.grad
    Psi = jnp.cumsum(psi, axis=1)
    t = jnp.arange(H_NOISE)
    w = jnp.where(t < horizon, gamma**t, 0.0)
    g = jnp.einsum("t,mt,mtd->md", w, p["reward"][S, A], Psi)
    e = jnp.einsum("t,mt,kt,mtd->mkd", w, sigma[S, A], xi, Psi)
    noisy = g[:, None, :] + e  # (M, K, D): every trajectory, every pattern

    def trace_cov(x, weights):
        mean = jnp.einsum("m,m...d->d", weights, x)
        return jnp.einsum("m,m...d->", weights, x**2) - mean @ mean

    added = trace_cov(noisy, prob / xi.shape[0]) - trace_cov(g, prob)
    sq = jnp.einsum("m,mtd->t", prob, Psi**2)
    sq_step = jnp.einsum("m,mtd->t", prob, psi**2)
    G = jnp.sum(w**2 * sq)
    mean_sigma = (
        jnp.einsum("m,mt->", prob, jnp.where(t < horizon, sigma[S, A], 0.0))
        / horizon
    )
    return {
        "added": added,
        "G": G,
        "G_short": jnp.sum(jnp.where(t < horizon - 1, w**2, 0.0) * sq),
        "G_step": jnp.sum(w**2 * sq_step),
        "sigma_max": sigma_max,
        "mean_sigma": mean_sigma,
        "gamma": gamma,
        "H": horizon,
        "at_max": jnp.einsum(
            "m,mt->", prob, jnp.where(t < horizon, sigma[S, A] >= sigma_max, 0)
        )
        / horizon,
    }


def _noise_values(p, horizon):
    q = _noise_parts(p, horizon)
    sm = q["sigma_max"]
    bound = jnp.stack(
        [
            sm**2 * q["G"],
            q["mean_sigma"] ** 2 * q["G"],
            sm**2 * q["G_short"],
            sm**2 * q["G_step"],
            sm * q["G"],
        ]
    )
    return q["added"] / bound


def noise_variance_search(
    key: Array,
    *,
    restarts: int | None = None,
    steps: int = 150,
    learning_rate: float = 0.05,
) -> Search:
    """Search for a system whose label noise adds more than ``sigma_max^2 G``
    to the REINFORCE variance (chapter 6).

    Class: a finite-horizon imagined MDP and a policy with differentiable
    ``log pi``; labels ``r_t + sigma(s_t, a_t) xi_t`` with
    ``0 <= sigma <= sigma_max`` and, given the trajectory, ``xi_t`` of mean
    zero, unit variance, uncorrelated. Family: every MDP with 2 states and 2
    actions (start, transition and softmax-policy tables, any rewards), any
    noise-scale table, ``sigma_max in (0.1, 10)``, ``gamma in (0.5, 1)``,
    ``H in 2..4``, and Rademacher ``xi``. Measured *exactly*, by enumerating
    every trajectory and every noise sign pattern:
    ``tr Cov(g_noisy) - tr Cov(g)`` of the single-rollout REINFORCE estimate
    (the scores by ``jax.grad``, :func:`imagination.reinforce.step_scores`),
    against ``sigma_max^2 G`` and four wrong bounds. An ``N``-rollout
    average divides both sides by ``N`` (independent rollouts), so the
    ratio is that of ``sigma_max^2 G / N``.

    Parameters
    ----------
    key:
        PRNG key of the restarts.
    restarts:
        Random restarts; default :func:`default_restarts`.
    steps, learning_rate:
        Adam steps and step size.
    """
    return _run(
        "label-noise variance bound",
        "tr Cov(g_noisy) - tr Cov(g) <= sigma_max^2 G, "
        "G = sum_{t<H} gamma^(2t) E||Psi_t||^2",
        "every MDP with 2 states, 2 actions, softmax policy, any rewards; "
        "noise scale table sigma(s, a) in [0, sigma_max], sigma_max in "
        "(0.1, 10); Rademacher xi; gamma in (0.5, 1); H in 2..4; exact "
        "moments by enumeration",
        _NOISE_NAMES,
        _noise_values,
        _init_noise,
        _noise_point,
        None,
        key,
        default_restarts() if restarts is None else restarts,
        steps,
        learning_rate,
    )


def _noise_point(p, horizon):
    q = _noise_parts(p, horizon)
    return {
        k: q[k]
        for k in (
            "H",
            "gamma",
            "sigma_max",
            "mean_sigma",
            "at_max",
            "added",
            "G",
        )
    }


# ----------------------------------------------------------------------------- figure
def plot_search(search: Search, ax=None):
    """Best-so-far ratio against ascent step, for the theorem and each wrong
    bound (log scale, the line ratio = 1 dashed), in the house style.

    Parameters
    ----------
    search:
        A :class:`Search`.
    ax:
        Axes to draw on; default a new :func:`imagination.plotting.figure`.

    Returns
    -------
    (Figure, Axes)
    """
    from . import plotting

    if ax is None:
        fig, ax = plotting.figure()
    else:
        fig = ax.figure
    steps = np.arange(1, len(search.history["theorem"]) + 1)
    for i, name in enumerate(search.bound_names):
        h = np.maximum(search.history[name], 1e-300)
        style = {"color": "black", "lw": 2.2} if i == 0 else {"lw": 1.4}
        ax.plot(steps, h, label=name, **style)
    ax.axhline(1.0, color="gray", ls="--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Adam step",
        ylabel="best measured / bound so far",
    )
    ax.legend(fontsize=8, loc="upper left")
    return fig, ax
