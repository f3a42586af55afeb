"""phasedyn.compare: theory against simulation — overlays, phases, figures, the command line."""

from .experiments import DEFAULTS, IsotropicConfig, run_isotropic
from .output import summary, write_outputs
from .overlay import STATS, Overlay, overlay_isotropic
from .phases import detect_phases, first_crossing, settles_above
from .plots import plot_overview, plot_us

__all__ = [
    "DEFAULTS",
    "STATS",
    "IsotropicConfig",
    "Overlay",
    "detect_phases",
    "first_crossing",
    "overlay_isotropic",
    "plot_overview",
    "plot_us",
    "run_isotropic",
    "settles_above",
    "summary",
    "write_outputs",
]
