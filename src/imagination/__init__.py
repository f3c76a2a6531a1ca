"""imagination: the library behind the executable textbook *Training in Imagination*.

Modules
-------
rollout   the imagined-rollout engine (any dynamics, reward and policy functions)
envs      true environments as pure JAX functions (linear system, pendulum)
data      transitions and reward labels bought from a true environment
policies  policies with the engine's signature
models    learned dynamics and reward models, training, Lipschitz estimates
bounds    compounding-error and return-error bounds (derived with sympy)
reinforce REINFORCE estimators on imagined rollouts, with noisy reward labels
device    backend detection and Monte-Carlo sizes that scale with it
timing    honest timing of jitted functions
"""

from . import bounds, data, device, envs, models, policies, reinforce, rollout, timing
from .rollout import Trajectory, make_rollout

__version__ = "0.1.0"

__all__ = ["bounds", "data", "reinforce", "device", "envs", "models", "policies", "rollout", "timing", "Trajectory",
           "make_rollout", "__version__"]
