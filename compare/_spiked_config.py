"""Arguments of ``phasedyn run spiked``: :class:`SpikedConfig` and its command-line options (docs/theory.md §3C)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from phasedyn.simulate.matrix import INITS, OPTIMIZERS, POLARS
from phasedyn.theory import spiked as SP
from phasedyn.theory.validate import check_choice, check_int, check_positive


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
        polar: SpecGD's polar factor, ``"svd"`` or ``"newton-schulz"``.
        init: ``"identity"`` (:math:`c_0 I`, needs :math:`m = d`), ``"orthogonal"`` or ``"gaussian"``.
        init_scale: :math:`c_0 > 0` (the reduced start is :math:`a = b = c = c_0` on the manifold).
        batch: SGD mini-batch size.
        steps: optimiser steps (default: :func:`phasedyn.theory.spiked.default_steps`, the longer of GD's
            and SpecGD's).
        seeds, seed: number of seeds (initialisations, SGD streams) and the seed of :math:`w^*`.
        n_record: log-spaced record points.
        tol: ``steps_to_tol`` threshold on :math:`|b|, |c|`, relative to :math:`\sqrt m`.
        phase_diagram: also compute the (θ, η) phase diagram, the θ table and their figures.
    """

    theta: float = 4.0
    d: int = 32
    m: int | None = None
    eta: float = 0.07
    optimizer: str = "gd"
    polar: str = "svd"
    init: str = "identity"
    init_scale: float = 0.01
    batch: int = 1
    steps: int | None = None
    seeds: int = 4
    seed: int = 0
    n_record: int = 200
    tol: float = 0.05
    phase_diagram: bool = True

    def resolved(self) -> "SpikedConfig":
        """Validated copy with ``m`` and ``steps`` filled in (``ValueError`` naming the parameter otherwise)."""
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
        steps = (max(SP.default_steps("gd", m, eta, c0), SP.default_steps("specgd", m, eta, c0))
                 if self.steps is None else check_int("steps", self.steps, 1))
        check_int("seeds", self.seeds, 1)
        check_int("seed", self.seed, 0)
        check_int("n_record", self.n_record, 2)
        check_positive("tol", self.tol)
        if not isinstance(self.phase_diagram, bool):
            raise ValueError(f"phase_diagram must be True or False, got {self.phase_diagram!r}")
        return dataclasses.replace(self, theta=theta, d=d, m=m, eta=eta, init_scale=c0, steps=steps)


#: the built-in spiked experiments for the main job (``phasedyn`` with no arguments)
DEFAULT_SPIKED: list[SpikedConfig] = [SpikedConfig()]


def add_parser(systems) -> None:
    """Register ``phasedyn run spiked`` on the ``run`` subparsers (``systems``) of :mod:`.cli`."""
    p = systems.add_parser("spiked", help="spiked covariance, GD vs SpecGD, full matrix vs reduced (a, b, c) map")
    d = SpikedConfig()
    p.add_argument("--theta", type=float, default=d.theta, help="spike strength (> -1)")
    p.add_argument("--d", type=int, default=d.d, help="dimension (>= 3)")
    p.add_argument("--m", type=int, default=None, help="width (>= 1; default d)")
    p.add_argument("--eta", type=float, default=d.eta, help="step size (> 0)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--polar", choices=POLARS, default=d.polar, help="SpecGD polar factor")
    p.add_argument("--init", choices=INITS, default=d.init)
    p.add_argument("--init-scale", type=float, default=d.init_scale, help="c0 of W(0) (> 0)")
    p.add_argument("--batch", type=int, default=d.batch, help="SGD mini-batch (>= 1)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (>= 1)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="number of seeds (>= 1)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the target w*")
    p.add_argument("--n-record", type=int, default=d.n_record, help="log-spaced record points")
    p.add_argument("--tol", type=float, default=d.tol, help="steps_to_tol threshold on |b|, |c| over sqrt(m)")
    p.add_argument("--no-phase-diagram", action="store_true",
                   help="skip the (theta, eta) phase diagram and the theta table")
    p.add_argument("--out", type=Path, default=None, help="output folder (default phasedyn-out/spiked-OPT)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args) -> SpikedConfig:
    """The :class:`SpikedConfig` of parsed ``phasedyn run spiked`` arguments (resolved: raises ``ValueError``)."""
    return SpikedConfig(theta=args.theta, d=args.d, m=args.m, eta=args.eta, optimizer=args.optimizer, polar=args.polar,
                        init=args.init, init_scale=args.init_scale, batch=args.batch, steps=args.steps,
                        seeds=args.seeds, seed=args.seed, n_record=args.n_record, tol=args.tol,
                        phase_diagram=not args.no_phase_diagram).resolved()
