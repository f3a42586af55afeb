"""phasedyn.simulate: finite-d GD / online SGD / SpecGD runs in JAX."""

from phasedyn.theory import _config  # noqa: F401  (imports phasedyn.theory first: float64 on)

from .errors import DivergenceError
from .losses import population_loss, sample_loss, statistics
from .optimizers import gd_step, sgd_step
from .run import Trajectory, log_step_grid, run

__all__ = [
    "DivergenceError",
    "Trajectory",
    "gd_step",
    "log_step_grid",
    "population_loss",
    "run",
    "sample_loss",
    "sgd_step",
    "statistics",
]
