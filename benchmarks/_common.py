"""Helpers shared by the benchmark scripts in this folder: the machine description, timing, table cells
and the sections appended to ``RESULTS.md``.

The scripts import it as ``_common`` after putting this folder on ``sys.path``, so that they run from any
working directory. Nothing here imports numpy or jax at module level: some scripts set environment
variables (``OPENBLAS_NUM_THREADS``) that must be in place before numpy is first imported.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
_RESULTS_PREAMBLE = "# Benchmark results\n\nAppended by the scripts in this folder; newest at the bottom.\n\n"


# ----------------------------------------------------------------------------- machine description
def load_average() -> str:
    """``"load average 1.0 0.8 0.5"`` (1, 5, 15 min), or ``""`` where the platform has none."""
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return ""


def cpu_model() -> str:
    """CPU model from /proc/cpuinfo (``platform.processor()`` is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu model n/a"


def ram() -> str:
    """Physical memory as ``"125 GiB RAM"``, or ``""`` where ``sysconf`` cannot tell."""
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        return ""


def machine_lines(*, with_cpu_model: bool = False, with_ram: bool = False, with_x64: bool = True,
                  with_openblas: bool = False) -> list[str]:
    """Two header lines: date, machine, CPUs (and RAM), load; python, jax, numpy versions and the device.

    ``with_cpu_model`` adds the /proc/cpuinfo model after ``platform.processor()``; ``with_ram`` the
    physical memory; ``with_x64`` jax's ``jax_enable_x64``; ``with_openblas`` ``OPENBLAS_NUM_THREADS``.
    Imports jax and numpy (call it after any environment set-up they depend on).
    """
    import jax
    import numpy as np

    dev = jax.devices()[0]
    if with_cpu_model:
        proc = f"{platform.processor() or '(platform.processor() empty)'} / {cpu_model()}"
    else:
        proc = platform.processor() or "(processor n/a)"
    first = [f"date {datetime.datetime.now().isoformat(timespec='seconds')}; machine {platform.machine()} {proc}",
             f"{os.cpu_count()} CPUs"]
    if with_ram:
        first.append(ram())
    first.append(load_average())
    second = [f"python {platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}",
              f"device {dev.platform}: {getattr(dev, 'device_kind', dev)}"]
    if with_x64:
        second.append(f"x64 {jax.config.jax_enable_x64}")
    if with_openblas:
        second.append(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    return ["; ".join(first), "; ".join(second)]


# ----------------------------------------------------------------------------- timing
def best_of(fn: Callable[[], T], repeats: int = 1, budget_s: float = 0.0, max_repeats: int = 20) -> tuple[float, T]:
    """Call ``fn`` ``repeats`` times, and again while less than ``budget_s`` seconds have passed in all
    (at most ``max(repeats, max_repeats)`` calls); returns the best wall time (s) and the last result."""
    walls: list[float] = []
    out: Any = None
    limit, t_all = max(repeats, max_repeats), time.perf_counter()
    while len(walls) < limit and (len(walls) < repeats or time.perf_counter() - t_all < budget_s):
        t = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
    return min(walls), out


# ----------------------------------------------------------------------------- save grid, tables, RESULTS.md
def fmt(x: float | None, spec: str = ".3g") -> str:
    """A table cell: ``x`` formatted with ``spec``, or ``"—"`` for None, nan and inf."""
    import numpy as np

    return "—" if x is None or not np.isfinite(x) else format(x, spec)


def save_grid(t1: float, n: int = 100) -> np.ndarray:
    """Save times {0} ∪ geomspace(1e-2, t1, n) (a numpy array of n + 1 times)."""
    import numpy as np

    return np.concatenate([[0.0], np.geomspace(1e-2, t1, n)])


def results_body(header: list[str], description: str, table: list[str], notes: list[str], wall_s: float) -> list[str]:
    """The lines of a RESULTS.md section: header, description, table, notes and the total wall time."""
    return [*header, "", description, "", *table, "", *notes, f"(wall {wall_s:.0f} s)"]


def append_results(title: str, body: list[str], path: pathlib.Path = RESULTS) -> None:
    """Append ``## title`` and ``body`` to ``path`` (benchmarks/RESULTS.md), creating it with a preamble."""
    text = "\n".join([f"## {title}", "", *body, "", ""])
    if not path.exists():
        text = _RESULTS_PREAMBLE + text
    with open(path, "a") as fh:
        fh.write(text)
