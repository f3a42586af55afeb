"""Ctrl-C and resume for the experiments (issue 11 items 4, 5).

A simulation (:func:`phasedyn.simulate.run`, :func:`~phasedyn.simulate.matrix.run_matrix`) stops on the first
SIGINT after its current ~0.5 s chunk and returns a partial trajectory (``interrupted``, ``step_reached``). The
overlays then raise :class:`Interrupted` instead of building theory and figures from a truncated run
(:func:`check_complete`); the runner's :func:`~._folders.run_staged` catches it, replaces the half-written
folder's content by :meth:`Interrupted.save` (``config.json`` kept, ``trajectories.npz`` with the simulation's
records reached, ``sim_*`` only, and ``summary.json`` with ``"interrupted": true``, ``step_reached``, ``steps``),
moves the folder into place and re-raises; ``phasedyn`` prints one line and exits 130.

Checkpoints: every simulation call of a run checkpoints into ``<run folder>/checkpoints/<name>``
(:class:`Checkpoints`; ``name`` unique per call, e.g. ``sim``, ``gd``, ``table-specgd-theta4``); with
``resume=DIR`` (``--resume DIR``) a call whose ``DIR/checkpoints/<name>/state.npz`` exists continues from it,
bit for bit (the simulate layer's guarantee); the others run from the start.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

CHECKPOINTS = "checkpoints"


class Interrupted(Exception):
    """A simulation stopped by SIGINT: its partial trajectory ``traj`` and its sign-fixed curves ``curves``
    (``{stat: (n_seeds, n_rec)}``); ``name`` (the checkpoint's) and ``folder`` (where the partial results were
    kept) are set by the runner."""

    def __init__(self, traj: Any, curves: Mapping[str, np.ndarray] | None = None, *, step_reached: int | None = None,
                 steps: int | None = None, stage: str = "simulation"):
        self.traj, self.curves, self.stage = traj, dict(curves or {}), stage
        if traj is not None:
            step_reached, steps = traj.step_reached, traj.config["steps"]
        self.step_reached, self.steps = int(step_reached), int(steps)
        self.name: str | None = None
        self.folder: Path | None = None
        super().__init__(f"interrupted at step {self.step_reached} of {self.steps}")

    def save(self, folder: Path, system: str) -> None:
        """Replace ``folder``'s content but ``config.json`` and the checkpoints by the partial results (module doc)."""
        from .output import package_version, write_json  # .output imports the overlays, which import this

        folder = Path(folder)
        for p in folder.iterdir():
            if p.name not in ("config.json", CHECKPOINTS):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if self.traj is not None:
            data = {"t": np.asarray(self.traj.t, float), "steps": np.asarray(self.traj.steps, np.int64)}
            for k, v in self.curves.items():
                v = np.asarray(v, float)
                data[f"sim_{k}_mean"], data[f"sim_{k}_std"] = v.mean(axis=0), v.std(axis=0)
            np.savez(folder / "trajectories.npz", **data)
        write_json(folder / "summary.json", {
            "system": system, "interrupted": True, "step_reached": self.step_reached, "steps": self.steps,
            "stage": self.stage, "simulation": self.name,
            "checkpoint": None if self.name is None else f"{CHECKPOINTS}/{self.name}",
            "version": package_version(), "schema": 2})


def after_simulation(folder: Path) -> Interrupted | None:
    """A ``KeyboardInterrupt`` outside a simulation (the theory or figure stage, or a second SIGINT) in the run
    folder ``folder``: an :class:`Interrupted` of its newest checkpoint (``stage`` ``"after the simulation"``,
    no ``trajectories.npz``: ``--resume`` reads its records back), or ``None`` when it has none."""
    from phasedyn.simulate import read_checkpoint

    states = sorted((folder / CHECKPOINTS).glob("*/state.npz"), key=lambda p: p.stat().st_mtime)
    if not states:
        return None
    try:
        header = read_checkpoint(states[-1].parent)
    except ValueError:
        return None
    exc = Interrupted(None, step_reached=header["step"], steps=header["steps"],
                      stage="simulation" if header["interrupted"] else "after the simulation")
    exc.name = states[-1].parent.name
    return exc


def check_complete(traj: Any, curves: Mapping[str, np.ndarray] | None = None) -> None:
    """Raise :class:`Interrupted` if ``traj`` was stopped by SIGINT (``curves``: its curves; default its stats)."""
    if getattr(traj, "interrupted", False):
        raise Interrupted(traj, traj.stats if curves is None else curves)


class Checkpoints:
    """``checkpoints(name)``: the ``checkpoint=`` / ``resume=`` keywords of one simulation call (module doc)."""

    def __init__(self, folder: Path, resume: Path | None = None):
        self.folder, self.resume = Path(folder), None if resume is None else Path(resume)
        self.last: str | None = None

    def __call__(self, name: str) -> dict[str, Path]:
        self.last = name
        kw = {"checkpoint": self.folder / CHECKPOINTS / name}
        old = None if self.resume is None else self.resume / CHECKPOINTS / name
        if old is not None and (old / "state.npz").is_file():
            kw["resume"] = old
        return kw


def no_checkpoints(name: str) -> dict:
    """The keywords of a call that is not checkpointed (the default of the overlays' helpers)."""
    return {}


def check_resume(resume: Path | str | None, config: dict) -> Path | None:
    """The checked ``--resume`` folder: ``ValueError`` naming ``--resume`` unless it holds a phasedyn run
    (``config.json``) of the same system and arguments as ``config`` (the resolved run's ``config.json``; the
    ``version`` is not compared), the first difference named."""
    from .output import to_json

    if resume is None:
        return None
    resume = Path(resume).expanduser().absolute()
    try:
        theirs = json.loads((resume / "config.json").read_text())
    except (OSError, ValueError):
        raise ValueError(f"--resume {resume}: no phasedyn run there (no readable config.json)") from None
    mine = to_json(config)
    for key in mine:
        if key != "version" and theirs.get(key) != mine[key]:
            raise ValueError(f"--resume {resume} is a run of other arguments: {key} = {theirs.get(key)!r} there, "
                             f"{mine[key]!r} here; pass the same arguments as that run")
    return resume
