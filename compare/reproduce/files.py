"""The files of one experiment's folder: ``config.json`` at the start; ``results.json`` and ``results.npz`` at
the end (the figures are written by :mod:`.figures`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from phasedyn.theory import Problem

from ..output import package_version, write_json
from ..overlay import STATS, Overlay
from .settings import DELTA, EPS, PAPER


def make_setting(paper: bool, note: str, complete: bool = True) -> dict:
    """An experiment's ``setting``: ``paper``: ran at [P1]'s setting as docs/theory.md states it (not reduced);
    ``complete``: docs/theory.md states all of it (otherwise the unstated parameters, named in ``note``, are our
    choice)."""
    return {"paper": paper, "complete": bool(paper and complete), "note": note}


def experiment_arrays(ov: Overlay, prefix: str, problem: Problem | None = None) -> dict[str, np.ndarray]:
    """The arrays of ``results.npz`` for one overlay, keys prefixed by ``prefix``: the grid, every per-seed
    theory and simulation curve and, with ``problem``, the spectrum, w* and the seeds' w(0)."""
    out = {f"{prefix}t": ov.t}
    for k in STATS:
        out[f"{prefix}theory_{k}"] = ov.theory[k]
        out[f"{prefix}sim_{k}"] = ov.sim[k]
    if problem is not None:
        out[f"{prefix}spectrum"] = problem.lam
        out[f"{prefix}w_star"] = problem.w_star
        out[f"{prefix}w0"] = problem.w0_batch(ov.params["seeds"])
    return out




def start_folder(folder: Path, name: str, cfg: Any, quick: bool, setting: dict) -> None:
    """Create experiment ``name``'s folder and write its ``config.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", {"experiment": name, "paper": PAPER, "mode": "quick" if quick else "full",
                                         "config": dataclasses.asdict(cfg), "setting": setting,
                                         "delta": DELTA, "eps": EPS, "version": package_version()})


def finish_folder(folder: Path, name: str, rows: list[dict], details: dict, arrays: dict, figs: list[Path],
                  setting: dict, start: float, warn: list[str]) -> dict:
    """Stamp the run time (since ``start``) on every row, write ``results.npz`` and ``results.json``, and return
    the experiment's result (with ``files``: the folder's files, ``figs`` last)."""
    wall = time.perf_counter() - start
    for r in rows:
        r["wall_s"] = wall
    np.savez_compressed(folder / "results.npz", **arrays)
    res = {"experiment": name, "setting": setting, "rows": rows, "details": details, "warnings": warn,
           "wall_time_s": round(wall, 2)}
    write_json(folder / "results.json", res)
    res["files"] = [folder / "config.json", folder / "results.json", folder / "results.npz", *figs]
    return res
