r"""``phasedyn run single-index``: single-index models from anisotropic data ([P3]; docs/theory.md §5).

Teacher :math:`y = \sigma^*(x\cdot w^*) + \xi` (``--link``), student :math:`\sigma(x\cdot w)` (``--activation``),
square or correlation loss, on an isotropic, power-law or spiked spectrum, trained by gradient flow, population GD,
vanilla online SGD or spherical online SGD (Euclidean or :math:`\Sigma`-norm). The model is one
:meth:`~phasedyn.theory.Model.single_index`: the simulation differentiates it, the theory derives its (u, s) system
(:math:`\Sigma = I`) or its exact per-mode system (any other spectrum) from it. Nothing here is specific to the
model beyond registering it: the overlays are :func:`~.overlay.overlay_isotropic` and
:func:`~.powerlaw.overlay_powerlaw`.

``--experiment sample-complexity`` is :mod:`._sample_complexity`.

Outputs as every run (config.json, summary.json, trajectories.npz, figures); summary.json adds ``model`` (link,
activation, loss, Hermite coefficients, ``information_exponent``) and ``effective_dimension`` (each candidate's value
for this spectrum, :func:`phasedyn.theory.effective_dimensions`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from phasedyn.theory import (LINKS, SINGLE_INDEX_SPECTRA, SPIKES, Model, effective_dimensions, heavy_mode_note,
                             model_report, parse_link, single_index_problem)
from phasedyn.theory.validate import check_choice, check_greater, check_int, check_positive

from . import _cost
from ._folders import check_out, run_staged
from ._interrupt import check_resume
from .experiments import steps_of_time
from .flags import ALIGN, DELTA, EPS, N_RECORD, NOISE, PRNG, SEED, SEEDS, Flag, resolve_simulation_flags
from .output import config_json, write_json, write_outputs
from .overlay import overlay_isotropic
from .plots import plot_overview, plot_us
from .powerlaw import overlay_powerlaw

OPTIMIZERS = ("gf", "gd", "sgd", "spherical-sgd", "sigma-spherical-sgd")
EXPERIMENTS = ("trajectory", "sample-complexity")
LOSSES = ("square", "correlation")
_LINK_HELP = f"a name in {{{','.join(LINKS)}}} or an expression in z (e.g. 'z**3 - 3*z', 'tanh(2*z)')"


@dataclasses.dataclass(frozen=True)
class SingleIndexConfig:
    r"""Arguments of ``phasedyn run single-index`` (defaults: the main job's experiment, a tanh teacher learned by a
    ReLU student with vanilla online SGD at :math:`d = 1000`).

    ``eta`` defaults by optimizer: ``0.01/lambda_max`` (``gf``: GD at a small step against gradient flow),
    ``0.2/lambda_max`` (``gd``), ``0.5/tr Sigma`` (online SGD, vanilla and spherical: the noise term is
    :math:`\eta\,\mathrm{tr}\,\Sigma\,\mathbb E(\partial_g\ell)^2`). ``steps`` defaults to
    :math:`\lceil t_{max}/\eta\rceil`. ``model`` is set by :meth:`resolved`.
    """

    experiment: str = Flag("trajectory: theory over simulation; sample-complexity: samples to escape against d "
                           "and against the effective dimensions", choices=EXPERIMENTS)("trajectory")
    link: str = Flag(f"teacher link sigma*: {_LINK_HELP}", metavar="LINK")("tanh")
    activation: str | None = Flag("student activation sigma (same choices; default: the link)",
                                  metavar="LINK")("relu")
    loss: str = Flag("square (sigma(g) - y)^2 or correlation -y sigma(g)", choices=LOSSES)("square")
    spectrum: str = Flag("covariance: isotropic, power law i^-a (tr = d) or spiked I + theta e1 e1^T",
                         choices=SINGLE_INDEX_SPECTRA)("isotropic")
    a: float = Flag("power-law exponent (--spectrum powerlaw, > 0; above 1 the top mode holds a finite share of the "
                    "trace and the online-SGD mean field misses its fluctuations)")(0.5)
    theta: float = Flag("spike strength (--spectrum spiked, > -1)")(4.0)
    spike: str = Flag("spike along the target (signal) or orthogonal to it", choices=SPIKES)("signal")
    optimizer: str = Flag("gf, gd, vanilla online sgd, spherical-sgd (|w| = 1) or sigma-spherical-sgd "
                          "(w.Sigma w = 1, true Sigma)", choices=OPTIMIZERS)("sgd")
    d: int = Flag("dimension (>= 2)")(1000)
    eta: float | None = Flag("step size (> 0); default by optimizer")(None)
    steps: int | None = Flag("optimiser steps (>= 1); default ceil(t_max/eta)")(None)
    t_max: float = Flag("model time t = eta*steps when --steps is not given (> 0)")(4.0)
    seeds: int = SEEDS(8)
    noise: float = NOISE(0.0)
    seed: int = SEED(0)
    n_record: int = N_RECORD(200)
    align: float | None = ALIGN(None)
    delta: float = DELTA(0.1)
    eps: float = EPS(0.05)
    prng: str | None = PRNG(None)
    d_min: int = Flag("sample-complexity: smallest d of the d grid (>= 8)")(64)
    n_d: int = Flag("sample-complexity: number of log-spaced d from d_min to d (>= 2)")(4)
    model: Model | None = dataclasses.field(default=None, compare=False, repr=False)

    def resolved(self) -> "SingleIndexConfig":
        """Validated copy with ``eta``, ``steps``, ``prng`` and ``model`` (link, activation, loss) filled in."""
        check_choice("experiment", self.experiment, EXPERIMENTS)
        for name in ("link", "activation"):
            value = getattr(self, name)
            if value is not None:
                try:
                    parse_link(value)
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from None
        check_choice("loss", self.loss, LOSSES)
        check_choice("spectrum", self.spectrum, SINGLE_INDEX_SPECTRA)
        check_positive("a", self.a)
        check_greater("theta", self.theta, -1.0)
        check_choice("spike", self.spike, SPIKES)
        opt = check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.loss == "correlation" and "spherical" not in opt:
            raise ValueError(f"loss 'correlation' (-y sigma(g)) is unbounded below in |w|, so optimizer {opt!r} "
                             "diverges; allowed with it: spherical-sgd, sigma-spherical-sgd")
        d = check_int("d", self.d, 2)
        check_int("d_min", self.d_min, 8, d)
        check_int("n_d", self.n_d, 2)
        model = Model.single_index(self.link, self.activation, self.loss)
        problem = self.problem(d)
        lam_max, tr = float(problem.lam.max()), float(problem.lam.sum())
        default = {"gf": 0.01 / lam_max, "gd": 0.2 / lam_max}.get(opt, 0.5 / tr)
        eta = default if self.eta is None else check_positive("eta", self.eta)
        t_max = check_positive("t_max", self.t_max)
        steps = steps_of_time(t_max, eta) if self.steps is None else check_int("steps", self.steps, 1)
        flags = resolve_simulation_flags(dataclasses.replace(self, loss=None, model=None))
        return dataclasses.replace(self, d=d, eta=eta, steps=steps, prng=flags["prng"], model=model)

    def problem(self, d: int | None = None):
        """The run's :class:`~phasedyn.theory.Problem` at dimension ``d`` (default ``self.d``)."""
        return single_index_problem(self.d if d is None else d, self.spectrum, a=self.a, theta=self.theta,
                                    spike=self.spike, seed=self.seed, sigma=self.noise)


def run_single_index(config: SingleIndexConfig, out: Path, progress: bool | None = None, *, overwrite: bool = False,
                     force: bool = False, resume: Path | None = None, figures: bool = True) -> dict:
    """Run one single-index experiment into ``out`` (checked, staged and resumable as
    :func:`~.experiments.run_isotropic`); returns ``{"summary": dict, "files": [paths]}``."""
    cfg = config.resolved()
    check_out(out, overwrite)
    resume = check_resume(resume, config_json("single-index", cfg))
    _cost.check(_cost.single_index(cfg), force)
    if cfg.experiment == "sample-complexity":
        from ._sample_complexity import run_sample_complexity

        return run_staged(lambda tmp, ck: run_sample_complexity(cfg, tmp, progress, figures), out, overwrite,
                          "single-index", resume)
    return run_staged(lambda tmp, ck: _run(cfg, tmp, progress, ck, figures), out, overwrite, "single-index", resume)


def _run(cfg: SingleIndexConfig, out: Path, progress: bool | None, ck: Callable[[str], dict],
         figures: bool = True) -> dict:
    write_json(out / "config.json", config_json("single-index", cfg))
    start = time.perf_counter()
    problem = cfg.problem()
    if cfg.spectrum == "isotropic":  # the closed (u, s) system; each seed's theory from its own start
        ov = overlay_isotropic(problem, cfg.optimizer, cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, cfg.align,
                               progress=progress, prng=cfg.prng, model=cfg.model, start="seeds", delta=cfg.delta,
                               **ck("sim"))
    else:  # the exact per-mode system
        ov = overlay_powerlaw(problem, cfg.optimizer, cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "modes",
                              align=cfg.align, progress=progress, prng=cfg.prng, model=cfg.model, **ck("sim"))
    files = write_outputs(ov, out, cfg.delta, cfg.eps, extra_arrays={"spectrum": problem.lam,
                                                                      "w_star": problem.w_star})
    summary = json.loads(files["summary"].read_text())
    summary["system"] = f"single-index-{summary['system']}"  # e.g. single-index-spiked-sgd-modes[loss=...]
    summary["model"] = model_report(cfg.link, cfg.activation, cfg.loss)
    summary["effective_dimension"] = effective_dimensions(problem.lam, problem.w_star)
    note = heavy_mode_note(problem.lam) if "sgd" in cfg.optimizer else None
    if note:
        summary["notes"] = [note]
    figs = plot_overview(ov, out, summary["phases"]) + plot_us(ov, out) if figures else []
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_json(files["summary"], summary)
    return {"summary": summary, "files": [out / "config.json", *files.values(), *figs]}


DEFAULT_SINGLE_INDEX = SingleIndexConfig()
