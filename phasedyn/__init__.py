"""phasedyn: learning dynamics of phase retrieval, from symbolic derivation to theory-vs-simulation figures.

Subpackages: :mod:`phasedyn.theory` (the model, derivation, systems, solvers, predictions),
:mod:`phasedyn.simulate` (finite-d optimisers on the same model) and :mod:`phasedyn.compare`
(overlays, phases, figures, the command line). Mathematics: ``docs/theory.md``.

Importing phasedyn switches JAX to float64 (``jax_enable_x64``); set ``PHASEDYN_X64=0`` before the
first import to keep JAX's float32 default.
"""

from __future__ import annotations

import os as _os

from ._version import __version__

if _os.environ.get("PHASEDYN_X64", "1") != "0":
    import jax as _jax

    _jax.config.update("jax_enable_x64", True)

__all__ = ["__version__"]
