"""phasedyn.theory: the model, the symbolic engine, the summary-statistic systems and their solver."""

from . import _config  # noqa: F401  (float64 on by default)
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

__all__ = [
    "Problem",
    "custom_problem",
    "harmonic",
    "isotropic_problem",
    "isotropic_spectrum",
    "make_w0",
    "make_w_star",
    "powerlaw_problem",
    "powerlaw_spectrum",
    "spiked_problem",
    "spiked_spectrum",
]
