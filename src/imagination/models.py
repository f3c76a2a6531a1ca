"""Learned dynamics and reward models, their training, and their Lipschitz constants.

Models share the engine's step signature, ``model(params, s, a)``, so a learned model drops into
:func:`imagination.rollout.rollout` wherever the true world would. Parameters are plain pytrees
(lists of ``(W, b)`` layers), so training can be ``vmap``-ped over seeds and over data sets.

Norm convention (shared with :mod:`imagination.bounds`): a state-action pair is measured by
``||(s, a)|| = ||s|| + ||a||`` with Euclidean norms on each part. For that norm the local
Lipschitz constant of ``f`` at ``(s, a)`` is ``max(||df/ds||_2, ||df/da||_2)``, and any constant
for the Euclidean norm of the concatenation ``[s; a]`` is also valid, since
``||[s; a]||_2 <= ||s|| + ||a||``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "mlp_init",
    "mlp_apply",
    "dynamics_model",
    "reward_model",
    "linear_model",
    "linear_reward",
    "affine_dynamics",
    "affine_reward",
    "fit_linear_model",
    "spectral_normalize",
    "power_iteration",
    "fit",
    "train_dynamics",
    "train_reward",
    "lipschitz_upper",
    "local_lipschitz",
    "lipschitz_lower",
    "sup_error",
]

Array = jax.Array
Layers = list  # list of (W, b) with W of shape (out, in)


# ----------------------------------------------------------------------------- MLPs
def mlp_init(key: Array, sizes: Sequence[int], dtype=jnp.float32) -> Layers:
    """Initialise an MLP with layer sizes ``sizes = (in, hidden..., out)``.

    Weights are LeCun-normal (variance ``1 / fan_in``), biases zero. The last layer is scaled by
    0.1 so a fresh residual dynamics model starts close to the identity map.
    """
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(
            f"sizes must list at least two positive layer widths, got {sizes!r}"
        )
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        W = jax.random.normal(k, (n_out, n_in), dtype) / jnp.sqrt(
            jnp.asarray(n_in, dtype)
        )
        if i == len(sizes) - 2:
            W = 0.1 * W
        layers.append((W, jnp.zeros((n_out,), dtype)))
    return layers


def mlp_apply(
    layers: Layers, x: Array, activation: Callable[[Array], Array] = jnp.tanh
) -> Array:
    """Apply the MLP to one input vector ``x`` (``vmap`` for batches).

    ``tanh`` is 1-Lipschitz, so the product of the layers' spectral norms bounds the network's
    Lipschitz constant (:func:`lipschitz_upper`).
    """
    for W, b in layers[:-1]:
        x = activation(W @ x + b)
    W, b = layers[-1]
    return W @ x + b


def dynamics_model(layers: Layers, s: Array, a: Array) -> Array:
    """Residual MLP dynamics ``f_hat(s, a) = s + mlp([s; a])`` (engine signature).

    Its Lipschitz constant is at most ``1 + L_mlp`` in the norm ``||s|| + ||a||``.
    """
    return s + mlp_apply(layers, jnp.concatenate([s, a]))


def reward_model(layers: Layers, s: Array, a: Array) -> Array:
    """MLP reward ``r_hat(s, a) = mlp([s; a])[0]`` (engine signature)."""
    return mlp_apply(layers, jnp.concatenate([s, a]))[0]


# ----------------------------------------------------------------------------- linear models
def linear_model(W: Array, s: Array, a: Array) -> Array:
    """Affine dynamics ``W @ [s; a; 1]`` (engine signature): a vector, also for a 1-D state."""
    return W @ jnp.concatenate([s, a, jnp.ones((1,), s.dtype)])


def linear_reward(W: Array, s: Array, a: Array) -> Array:
    """Affine reward ``(W @ [s; a; 1])[0]`` for a one-row ``W`` (engine signature): a scalar."""
    return linear_model(W, s, a)[0]


def affine_dynamics(params: tuple[Array, Array], s: Array, a: Array) -> Array:
    """One-dimensional ``f(s, a) = p (s + a) + c``; ``params = (p, c)``, ``s, a`` of shape
    ``(1,)``. The aligned system of chapters 2 and 3 (true: ``c = 0``; learned: ``c = eps_d``,
    :func:`imagination.attribution.tight_system`)."""
    p, c = params
    return p * (s + a) + c


def affine_reward(params: tuple[Array, Array], s: Array, a: Array) -> Array:
    """One-dimensional ``r(s, a) = l (s + a) + c`` (a scalar); ``params = (l, c)``."""
    l, c = params  # noqa: E741
    return l * (s[0] + a[0]) + c


def fit_linear_model(
    states: Array, actions: Array, targets: Array, ridge: float = 0.0
) -> Array:
    """Least-squares fit of :func:`linear_model` / :func:`linear_reward` to ``targets`` (next states or rewards).

    Parameters
    ----------
    states, actions:
        ``(n, ds)`` and ``(n, da)``.
    targets:
        ``(n, k)`` or ``(n,)``.
    ridge:
        Optional ridge penalty (not applied to the intercept).

    Returns
    -------
    W:
        ``(k, ds + da + 1)``.
    """
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge!r}")
    X = jnp.concatenate(
        [states, actions, jnp.ones((states.shape[0], 1), states.dtype)], axis=1
    )
    Y = targets.reshape(targets.shape[0], -1)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            "states and targets must have the same number of rows"
        )
    penalty = ridge * jnp.eye(X.shape[1], dtype=X.dtype).at[-1, -1].set(0.0)
    W = jnp.linalg.solve(X.T @ X + penalty, X.T @ Y)
    return W.T


# ----------------------------------------------------------------------------- spectral norms
def power_iteration(W: Array, iters: int = 50) -> Array:
    """Largest singular value of ``W`` by power iteration on ``W^T W``.

    Parameters
    ----------
    W:
        A matrix of shape ``(m, n)``.
    iters:
        Number of multiplications by ``W^T W``; the error in the estimate shrinks like
        ``(sigma_2 / sigma_1) ** (4 * iters)``.

    Returns
    -------
    jax.Array
        The estimate ``||W v||`` for the final unit vector ``v``: never above the true spectral
        norm, and equal to it once converged. The start vector is a fixed pseudo-random one (not
        all ones, which is orthogonal to the top singular vector of, e.g., ``[[1, -1]]``), so the
        result is deterministic.
    """
    W = jnp.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a matrix, got shape {W.shape}")
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    v = jax.random.normal(jax.random.key(20260508), (W.shape[1],), W.dtype)
    v = v / jnp.linalg.norm(v)

    def body(v, _):
        v = W.T @ (W @ v)
        return v / (jnp.linalg.norm(v) + 1e-30), None

    v, _ = jax.lax.scan(body, v, None, length=int(iters))
    return jnp.linalg.norm(W @ v)


def spectral_normalize(layers: Layers, cap: float | Array = 1.0) -> Layers:
    """Spectral normalisation of every layer (Miyato et al. 2018), as a cap.

    Each weight matrix is rescaled to ``W * min(1, cap / sigma(W))`` so its spectral norm is at
    most ``cap``; the network's Lipschitz constant is then at most ``cap ** n_layers``. Applied
    inside the loss, training sees only normalised weights; gradients flow through ``sigma``.

    Parameters
    ----------
    layers:
        List of ``(W, b)``.
    cap:
        Positive cap on every layer's spectral norm. ``math.inf`` leaves the layers unchanged,
        and a traced array is accepted, so the cap can be a ``vmap``-ped variable (for example
        ``inf`` for a plain model beside a normalised one in one batch).
    """
    if isinstance(cap, (int, float)) and not cap > 0:
        raise ValueError(f"cap must be positive, got {cap!r}")
    out = []
    for W, b in layers:
        sigma = jnp.linalg.norm(W, ord=2)
        # min(1, cap / sigma) written so that cap = inf has a finite gradient (no 0 * inf)
        out.append((W / jnp.maximum(1.0, sigma / cap), b))
    return out


def lipschitz_upper(
    layers: Layers, iters: int | None = None, split: int | None = None
) -> Array:
    """Upper bound on the MLP's Lipschitz constant: the product of the layers' spectral norms.

    Valid for 1-Lipschitz activations (``tanh``): by the chain rule the Jacobian is a product
    ``W_k D_{k-1} W_{k-1} ... D_1 W_1`` with diagonal ``D_i`` of entries in ``[0, 1]``, so its
    spectral norm is at most ``prod ||W_i||_2``. For :func:`dynamics_model` add 1 (residual).

    Parameters
    ----------
    layers:
        List of ``(W, b)``.
    iters:
        ``None`` (default): exact spectral norms (``jnp.linalg.norm(W, 2)``, an SVD), so the
        result is a certified bound up to float rounding. An integer: that many
        power-iteration steps per layer (:func:`power_iteration`), for matrices too large for
        an SVD; power iteration approaches the norm from below, so the result is then an
        estimate, not a certificate.
    split:
        If the input is ``[s; a]`` with ``s`` of size ``split``, the first layer's factor is
        ``max(||W_s||, ||W_a||)`` for ``W = [W_s  W_a]``: the exact constant of a linear map in
        the norm ``||s|| + ||a||`` (the book's convention), never above ``||W||``. ``None`` uses
        ``||W||``, a constant for the Euclidean norm of ``[s; a]`` (valid, possibly looser).
    """
    if len(layers) == 0:
        raise ValueError("layers must contain at least one (W, b) layer")
    if iters is not None and (int(iters) != iters or iters < 1):
        raise ValueError(
            f"iters must be None or a positive integer, got {iters!r}"
        )

    def norm(W):
        return (
            jnp.linalg.norm(W, 2)
            if iters is None
            else power_iteration(W, iters)
        )

    norms = [norm(W) for W, _ in layers]
    if split is not None:
        W0 = layers[0][0]
        if int(split) != split or not 0 < split < W0.shape[1]:
            raise ValueError(
                f"split must lie strictly between 0 and {W0.shape[1]}, got {split!r}"
            )
        norms[0] = jnp.maximum(norm(W0[:, :split]), norm(W0[:, split:]))
    return jnp.prod(jnp.stack(norms))


def local_lipschitz(model: Callable, params: Any, s: Array, a: Array) -> Array:
    """Local Lipschitz constant ``max(||d model/ds||_2, ||d model/da||_2)`` at one ``(s, a)``."""
    Js, Ja = jax.jacfwd(model, argnums=(1, 2))(params, s, a)
    Js = jnp.atleast_2d(Js)
    Ja = jnp.atleast_2d(Ja)
    return jnp.maximum(jnp.linalg.norm(Js, ord=2), jnp.linalg.norm(Ja, ord=2))


def lipschitz_lower(
    model: Callable, params: Any, states: Array, actions: Array
) -> Array:
    """Lower estimate of the Lipschitz constant: the largest local constant seen on the data.

    Any valid Lipschitz constant is at least this large, so it brackets the truth from below
    while :func:`lipschitz_upper` brackets it from above.
    """
    if states.shape[0] != actions.shape[0] or states.shape[0] == 0:
        raise ValueError(
            "states and actions must have the same, positive number of rows"
        )
    local = jax.vmap(local_lipschitz, in_axes=(None, None, 0, 0))(
        model, params, states, actions
    )
    return jnp.max(local)


def sup_error(
    model: Callable,
    params: Any,
    truth: Callable,
    truth_params: Any,
    states: Array,
    actions: Array,
) -> Array:
    """Estimate of ``sup ||model(s, a) - truth(s, a)||`` as the maximum over a dense sample."""
    if states.shape[0] != actions.shape[0] or states.shape[0] == 0:
        raise ValueError(
            "states and actions must have the same, positive number of rows"
        )
    pred = jax.vmap(model, in_axes=(None, 0, 0))(params, states, actions)
    true = jax.vmap(truth, in_axes=(None, 0, 0))(truth_params, states, actions)
    err = (pred - true).reshape(states.shape[0], -1)
    return jnp.max(jnp.linalg.norm(err, axis=1))


# ----------------------------------------------------------------------------- training
def fit(
    loss_fn: Callable[[Any, Any], Array],
    params: Any,
    data: Any,
    key: Array,
    *,
    steps: int = 2000,
    learning_rate: float = 3e-3,
    batch_size: int | None = 256,
    n_valid: int | Array | None = None,
) -> tuple[Any, Array]:
    """Minimise ``loss_fn(params, batch)`` with Adam (optax) in one :func:`jax.lax.scan`.

    Parameters
    ----------
    loss_fn:
        ``loss_fn(params, batch) -> scalar`` where ``batch`` has the structure of ``data``.
    params:
        Initial parameters (any pytree).
    data:
        A pytree of arrays sharing a leading axis of size ``n``.
    key:
        PRNG key for minibatch sampling.
    steps, learning_rate:
        Number of Adam steps and step size (cosine-decayed to 1% of it).
    batch_size:
        Minibatch size drawn with replacement; ``None`` uses the full data set every step.
    n_valid:
        Use only the first ``n_valid`` rows of ``data`` (minibatches are drawn from them). It may
        be a traced integer, so one padded data set trains models on many data-set sizes in a
        single ``vmap`` (a learning curve in one call). Requires ``batch_size``.

    Returns
    -------
    (params, losses)
        Trained parameters and the loss at every step. Pure and jittable: ``vmap`` it over keys
        and initial parameters to train many seeds at once.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    if learning_rate <= 0:
        raise ValueError(
            f"learning_rate must be positive, got {learning_rate!r}"
        )
    if batch_size is not None and (
        int(batch_size) != batch_size or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive integer or None, got {batch_size!r}"
        )
    if n_valid is not None and batch_size is None:
        raise ValueError(
            "n_valid requires a batch_size (minibatches drawn from the valid rows)"
        )
    if isinstance(n_valid, (int, float)) and n_valid < 1:
        raise ValueError(
            f"n_valid must be a positive integer, got {n_valid!r}"
        )
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    if n_valid is not None:
        n = jnp.minimum(jnp.asarray(n_valid, jnp.int32), n)
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01)
    opt = optax.adam(schedule)

    def step(carry, key_t):
        p, state = carry
        if batch_size is None:
            batch = data
        else:
            idx = jax.random.randint(key_t, (batch_size,), 0, n)
            batch = jax.tree_util.tree_map(lambda x: x[idx], data)
        loss, grads = jax.value_and_grad(loss_fn)(p, batch)
        updates, state = opt.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, _), losses = jax.lax.scan(
        step, (params, opt.init(params)), jax.random.split(key, steps)
    )
    return params, losses


def _model_loss(model, cap):
    def loss(layers, batch):
        s, a, y = batch
        used = layers if cap is None else spectral_normalize(layers, cap)
        pred = jax.vmap(model, in_axes=(None, 0, 0))(used, s, a)
        return jnp.mean(
            jnp.sum((pred - y).reshape(s.shape[0], -1) ** 2, axis=1)
        )

    return loss


def _train_model(
    model,
    out_dim,
    key,
    states,
    actions,
    targets,
    hidden,
    steps,
    learning_rate,
    batch_size,
    spectral_cap,
    n_valid,
):
    if len(states) != len(actions) or len(states) != len(targets):
        raise ValueError(
            "states, actions and targets must have the same number of rows"
        )
    k_init, k_fit = jax.random.split(key)
    sizes = (states.shape[1] + actions.shape[1], *hidden, out_dim)
    layers = mlp_init(k_init, sizes, states.dtype)
    layers, losses = fit(
        _model_loss(model, spectral_cap),
        layers,
        (states, actions, targets),
        k_fit,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        n_valid=n_valid,
    )
    if spectral_cap is not None:
        layers = spectral_normalize(layers, spectral_cap)
    return layers, losses


def train_dynamics(
    key: Array,
    states: Array,
    actions: Array,
    next_states: Array,
    *,
    hidden: Sequence[int] = (64, 64),
    steps: int = 2000,
    learning_rate: float = 3e-3,
    batch_size: int | None = 256,
    spectral_cap: float | None = None,
    n_valid: int | Array | None = None,
) -> tuple[Layers, Array]:
    """Train a residual :func:`dynamics_model` on transitions ``(s, a, s')`` by mean squared error.

    Parameters
    ----------
    key:
        PRNG key (initialisation and minibatches); ``vmap`` over it for several seeds.
    states, actions, next_states:
        ``(n, ds)``, ``(n, da)``, ``(n, ds)``.
    hidden:
        Hidden-layer widths.
    steps, learning_rate, batch_size:
        Passed to :func:`fit`.
    spectral_cap:
        If given, every layer is spectrally normalised (:func:`spectral_normalize`) during and
        after training; it may be a traced array (``inf`` means no cap).
    n_valid:
        Train on the first ``n_valid`` rows only (traceable: ``vmap`` over data-set sizes).

    Returns
    -------
    (layers, losses)
        The trained MLP of :func:`dynamics_model` and the loss at every step.
    """
    return _train_model(
        dynamics_model,
        states.shape[1],
        key,
        states,
        actions,
        next_states,
        hidden,
        steps,
        learning_rate,
        batch_size,
        spectral_cap,
        n_valid,
    )


def train_reward(
    key: Array,
    states: Array,
    actions: Array,
    rewards: Array,
    *,
    hidden: Sequence[int] = (64, 64),
    steps: int = 2000,
    learning_rate: float = 3e-3,
    batch_size: int | None = 256,
    spectral_cap: float | None = None,
    n_valid: int | Array | None = None,
) -> tuple[Layers, Array]:
    """Train a :func:`reward_model` on labels ``(s, a, r)`` by mean squared error.

    Same options as :func:`train_dynamics`; ``rewards`` has shape ``(n,)``. Returns the
    trained MLP of :func:`reward_model` and the loss at every step.
    """
    return _train_model(
        reward_model,
        1,
        key,
        states,
        actions,
        rewards.reshape(-1),
        hidden,
        steps,
        learning_rate,
        batch_size,
        spectral_cap,
        n_valid,
    )
