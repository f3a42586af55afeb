"""phasedyn.compare: theory against simulation — overlays, phases, figures, the command line."""

from .experiments import DEFAULTS, IsotropicConfig, run_isotropic
from .output import summary, write_outputs
from .overlay import STATS, Overlay, overlay_isotropic
from .phases import detect_phases, first_crossing, settles_above
from .plots import plot_overview, plot_us
from ._powerlaw_config import PowerlawConfig, run_powerlaw
from .powerlaw import overlay_powerlaw
from .spiked import DEFAULT_SPIKED, SpikedConfig, overlay_spiked, run_spiked
from .sweep import Sweep, make_sweep, read_store, run_sweep

__all__ = [
    "DEFAULTS",
    "DEFAULT_SPIKED",
    "STATS",
    "IsotropicConfig",
    "Overlay",
    "PowerlawConfig",
    "SpikedConfig",
    "Sweep",
    "detect_phases",
    "first_crossing",
    "make_sweep",
    "overlay_isotropic",
    "overlay_powerlaw",
    "overlay_spiked",
    "plot_overview",
    "plot_us",
    "read_store",
    "run_isotropic",
    "run_powerlaw",
    "run_spiked",
    "run_sweep",
    "settles_above",
    "summary",
    "write_outputs",
]
