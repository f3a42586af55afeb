r"""``phasedyn run powerlaw``: its arguments (:class:`PowerlawConfig`, one field per flag, :mod:`.flags`) and the
experiment :func:`run_powerlaw` (docs/theory.md §3B, §4).

:func:`run_powerlaw` writes ``config.json``, ``summary.json`` (the common keys of :func:`~.output.summary` plus
``predictions``, ``measured`` and ``phase3``), ``trajectories.npz`` (with ``spectrum``, ``w_star``, ``w0``) and the
overview and (u, s) figures into one folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

from phasedyn.theory import Model, powerlaw_problem
from phasedyn.theory.validate import (check_choice, check_int, check_positive)

from . import _cost
from ._folders import check_out, run_staged
from ._interrupt import check_resume
from .fit import growth_rate_seeds, t2_exponent_fit
from .flags import ALIGN, DELTA, EPS, LOSS, N_RECORD, NOISE, PRNG, SEED, SEEDS, STEPS, Flag, resolve_simulation_flags
from .output import config_json, write_json, write_outputs
from .plots import plot_overview, plot_us
from .powerlaw import PHASE_RETRIEVAL_ONLY, SOLVERS, overlay_powerlaw, phase3, predictions, t2_tail

OPTIMIZERS = ("gf", "gd", "sgd")
CLOSURES = ("top", "zero", "quadrature")


@dataclasses.dataclass(frozen=True)
class PowerlawConfig:
    r"""Arguments of ``phasedyn run powerlaw`` (defaults: the main job's experiment, [P1]'s a = 2, d = 1000, GD at a
    small step against gradient flow).

    The spectrum is :math:`\lambda_i \propto i^{-a}` (docs/theory.md §3B). ``model`` is set by :meth:`resolved`:
    the :class:`~phasedyn.theory.Model` of ``loss``, parsed once and passed down to the overlay.
    """

    a: float = Flag("power-law exponent (> 0; [P1]'s asymptotics need a > 1)")(2.0)
    d: int = Flag("dimension (>= 2)")(1000)
    eta: float = Flag("step size (> 0)")(1e-2)
    optimizer: str = Flag("gf: GD vs gradient flow; gd: GD vs its exact map; sgd: online SGD vs its mean field",
                          choices=OPTIMIZERS)("gf")  # the main job's power-law experiment (DEFAULT_POWERLAW)
    solver: str = Flag("theory: exact per-mode, blocks, hierarchy", choices=SOLVERS)("modes")
    B: int = Flag("number of log-spaced blocks (--solver blocks, >= 1)")(100)
    K: int = Flag("hierarchy depth (--solver hierarchy, >= 1)")(16)
    closure: str = Flag("hierarchy closure", choices=CLOSURES)("top")
    steps: int = STEPS(100_000)
    seeds: int = SEEDS(4)
    noise: float = NOISE(0.0)
    seed: int = SEED(0)
    n_record: int = N_RECORD(300)
    align: float | None = ALIGN(None)
    delta: float = DELTA(0.1)
    eps: float = EPS(0.05)
    prng: str | None = PRNG(None)
    loss: str | None = LOSS(None)
    model: Model | None = dataclasses.field(default=None, compare=False, repr=False)

    def resolved(self) -> "PowerlawConfig":
        """Validated copy with ``prng`` and ``model`` (the parsed ``loss``) filled in."""
        check_positive("a", self.a)
        check_int("d", self.d, 2)
        eta = check_positive("eta", self.eta)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("solver", self.solver, SOLVERS)
        check_int("B", self.B, 1)
        check_int("K", self.K, 1)
        check_choice("closure", self.closure, CLOSURES)
        check_int("steps", self.steps, 1)
        check_spectrum_range(self.a, self.d)
        return dataclasses.replace(self, eta=eta, **resolve_simulation_flags(self))


def check_spectrum_range(a: float, d: int) -> None:
    r"""Refuse, naming ``a`` and ``d``, a spectrum :math:`\lambda_i = i^{-a}/H_{d,a}` whose smallest eigenvalue
    :math:`\lambda_d` is not a normal float64 (it underflows to 0 or to a subnormal; docs/theory.md §3B).

    :math:`\log_{10}\lambda_d = -a\log_{10}d - \log_{10}H_{d,a}` with :math:`1 \le H_{d,a} \le 1 + \ln d`
    for :math:`a \ge 1` (and :math:`\le d` below), so :math:`\lambda_d \ge 10^{-307}` holds when
    :math:`a\log_{10}d + \log_{10}(1 + \ln d) \le 307` (a ≤ 1 never underflows for d < 10^300).
    """
    log_h = math.log10(1 + math.log(d)) if a >= 1 else math.log10(d)
    exponent = a * math.log10(d) + log_h
    if exponent > MIN_LOG10_EIGENVALUE:
        a_max = (MIN_LOG10_EIGENVALUE - math.log10(1 + math.log(d))) / math.log10(d)
        raise ValueError(f"a = {a:g} with d = {d}: the smallest eigenvalue lambda_d = d^-a/H ~ 10^-{exponent:.0f} "
                         f"underflows float64; allowed range of a at this d: (0, {a_max:.4g}] (or lower d)")


#: :math:`-\log_{10}` of the smallest eigenvalue allowed (float64's smallest normal number is 2.2e-308)
MIN_LOG10_EIGENVALUE = 307.0


def run_powerlaw(config: PowerlawConfig, out: Path, progress: bool | None = None, *, overwrite: bool = False,
                 force: bool = False, resume: Path | None = None, figures: bool = True) -> dict:
    """Run one power-law experiment into ``out``: config, summary (with predictions/measured), npz, figures.

    Checked before anything runs or is written, then written atomically, as :func:`~.experiments.run_isotropic`
    (``overwrite``, ``force``, ``resume``, ``figures``, a SIGINT: the same; checkpoint ``sim``)."""
    cfg = config.resolved()
    check_out(out, overwrite)
    resume = check_resume(resume, config_json("powerlaw", cfg))
    _cost.check(_cost.powerlaw(cfg), force)
    return run_staged(lambda tmp, ck: _run_powerlaw(cfg, tmp, progress, ck, figures), out, overwrite, "powerlaw",
                      resume)


def _run_powerlaw(cfg: PowerlawConfig, out: Path, progress: bool | None, ck: Callable[[str], dict],
                  figures: bool = True) -> dict:
    write_json(out / "config.json", config_json("powerlaw", cfg))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem = powerlaw_problem(cfg.d, cfg.a, seed=cfg.seed, sigma=cfg.noise)
    for w in caught:
        print(f"phasedyn: warning: {w.message}")
    with warnings.catch_warnings(record=True) as caught:  # the hierarchy's loss of validity: one line on stderr
        warnings.simplefilter("always", UserWarning)
        ov = overlay_powerlaw(problem, cfg.optimizer, cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, cfg.solver, cfg.B,
                              cfg.K, cfg.closure, cfg.align, progress, cfg.prng, cfg.model, **ck("sim"))
    for w in caught:
        print(f"phasedyn: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    pr = cfg.model.is_phase_retrieval
    files = write_outputs(ov, out, cfg.delta, cfg.eps, extra_arrays={
        "spectrum": problem.lam, "w_star": problem.w_star, "w0": problem.w0_batch(ov.params["seeds"])})
    summary = json.loads(files["summary"].read_text())
    summary["predictions"] = predictions(problem, ov, cfg.delta, cfg.model)
    summary["measured"] = {
        "rho": {"theory": growth_rate_seeds(ov.t, ov.theory["u"], cfg.delta),
                "simulation": growth_rate_seeds(ov.t, ov.sim["u"], cfg.delta)},
        "T2_exponent": {"theory": t2_exponent_fit(ov.t, ov.theory["u"], ov.theory["s"], cfg.d, cfg.a, problem.s_star),
                        "simulation": t2_exponent_fit(ov.t, ov.sim["u"], ov.sim["s"], cfg.d, cfg.a, problem.s_star)},
        "T2_tail": t2_tail(problem, ov) if cfg.optimizer != "sgd" and pr else None,
    }
    summary["phase3"] = phase3(problem, ov, summary["phases"]["T2"]["theory"]) if pr else None
    if not pr:
        summary["measured"]["notes"] = {"T2_tail": PHASE_RETRIEVAL_ONLY, "phase3": PHASE_RETRIEVAL_ONLY}
    figs = plot_overview(ov, out, summary["phases"]) + plot_us(ov, out) if figures else []
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_json(files["summary"], summary)
    return {"summary": summary, "files": [out / "config.json", *files.values(), *figs]}


DEFAULT_POWERLAW = PowerlawConfig()
