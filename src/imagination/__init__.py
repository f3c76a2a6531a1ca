"""imagination: the library behind the executable textbook *Training in Imagination*.

Modules (imported on first use, so ``import imagination`` stays light):

===============  ====================================================================================
rollout          the imagined-rollout engine: any dynamics, reward and policy functions
envs             true environments as pure JAX functions (linear system, pendulum)
data             transitions and reward labels bought from a true environment
policies         policies with the engine's signature
models           learned dynamics and reward models, training, Lipschitz estimates, sup errors
latent           a latent model of the pendulum seen through observations; temporal straightening
bounds           compounding-error and return-error bounds, derived with sympy
attribution      error attribution: imagined returns with true/learned dynamics and reward
allocation       the optimal split of a sample budget between dynamics and reward data
reinforce        REINFORCE estimators on imagined rollouts, with noisy reward labels
budget           the noise-budget tradeoff: noisy cheap labels versus clean expensive ones
training         REINFORCE at several noise/budget levels in one compiled sweep
pipeline         end to end: buy data, train models, train a policy in imagination, evaluate
device           backend detection and Monte-Carlo sizes that scale with it
timing           honest timing of jitted functions
compounding      chapter 2's experiments: closed-loop Jacobians, multi-step constants, Lyapunov norms
learning_curves  chapter 4's experiments: nested-subset training, per-size Lipschitz constants
claims           every numerical check of a chapter, recorded in the verification ledger
notebook         glue that works without myst-nb (Colab), tables rendered as tables
plotting         the house style for figures: column width, legible fonts, colour-blind safe
diagrams         block diagrams of models with parts: labelled boxes and arrows, in the house style
benchmark        the rollout speed benchmark (engine, NumPy, Python loop, roofline)
===============  ====================================================================================

Numbers (the leniency rule of the whole API): a numeric argument takes real numbers only,
Python ``int``/``float``, NumPy real scalars and zero-dimensional NumPy/JAX arrays of an integer
or floating dtype. ``bool`` (``True`` is not ``1.0``), strings (``"1e3"`` is not parsed),
``None`` and complex numbers raise ``ArgumentTypeError`` (a ``TypeError`` that is also a
``ValueError``) naming the parameter; out-of-range values raise ``ValueError`` naming it. A
Python ``int`` is a real number at any size: a count (``t``, a horizon, a sample size ``n``) is
used exactly, any other argument rounds to the nearest float (beyond the float range to ``inf``,
then checked like a float ``inf``). The command line (``python -m imagination``) parses strings itself before calling the API.
"""

from __future__ import annotations

import importlib

from . import _compat  # noqa: F401  (one random stream on every supported JAX)
from .rollout import Trajectory, make_rollout

__version__ = "0.3.0"

_MODULES = (
    "rollout",
    "envs",
    "data",
    "policies",
    "models",
    "latent",
    "bounds",
    "attribution",
    "allocation",
    "reinforce",
    "budget",
    "training",
    "pipeline",
    "device",
    "timing",
    "benchmark",
    "compounding",
    "learning_curves",
    "claims",
    "notebook",
    "plotting",
    "diagrams",
)

__all__ = [*_MODULES, "Trajectory", "make_rollout", "__version__"]


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'imagination' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
