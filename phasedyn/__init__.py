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

# In a source checkout run from its root (``python -m pytest`` puts the root first on sys.path), this
# folder shadows the installed package and holds none of the subpackages: resolve them from their
# source folders beside it, as pyproject's package-dir maps them. An installed phasedyn has them
# inside this folder and is left alone.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "theory")) and all(
    _os.path.isfile(_os.path.join(_root, sub, "__init__.py")) for sub in ("theory", "simulate", "compare")
):
    __path__.append(_root)  # type: ignore[name-defined]  # noqa: F821

if _os.environ.get("PHASEDYN_X64", "1") != "0":
    import jax as _jax

    _jax.config.update("jax_enable_x64", True)

__all__ = ["__version__"]
