"""Arguments of ``phasedyn run spiked``: :class:`SpikedConfig`, one field per command-line flag (:mod:`.flags`;
docs/theory.md §3C)."""

from __future__ import annotations

import dataclasses
from phasedyn.simulate.matrix import INITS, OPTIMIZERS, POLARS
from phasedyn.theory import Model
from phasedyn.theory import spiked as SP
from phasedyn.theory.validate import INT64_MAX, check_choice, check_int, check_positive

from . import flags
from .flags import LOSS, N_RECORD, SEED, SEEDS, STEPS, Flag, resolved_model

#: ``run spiked`` refuses another loss: the two-layer network's reduced map is derived for phase retrieval only
PHASE_RETRIEVAL_LOSS_ONLY = (
    "--loss: run spiked simulates the two-layer network, derived for the phase-retrieval loss only (allowed: "
    "(g**2 - h**2 - xi)**2); the one-neuron system takes any loss from Python: "
    "phasedyn.theory.spiked.neuron_system(model=...)")


@dataclasses.dataclass(frozen=True)
class SpikedConfig:
    r"""Arguments of ``phasedyn run spiked`` (defaults: the built-in experiment, 15-20 s on 2 cores).

    Attributes:
        theta: spike strength :math:`\theta > -1` (:math:`\Sigma = I + \theta e_1e_1^\top`).
        d: dimension (:math:`\ge 3`); m: width (:math:`\ge 1`, default :math:`d`).
        eta: step size (> 0), the same for both optimizers of the figure. SpecGD moves every coefficient by
            exactly :math:`\eta` per step, so pick :math:`\eta/c_0` away from small-denominator fractions
            (a coefficient landing within round-off of 0 has a gradient sign decided by round-off).
        optimizer: ``"gd"``, ``"sgd"`` (online, ``batch`` samples per step) or ``"specgd"``; the figure
            shows it against the other of GD/SpecGD.
        polar: SpecGD's polar factor, ``"svd"`` (exact), ``"newton-schulz"`` (run to convergence) or ``"muon"``
            (Muon's 5-step quintic, compared with its own reduced map ``spiked-two-layer-muon``).
        init: ``"identity"`` (:math:`c_0 I`, needs :math:`m = d`), ``"orthogonal"`` or ``"gaussian"``.
        init_scale: :math:`c_0 > 0` (the reduced start is :math:`a = b = c = c_0` on the manifold).
        batch: SGD mini-batch size.
        steps: optimiser steps (default: :func:`phasedyn.theory.spiked.default_steps`, the longer of GD's
            and SpecGD's).
        seeds, seed: number of seeds (initialisations, SGD streams) and the seed of :math:`w^*`.
        n_record: log-spaced record points.
        tol: ``steps_to_tol`` threshold on :math:`|b|, |c|`, relative to :math:`\sqrt m`.
        phase_diagram: also compute the (θ, η) phase diagram, the θ table and their figures.
        loss: the per-sample loss; only phase retrieval (``None``, the default) is accepted, see
            :data:`PHASE_RETRIEVAL_LOSS_ONLY`. ``model``: set by :meth:`resolved`, the parsed ``loss``.
    """

    theta: float = Flag("spike strength (> -1)")(4.0)
    d: int = Flag("dimension (>= 3)")(32)
    m: int | None = Flag("width (>= 1; default d)")(None)
    eta: float = Flag("step size (> 0)")(0.07)
    optimizer: str = Flag("gd, sgd (online, --batch samples a step) or specgd; shown against the other of GD/SpecGD",
                          choices=OPTIMIZERS)("gd")
    polar: str = Flag("SpecGD polar factor: svd (exact), newton-schulz (converged) or muon (Muon's 5-step quintic)",
                      choices=POLARS)("svd")
    init: str = Flag("W(0): identity (c0 I, needs m = d), orthogonal or gaussian", choices=INITS)("identity")
    init_scale: float = Flag("c0 of W(0) (> 0)")(0.01)
    batch: int = Flag("SGD mini-batch (>= 1)")(1)
    steps: int | None = STEPS(None)
    seeds: int = SEEDS(4)
    seed: int = SEED(0)
    n_record: int = N_RECORD(200)
    tol: float = Flag("steps_to_tol threshold on |b|, |c| over sqrt(m) (> 0)")(0.05)
    phase_diagram: bool = Flag("skip the (theta, eta) phase diagram and the theta table")(True)
    loss: str | None = LOSS(None)
    model: Model | None = dataclasses.field(default=None, compare=False, repr=False)

    def resolved(self) -> "SpikedConfig":
        """Validated copy with ``m``, ``steps`` and ``model`` filled in (``ValueError`` naming the parameter
        otherwise; a loss other than phase retrieval: :data:`PHASE_RETRIEVAL_LOSS_ONLY`)."""
        theta = SP.check_theta(self.theta)
        d = check_int("d", self.d, 3)
        m = d if self.m is None else check_int("m", self.m, 1)
        eta = check_positive("eta", self.eta)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("polar", self.polar, POLARS)
        check_choice("init", self.init, INITS)
        c0 = check_positive("init_scale", self.init_scale)
        if self.init == "identity" and m != d:
            raise ValueError(f"init='identity' needs m = d, got m = {m}, d = {d} (use init='orthogonal' or 'gaussian')")
        check_int("batch", self.batch, 1)
        steps = _default_steps(m, eta, c0) if self.steps is None else check_int("steps", self.steps, 1)
        flags.check_seed(self.seed, self.seeds)
        check_int("n_record", self.n_record, 2)
        check_positive("tol", self.tol)
        if not isinstance(self.phase_diagram, bool):
            raise ValueError(f"phase_diagram must be True or False, got {self.phase_diagram!r}")
        model = resolved_model(self.loss, self.model)
        if not model.is_phase_retrieval:
            raise ValueError(PHASE_RETRIEVAL_LOSS_ONLY)
        return dataclasses.replace(self, theta=theta, d=d, m=m, eta=eta, init_scale=c0, steps=steps, loss=model.loss,
                                   model=model)


def _default_steps(m: int, eta: float, c0: float) -> int:
    """The longer of GD's and SpecGD's :func:`~phasedyn.theory.spiked.default_steps`, refused (naming ``eta``)
    beyond int64."""
    try:
        steps = max(SP.default_steps("gd", m, eta, c0), SP.default_steps("specgd", m, eta, c0))
    except OverflowError:  # the default in float is inf
        steps = None
    if steps is None or steps > INT64_MAX:
        raise ValueError(f"steps: the default run length at eta = {eta:g}, m = {m}, init_scale = {c0:g} exceeds "
                         f"the int64 range [1, {INT64_MAX}]: raise eta, or give steps")
    return steps


#: the built-in spiked experiments for the main job (``phasedyn`` with no arguments)
DEFAULT_SPIKED: list[SpikedConfig] = [SpikedConfig()]


#: the help line of ``phasedyn run spiked``
HELP = "spiked covariance, GD vs SpecGD, full matrix vs reduced (a, b, c) map"


def add_parser(systems) -> None:
    """Register ``phasedyn run spiked`` on the ``run`` subparsers ``systems`` (:func:`.flags.add_run_parser`)."""
    flags.add_run_parser(systems, "spiked", SpikedConfig, HELP)


def config_from_args(args) -> SpikedConfig:
    """The resolved :class:`SpikedConfig` of parsed ``phasedyn run spiked`` arguments (``ValueError`` if invalid)."""
    return flags.config_from_args(SpikedConfig, args).resolved()
