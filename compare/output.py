"""The stable output format (documented in README.md), written next to every figure.

``summary.json``: top-level keys ``system``, ``params``, ``phases`` (``T1``, ``T1p``, ``T2`` →
``{"theory", "simulation"}``, seconds of model time or ``null``), ``final`` (``theory`` /
``simulation`` → last ``u``, ``s``, ``loss``, ``mse``), ``gap`` (statistic → ``{"max", "mean"}`` of
|theory − simulation| on the common grid), ``version`` and ``schema`` (the format's version, 2).

``trajectories.npz``: ``t`` (common grid) and, for each statistic, ``theory_<stat>`` (seed mean),
``theory_<stat>_std`` (the theory's predicted spread across seeds), ``sim_<stat>_mean``, ``sim_<stat>_std``.

Every JSON file of compare/ (``config.json``, ``summary.json``, reproduce's ``results.json``) is written by
:func:`write_json`: strict JSON (``allow_nan=False``), every non-finite number as ``null`` (:func:`to_json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from phasedyn.theory import Model

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
        data[f"theory_{k}_std"] = ov.std("theory", k)
        data[f"sim_{k}_mean"] = ov.mean("sim", k)
        data[f"sim_{k}_std"] = ov.std("sim", k)
    data.update(extra_arrays or {})
    paths = {"summary": out / "summary.json", "trajectories": out / "trajectories.npz"}
    np.savez(paths["trajectories"], **data)
    write_json(paths["summary"], summary(ov, delta, eps))
    return paths


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` to ``path`` as indented strict JSON (:func:`to_json`; the one JSON writer of compare/)."""
    path = Path(path)
    path.write_text(json.dumps(to_json(data), indent=2, allow_nan=False) + "\n")
    return path


def json_text(data: object) -> str:
    """``data`` as one line of strict JSON (:func:`to_json`): an attribute of a sweep store, for instance."""
    return json.dumps(to_json(data), allow_nan=False)


def to_json(x: object) -> object:
    """``x`` as plain JSON values: NumPy scalars and arrays as numbers and lists, paths as text, a
    :class:`~phasedyn.theory.Model` as its loss text, and every non-finite float as ``None`` (strict JSON: a
    theory curve that ends where the truncated hierarchy stops being valid has no final value, gap or fit there).
    """
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_json(x.tolist())
    if isinstance(x, np.generic):
        return to_json(x.item())
    if isinstance(x, Model):
        return x.loss
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"not JSON-serialisable: {type(x)}")


def config_json(system: str, cfg: object) -> dict:
    """The ``config.json`` dictionary of a resolved experiment config: ``system``, every field but the parsed
    ``model`` (its text is the ``loss`` field), ``version``."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
    return {"system": system, **fields, "version": package_version()}
