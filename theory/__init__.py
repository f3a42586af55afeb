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
* the model: :class:`Model` (the per-sample loss every system is derived from), ``parse_loss``;
* (C) spiked: the namespace :mod:`.spiked` (``neuron_system``, ``two_layer_system``, fixed points, growth
  rates, threshold, ``track``, the phase-diagram boundary);
* watching a solve: :class:`Watch`, :class:`Condition`, :class:`StopWhen`, :class:`PeakRatio`, :class:`Diverged`
  (``iterate(watches=)``, ``solve(stop_when=)``).

One shape for every system (docs/theory.md §6): each of the namespaces :mod:`.isotropic`, :mod:`.powerlaw` and
:mod:`.spiked` has the verbs ``system``, ``params``, ``state``, ``solve`` and ``predictions``, with the same
arguments ``(problem, optimizer, ...)``; ``phasedyn.compare.overlay_*`` puts each on a simulation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import phasedyn  # noqa: F401  (the parent package switches float64 on)

# Names load lazily (PEP 562): `import phasedyn.theory.problem` (what simulate/ needs) does not import
# sympy or diffrax; `phasedyn.theory.solve` and friends load them on first use.
_EXPORTS: dict[str, str] = {
    "BatchSharding": "devices",
    "Devices": "devices",
    "resolve_devices": "devices",
    "BlockSystem": "blocks",
    "solve_modes": "expint",
    "hierarchy_system": "hierarchy",
    "Family": "derive",
    "LossCoefficients": "derive",
    "derive_loss": "derive",
    "expectation": "gaussian",
    "Expectation": "_expect",
    "gauss_expect": "_expect",
    "HermiteExpansion": "_links",
    "LINKS": "_links",
    "hermite_expansion": "_links",
    "single_index_problem": "_single_index",
    "SINGLE_INDEX_SPECTRA": "_single_index",
    "SPIKES": "_single_index",
    "heavy_mode_note": "_single_index",
    "parse_link": "_links",
    "kink_lines": "_derive_numeric",
    "gauss_quadrature": "_quadrature",
    "effective_dimensions": "_single_index",
    "model_report": "_single_index",
    "monomial_moment": "gaussian",
    "EscapeLaw": "_escape",
    "escape_law": "_escape",
    "increment_covariance": "_escape",
    "noise_variance": "_escape",
    "lna_band": "_lna",
    "lna_system": "_lna",
    "escape_rate": "isotropic",
    "escape_time": "isotropic",
    "escape_time_d": "isotropic",
    "fixed_points": "isotropic",
    "isotropic_params": "isotropic",
    "isotropic_system": "isotropic",
    "saddle": "isotropic",
    "saddle_level": "isotropic",
    "stability": "isotropic",
    "Model": "model",
    "parse_loss": "model",
    "Problem": "problem",
    "custom_problem": "problem",
    "harmonic": "problem",
    "isotropic_problem": "problem",
    "isotropic_spectrum": "problem",
    "make_w0": "problem",
    "make_w_star": "problem",
    "powerlaw_problem": "problem",
    "powerlaw_spectrum": "problem",
    "spiked_problem": "problem",
    "spiked_spectrum": "problem",
    "SOLVERS": "_solve",
    "Solution": "_solve",
    "SolveError": "_solve",
    "iterate": "_solve",
    "log_grid": "_solve",
    "solve": "_solve",
    "step_grid": "grid",
    "trace_count": "_solve",
    "System": "system",
    "Condition": "_watch",
    "Diverged": "_watch",
    "PeakRatio": "_watch",
    "StopWhen": "_watch",
    "Watch": "_watch",
}
_SUBMODULES = ("blocks", "derive", "devices", "expint", "gaussian", "grid", "hierarchy", "isotropic", "model", "powerlaw",
               "problem", "spiked", "symbols", "system", "validate")

__all__ = sorted([*_EXPORTS, "isotropic", "powerlaw", "spiked", "symbols"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_SUBMODULES) | set(globals()))


if TYPE_CHECKING:  # pragma: no cover
    from .devices import BatchSharding, Devices, resolve_devices
    from .blocks import BlockSystem
    from .expint import solve_modes
    from .hierarchy import hierarchy_system
    from .derive import Family, LossCoefficients, derive_loss
    from .gaussian import expectation, monomial_moment
    from .isotropic import escape_rate, escape_time, escape_time_d, fixed_points, isotropic_params, isotropic_system, saddle, saddle_level, stability
    from .model import Model, parse_loss
    from .problem import Problem, custom_problem, harmonic, isotropic_problem, isotropic_spectrum, make_w0, make_w_star, powerlaw_problem, powerlaw_spectrum, spiked_problem, spiked_spectrum
    from ._solve import SOLVERS, Solution, SolveError, iterate, log_grid, solve, trace_count
    from .grid import step_grid
    from .system import System
    from ._watch import Condition, Diverged, PeakRatio, StopWhen, Watch
    from ._escape import EscapeLaw, escape_law, increment_covariance, noise_variance
    from ._lna import lna_band, lna_system
    from ._expect import Expectation, gauss_expect
    from ._links import LINKS, HermiteExpansion, hermite_expansion
    from ._derive_numeric import kink_lines
    from ._links import parse_link
    from ._quadrature import gauss_quadrature
    from ._single_index import (SINGLE_INDEX_SPECTRA, SPIKES, effective_dimensions, heavy_mode_note, model_report,
                                single_index_problem)
    from . import isotropic, powerlaw, spiked, symbols
