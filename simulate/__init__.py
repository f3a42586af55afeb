"""phasedyn.simulate: finite-d GD / online SGD / SpecGD runs in JAX.

* one neuron in the eigenbasis (O(d) per step): ``run`` → :class:`Trajectory` (GD, online SGD);
* the two-layer quadratic network as a full matrix (:mod:`.matrix`): ``run_matrix`` →
  :class:`MatrixTrajectory` (GD, SGD, SpecGD with ``polar`` by SVD or ``newton_schulz``).
"""

import phasedyn  # noqa: F401  (the parent package switches float64 on)

from . import matrix
from .errors import DivergenceError
from .matrix import MatrixTrajectory, PolarError, newton_schulz, polar, run_matrix
from .losses import population_loss, sample_loss, statistics
from .optimizers import gd_step, sgd_step
from .run import PRNG_IMPLS, Trajectory, check_prng, log_step_grid, run

__all__ = [
    "DivergenceError",
    "MatrixTrajectory",
    "PRNG_IMPLS",
    "PolarError",
    "Trajectory",
    "check_prng",
    "gd_step",
    "log_step_grid",
    "matrix",
    "newton_schulz",
    "polar",
    "population_loss",
    "run",
    "run_matrix",
    "sample_loss",
    "sgd_step",
    "statistics",
]
