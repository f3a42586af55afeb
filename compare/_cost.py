r"""What a run will cost, estimated before it starts: peak memory and time (issue 11).

Peak memory is the sum of the arrays a run holds at once, in float64 (8 bytes), plus :data:`BASE` (the
interpreter, JAX, the compiled kernels, matplotlib):

* simulation state: ``seeds × d`` weights (one neuron) or ``seeds × m × d`` (the two-layer network), times
  :data:`SIM_COPIES` (start, current, gradient, the jitted chunk's buffers, final) plus the problem's arrays
  (spectrum, :math:`w^*`, the starts; the spiked covariance as a dense ``d × d`` matrix);
* records: the 8 statistics of theory and simulation on the record grid, ``2 × 8 × seeds × n_rec``, and the grid's
  construction, ``3 × n_record`` (``geomspace``, its rounding and the concatenation);
* theory per-mode arrays (power law, solvers ``modes`` and ``blocks``): the solver keeps the whole state of every
  block at every record point, :data:`THEORY_FLOATS` floats per (block, seed, record) — ``B = d`` blocks for
  ``modes``. This is the term that made ``run powerlaw --d 1000000 --optimizer sgd`` pass 14 GB after its
  simulation: it grows as :math:`d\cdot n_{rec}\cdot\text{seeds}`, the simulation as :math:`d\cdot\text{seeds}`;
  ``--solver blocks`` or ``hierarchy`` does not need it.

Measured on the 2-core development machine (peak RSS over the import baseline, ``ru_maxrss``):
``run powerlaw --optimizer sgd --steps 100 --seeds 4`` grew by 470 MB at d = 10⁴ and 1250 MB at d = 4·10⁴
(94 record points): 26 kB per mode, 8.6 floats per (mode, seed, record), hence :data:`THEORY_FLOATS` = 9.

Time is the number of updates (``steps × seeds × d``, the two-layer network ``steps × seeds × m × d`` for each of its
two optimizers) times a per-update rate measured on that machine (:data:`RATES`, seconds per update, under the
load of other jobs); it is an order of magnitude, not a promise, and covers the simulation only.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from phasedyn.theory.grid import step_grid

BASE = 300 * 2**20
"""Bytes of a run before its arrays (import baseline 273 MB + compile, measured)."""
SIM_COPIES = 6
THEORY_FLOATS = 9
N_STATS = 8
#: seconds per update (one coordinate of one seed, one step), measured: isotropic GD d = 2000, 8 seeds,
#: 20 000 steps in 13 s; SGD in 33 s; spiked GD+SpecGD d = 64, 4 seeds, 2000 steps in 207 s (per m·d element)
RATES = {"gd": 2e-8, "gf": 2e-8, "sgd": 5e-8, "specgd": 3e-6, "matrix": 3e-6}
SHOW_AFTER_S = 10.0
"""Runs estimated to take longer than this print their estimate."""


@dataclasses.dataclass(frozen=True)
class Cost:
    """An estimate: ``parts`` (name → bytes), ``seconds``, and for each part the parameters that set it."""

    parts: dict[str, int]
    seconds: float
    knobs: dict[str, str]

    @property
    def memory(self) -> int:
        return BASE + sum(self.parts.values())

    def line(self) -> str:
        parts = ", ".join(f"{k} {size(v)}" for k, v in self.parts.items())
        return f"estimated peak memory {size(self.memory)} ({parts}); time ~{duration(self.seconds)}"


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PB"  # pragma: no cover


def duration(s: float) -> str:
    for unit, div in (("years", 3.15e7), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= div:
            return f"{s / div:.3g} {unit}"
    return f"{s:.2g} s"


def n_records(steps: int, n_record: int) -> int:
    """Entries of the record grid (at most ``steps + 1``); small grids are counted exactly."""
    if steps < 10**6 and n_record < 10**6:
        return len(step_grid(steps, n_record))
    return min(steps + 1, max(n_record, 3))


def _records(steps: int, n_record: int, seeds: int) -> dict[str, int]:
    return {"records": 8 * (2 * N_STATS * seeds * n_records(steps, n_record) + 3 * n_record)}


def isotropic(cfg: Any) -> Cost:
    """The cost of a resolved :class:`~.experiments.IsotropicConfig` (its (u, s) theory is ``O(seeds × n_rec)``)."""
    sim = 8 * (SIM_COPIES * cfg.seeds * cfg.d + 3 * cfg.d)
    return Cost({"simulation": sim, **_records(cfg.steps, cfg.n_record, cfg.seeds)},
                RATES[cfg.optimizer] * cfg.steps * cfg.seeds * cfg.d,
                {"simulation": "--d or --seeds", "records": "--n-record or --seeds"})


def powerlaw(cfg: Any) -> Cost:
    """The cost of a resolved :class:`~._powerlaw_config.PowerlawConfig` (module docstring for the theory term)."""
    cost = isotropic(cfg)
    parts = dict(cost.parts)
    if cfg.solver in ("modes", "blocks"):
        blocks = cfg.d if cfg.solver == "modes" else min(cfg.B, cfg.d)
        parts["theory per-mode arrays"] = 8 * THEORY_FLOATS * blocks * cfg.seeds * n_records(cfg.steps, cfg.n_record)
    knobs = {**cost.knobs, "theory per-mode arrays": "--d, --n-record or --seeds, or --solver blocks/hierarchy"
             if cfg.solver == "modes" else "--B, --n-record or --seeds"}
    return Cost(parts, cost.seconds, knobs)


def single_index(cfg: Any) -> Cost:
    """The cost of a resolved :class:`~._single_index.SingleIndexConfig`: the isotropic or per-mode (``modes``) terms
    at the run's rate (spherical SGD at SGD's); a sample-complexity scan sums its runs."""
    view = dataclasses.replace(cfg, optimizer=cfg.optimizer if cfg.optimizer in RATES else "sgd")
    one = isotropic(view) if cfg.spectrum == "isotropic" else powerlaw(_Modes(view))
    if cfg.experiment != "sample-complexity":
        return one
    return Cost(one.parts, one.seconds * 3 * cfg.n_d, one.knobs)


@dataclasses.dataclass(frozen=True)
class _Modes:
    """A single-index config seen as a power-law one with the exact per-mode solver."""

    cfg: Any
    solver: str = "modes"
    B: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cfg, name)


def spiked(cfg: Any) -> Cost:
    """The cost of a resolved :class:`~._spiked_config.SpikedConfig`: ``seeds × m × d`` weights per optimizer (two
    of them), the dense ``d × d`` covariance; the reduced (a, b, c) theory is ``O(seeds × n_rec)``."""
    sim = 8 * (SIM_COPIES * cfg.seeds * cfg.m * cfg.d + 3 * cfg.d * cfg.d)
    return Cost({"simulation": sim, **_records(cfg.steps, cfg.n_record, cfg.seeds)},
                RATES["matrix"] * 2 * cfg.steps * cfg.seeds * cfg.m * cfg.d,
                {"simulation": "--d, --m or --seeds", "records": "--n-record or --seeds"})


def available_memory() -> int:
    """Bytes this machine can give a new process now: ``MemAvailable`` of /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check(cost: Cost, force: bool = False, available: int | None = None) -> Cost:
    """Refuse (``ValueError``: the estimate and the parameter to change) a run whose estimated peak memory exceeds
    ``available`` (default :func:`available_memory`) unless ``force``; print the estimate of a run expected to take
    longer than :data:`SHOW_AFTER_S`."""
    if not isinstance(force, bool):
        raise ValueError(f"force must be True or False, got {force!r}")
    available = available_memory() if available is None else available
    if cost.memory > available and not force:
        worst = max(cost.parts, key=cost.parts.get)
        raise ValueError(f"{cost.line()}: more than the {size(available)} this machine has available; "
                         f"reduce {cost.knobs[worst]} ({worst} is the largest part), or pass --force (force=True)")
    if cost.seconds > SHOW_AFTER_S or cost.memory > available:
        print(f"phasedyn: {cost.line()}", flush=True)
    return cost
