"""The stable output format (documented in README.md), written next to every figure.

``summary.json``: top-level keys ``system``, ``params``, ``phases`` (``T1``, ``T1p``, ``T2`` →
``{"theory", "simulation"}``, seconds of model time or ``null``), ``final`` (``theory`` /
``simulation`` → last ``u``, ``s``, ``loss``, ``mse``), ``gap`` (statistic → ``{"max", "mean"}`` of
|theory − simulation| on the common grid), ``version`` and ``schema`` (the format's version, 2).

``trajectories.npz``: ``t`` (common grid) and, for each statistic, ``theory_<stat>`` (seed mean),
``sim_<stat>_mean``, ``sim_<stat>_std``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .overlay import STATS, Overlay


def package_version() -> str:
    """The phasedyn version (:data:`phasedyn.__version__`)."""
    from phasedyn import __version__

    return __version__


def summary(ov: Overlay, delta: float = 0.1, eps: float = 0.05) -> dict:
    """The ``summary.json`` dictionary of an overlay."""
    return {
        "system": ov.system,
        "params": {**ov.params, "phase_delta": delta, "phase_eps": eps},
        "phases": ov.phases(delta, eps),
        "final": ov.final(),
        "gap": ov.gap(),
        "version": package_version(),
        "schema": 2,  # summary.json format version (README "Output format": 1 had spiked's own phases and final)
    }


def write_outputs(ov: Overlay, out: Path, delta: float = 0.1, eps: float = 0.05,
                  extra_arrays: dict[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Write ``summary.json`` and ``trajectories.npz`` (plus ``extra_arrays``) into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"t": ov.t}
    for k in STATS:
        data[f"theory_{k}"] = ov.mean("theory", k)
        data[f"sim_{k}_mean"] = ov.mean("sim", k)
        data[f"sim_{k}_std"] = ov.std("sim", k)
    data.update(extra_arrays or {})
    paths = {"summary": out / "summary.json", "trajectories": out / "trajectories.npz"}
    np.savez(paths["trajectories"], **data)
    paths["summary"].write_text(json.dumps(summary(ov, delta, eps), indent=2, default=jsonable) + "\n")
    return paths


def jsonable(x: object) -> object:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths (the one JSON converter of compare/)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x)}")
