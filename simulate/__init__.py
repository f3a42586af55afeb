"""phasedyn.simulate: finite-d GD / online SGD / SpecGD runs in JAX.

* one neuron in the eigenbasis (O(d) per step): ``run`` → :class:`Trajectory` (GD, online SGD);
* the two-layer quadratic network as a full matrix (:mod:`.matrix`): ``run_matrix`` →
  :class:`MatrixTrajectory` (GD, SGD, SpecGD with ``polar`` by SVD or ``newton_schulz``).

Both run on one driver (chunked by wall time, jitted with ``eqx.filter_jit``, seeds sharded over devices,
divergence reported with the seed and step); ``trace_count`` says how often its kernel was compiled. Ctrl-C
(SIGINT) stops a run within about a second and returns what it reached (``interrupted``, ``step_reached``);
``checkpoint=DIR`` / ``resume=DIR`` checkpoint a run and continue it bit for bit (``read_checkpoint(DIR)``
reads a checkpoint's header; layout in :mod:`._checkpoint`).
"""

import phasedyn  # noqa: F401  (the parent package switches float64 on)

from . import matrix
from ._checkpoint import read_checkpoint
from ._driver import trace_count
from ._inputs import PRNG_IMPLS, check_prng, log_step_grid
from ._polar import PolarError, newton_schulz, polar
from ._spherical import SPHERES, normalise, spherical_sgd_step
from .errors import DivergenceError
from .losses import population_loss, sample_loss, statistics
from .matrix import MatrixTrajectory, run_matrix
from .optimizers import gd_step, sgd_step
from .run import Trajectory, run

__all__ = [
    "DivergenceError",
    "MatrixTrajectory",
    "PRNG_IMPLS",
    "PolarError",
    "SPHERES",
    "Trajectory",
    "check_prng",
    "gd_step",
    "log_step_grid",
    "matrix",
    "newton_schulz",
    "normalise",
    "polar",
    "population_loss",
    "read_checkpoint",
    "run",
    "run_matrix",
    "sample_loss",
    "sgd_step",
    "spherical_sgd_step",
    "statistics",
    "trace_count",
]
