"""Experiments: one function per system that simulates, overlays theory, writes figures and data.

:data:`DEFAULTS` lists the built-in default experiments that ``phasedyn`` (no arguments) runs for
every implemented system. Each experiment writes, into its own folder, ``config.json`` (the exact
arguments), ``summary.json`` and ``trajectories.npz`` (see :mod:`.output`) and its figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable

from phasedyn.theory import Model, isotropic_problem
from phasedyn.theory.validate import INT64_MAX, check_choice, check_int, check_positive

from . import _cost
from ._folders import check_out, run_staged
from ._interrupt import check_resume

from .flags import ALIGN, DELTA, EPS, LOSS, N_RECORD, NOISE, PRNG, SEED, SEEDS, Flag, resolve_simulation_flags
from .output import config_json, write_json, write_outputs
from .overlay import overlay_isotropic
from .plots import plot_overview, plot_us

T_MAX_ISOTROPIC = 5.0
OPTIMIZERS = ("gf", "gd", "sgd")


@dataclasses.dataclass(frozen=True)
class IsotropicConfig:
    r"""Arguments of ``phasedyn run isotropic`` (defaults: the built-in experiment).

    ``eta`` defaults by optimizer: 1e-3 (``gf``: GD at a small step against gradient flow), 2e-2
    (``gd``: the exact map at a large step), 0.01/d (``sgd``: online SGD needs :math:`\eta \sim 1/d`:
    its ODE gains :math:`\eta d\,\mathbb E[(\partial_g\ell)^2] \approx 240\,\eta d\, s^3` in
    :math:`\dot s`, which beats the :math:`-24 s^2` drift once :math:`s \gtrsim 0.1/(\eta d)`; at
    :math:`\eta d = 0.1` the ODE blows up in finite time from :math:`s = 1`, and so does the simulation).
    ``steps`` defaults to :math:`\lceil t_{max}/\eta\rceil` (model time ``t_max``, default 5). ``model`` is set by
    :meth:`resolved`: the :class:`~phasedyn.theory.Model` of ``loss``, parsed once and passed down to the overlay.
    """

    optimizer: str = Flag("gf: GD at small eta vs gradient flow; gd: exact GD map; sgd: online SGD vs its ODE",
                          choices=OPTIMIZERS)("gf")
    d: int = Flag("dimension (>= 2)")(1000)
    eta: float | None = Flag("step size (> 0); default by optimizer")(None)
    steps: int | None = Flag("optimiser steps (>= 1); default ceil(t_max/eta)")(None)
    t_max: float = Flag("model time t = eta*steps when --steps is not given (> 0)")(T_MAX_ISOTROPIC)
    seeds: int = SEEDS(8)
    noise: float = NOISE(0.0)
    seed: int = SEED(0)
    n_record: int = N_RECORD(300)
    align: float | None = ALIGN(None)
    delta: float = DELTA(0.1)
    eps: float = EPS(0.05)
    prng: str | None = PRNG(None)
    loss: str | None = LOSS(None)
    model: Model | None = dataclasses.field(default=None, compare=False, repr=False)

    def resolved(self) -> "IsotropicConfig":
        """Validated copy with ``eta``, ``steps``, ``prng`` and ``model`` (the parsed ``loss``) filled in."""
        opt = check_choice("optimizer", self.optimizer, OPTIMIZERS)
        d = check_int("d", self.d, 2)
        eta = {"gf": 1e-3, "gd": 2e-2, "sgd": 0.01 / d}[opt] if self.eta is None else check_positive("eta", self.eta)
        t_max = check_positive("t_max", self.t_max)
        steps = steps_of_time(t_max, eta) if self.steps is None else check_int("steps", self.steps, 1)
        return dataclasses.replace(self, d=d, eta=eta, steps=steps, **resolve_simulation_flags(self))


def steps_of_time(t_max: float, eta: float) -> int:
    r"""The default ``steps`` :math:`\lceil t_{max}/\eta\rceil`, refused (naming ``t_max`` and ``eta``) beyond int64."""
    ratio = t_max / eta
    if not math.isfinite(ratio) or ratio > INT64_MAX:
        raise ValueError(f"steps = ceil(t_max/eta) = ceil({t_max:g}/{eta:g}) = {ratio:.3g} exceeds the int64 range "
                         f"[1, {INT64_MAX}]: raise eta, lower t_max, or give steps")
    return max(1, math.ceil(ratio))


def run_isotropic(config: IsotropicConfig, out: Path, progress: bool | None = None, *, overwrite: bool = False,
                  force: bool = False, resume: Path | None = None, figures: bool = True) -> dict:
    """Run one isotropic experiment into ``out``; returns ``{"summary": dict, "files": [paths]}``.

    Everything is checked before anything runs or is written: the config (``resolved()``), the folder
    (:func:`~._folders.check_out`; ``overwrite``: replace a non-empty folder that holds no phasedyn run) and the
    estimated memory (:func:`~._cost.check`; ``force``: run even when it exceeds what the machine has). The files
    are written into a temporary sibling folder, moved to ``out`` when the run has finished (:func:`~._folders.staged`).

    The simulation checkpoints into ``out/checkpoints/sim``; ``resume``: a folder of an earlier run of the same
    config (checked, :func:`~._interrupt.check_resume`) whose checkpoint it continues, bit for bit. A SIGINT
    stops the simulation: its partial records and ``summary.json`` with ``"interrupted": true`` are moved to
    ``out`` and :class:`~._interrupt.Interrupted` is raised (:mod:`._interrupt`). ``figures=False``: data files only
    (a sweep's points, :mod:`.sweep`).
    """
    cfg = config.resolved()
    check_out(out, overwrite)
    resume = check_resume(resume, config_json("isotropic", cfg))
    _cost.check(_cost.isotropic(cfg), force)
    return run_staged(lambda tmp, ck: _run_isotropic(cfg, tmp, progress, ck, figures), out, overwrite, "isotropic",
                      resume)


def _run_isotropic(cfg: IsotropicConfig, out: Path, progress: bool | None, ck: Callable[[str], dict],
                   figures: bool = True) -> dict:
    write_json(out / "config.json", config_json("isotropic", cfg))
    start = time.perf_counter()
    problem = isotropic_problem(cfg.d, seed=cfg.seed, sigma=cfg.noise)
    ov = overlay_isotropic(problem, cfg.optimizer, cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, cfg.align,
                           progress=progress, prng=cfg.prng, model=cfg.model, delta=cfg.delta, **ck("sim"))
    files = write_outputs(ov, out, cfg.delta, cfg.eps)
    summary = json.loads(files["summary"].read_text())
    for key in ("fluctuations", "fluctuations_note"):  # unaligned online SGD: the escape law against the seeds
        if key in ov.measurements:
            summary[key] = ov.measurements[key]
    figs = plot_overview(ov, out, summary["phases"]) + plot_us(ov, out) if figures else []
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_json(files["summary"], summary)
    return {"summary": summary, "files": [out / "config.json", *files.values(), *figs]}


#: built-in default experiments for the main job: (folder name, runner, config)
DEFAULTS = [
    ("isotropic-gf", run_isotropic, IsotropicConfig(optimizer="gf")),
    ("isotropic-gd", run_isotropic, IsotropicConfig(optimizer="gd")),
    # unaligned: the theory is the escape law of the start (docs/theory.md §4(A)), no alignment needed
    ("isotropic-sgd", run_isotropic, IsotropicConfig(optimizer="sgd", d=500, t_max=3.0)),
]


def _register_powerlaw() -> None:
    from ._powerlaw_config import DEFAULT_POWERLAW, run_powerlaw

    # `phasedyn run powerlaw` with no options is this experiment (the config's own defaults)
    DEFAULTS.append((f"powerlaw-{DEFAULT_POWERLAW.optimizer}", run_powerlaw, DEFAULT_POWERLAW))


def _register_spiked() -> None:
    from .spiked import DEFAULT_EXPERIMENTS

    DEFAULTS.extend(DEFAULT_EXPERIMENTS)


def _register_single_index() -> None:
    from ._single_index import DEFAULT_SINGLE_INDEX, run_single_index

    DEFAULTS.append((f"single-index-{DEFAULT_SINGLE_INDEX.optimizer}", run_single_index, DEFAULT_SINGLE_INDEX))


_register_powerlaw()
_register_spiked()
_register_single_index()
