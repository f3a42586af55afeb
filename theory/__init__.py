"""phasedyn.theory: the model, the symbolic engine, the summary-statistic systems and their solver.

Public names (see each docstring for the equation it implements):

* problem set-up: :class:`Problem`, ``isotropic_problem``, ``powerlaw_problem``, ``spiked_problem``,
  ``custom_problem``, spectra and ``make_w_star`` / ``make_w0``;
* symbolic engine: ``expectation`` / ``monomial_moment`` (Isserlis), ``derive_loss``,
  :class:`LossCoefficients`, :class:`Family` and the statistic builders in :mod:`.derive`;
* systems: :class:`System`, ``isotropic_system`` (+ ``isotropic_params``, fixed points, escape rate/time);
* solving: ``solve`` (diffrax), ``iterate`` (exact maps), :class:`Solution`, :class:`SolveError`,
  ``log_grid``, ``step_grid``, ``trace_count``;
* (B) power law: the namespace :mod:`.powerlaw` (``exact``, ``blocks``, ``hierarchy``, ``drive_modes`` and
  [P1]'s predictions), :class:`BlockSystem`, ``hierarchy_system``, and ``solve_modes`` (the exact per-mode
  gradient flow by a stiffness-free exponential integrator);
* devices: ``solve``, ``iterate``, ``solve_modes`` (and :func:`phasedyn.simulate.run`) take ``devices=``
  and shard their batch over a :class:`jax.sharding.Mesh` (:class:`BatchSharding`, ``resolve_devices``);
* (C) spiked: the namespace :mod:`.spiked` (``neuron_system``, ``two_layer_system``, fixed points, growth
  rates, threshold, ``track``, the phase-diagram boundary).
"""

import phasedyn  # noqa: F401  (the parent package switches float64 on)
from . import powerlaw, spiked, symbols
from .devices import BatchSharding, Devices, resolve_devices
from .blocks import BlockSystem
from .expint import solve_modes
from .hierarchy import hierarchy_system
from .derive import Family, LossCoefficients, derive_loss
from .gaussian import expectation, monomial_moment
from .isotropic import (
    escape_rate,
    escape_time,
    escape_time_d,
    fixed_points,
    isotropic_params,
    isotropic_system,
    stability,
)
from .problem import (
    Problem,
    custom_problem,
    harmonic,
    isotropic_problem,
    isotropic_spectrum,
    make_w0,
    make_w_star,
    powerlaw_problem,
    powerlaw_spectrum,
    spiked_problem,
    spiked_spectrum,
)
from .solve import SOLVERS, Solution, SolveError, iterate, log_grid, solve, step_grid, trace_count
from .system import System

__all__ = [
    "SOLVERS",
    "BatchSharding",
    "BlockSystem",
    "Devices",
    "Family",
    "LossCoefficients",
    "Problem",
    "Solution",
    "SolveError",
    "System",
    "custom_problem",
    "derive_loss",
    "escape_rate",
    "escape_time",
    "escape_time_d",
    "expectation",
    "fixed_points",
    "harmonic",
    "hierarchy_system",
    "isotropic_params",
    "isotropic_problem",
    "isotropic_spectrum",
    "isotropic_system",
    "iterate",
    "log_grid",
    "make_w0",
    "make_w_star",
    "monomial_moment",
    "powerlaw",
    "powerlaw_problem",
    "powerlaw_spectrum",
    "resolve_devices",
    "solve",
    "solve_modes",
    "spiked",
    "spiked_problem",
    "spiked_spectrum",
    "stability",
    "step_grid",
    "symbols",
    "trace_count",
]
