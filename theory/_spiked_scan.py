r"""(C) Spiked covariance: the reduced maps iterated with every step inspected (:func:`track`: peak
:math:`|b|/|a|`, steps to tolerance, divergence), run lengths, the :math:`(\eta, \theta)` scan and the
misalignment boundary (docs/theory.md §3C)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from ._solve import Solution, iterate
from ._spiked_params import check_theta, identity_start
from ._spiked_two_layer import two_layer_system
from ._watch import PeakRatio
from .system import System
from .validate import check_choice, check_int, check_positive


@dataclasses.dataclass(frozen=True)
class Tracked:
    r"""What :func:`track` reads off a reduced map, every step inspected (arrays of shape ``batch``).

    Attributes:
        ratio0: :math:`|b_0|/|a_0|`.
        peak_ratio: :math:`\max_k |b_k|/|a_k|` over :math:`k = 0..` ``steps`` (a new maximum must beat the old by
            the relative margin :data:`PEAK_RTOL`, so that round-off does not move the peak).
        peak_step: the first :math:`k` where the maximum is reached.
        amplification: ``peak_ratio / ratio0``.
        steps_to_tol: first :math:`k` from which :math:`\max(|b_j|, |c_j|) \le` ``tol`` :math:`\cdot\sqrt m`
            for every later :math:`j \le` ``steps`` (``-1``: still above at the end).
        diverged_step: first :math:`k` with a non-finite state or :math:`|y| >` ``blowup`` (``-1``: none).
        final: state after ``steps`` steps (the last finite one if it diverged), ``(*batch, 3)``.
        solution: the :class:`~phasedyn.theory.Solution` of that one iteration: the states on ``record_steps``
            (none by default), ``stop_*``, ``watch["peak"]``.
    """

    ratio0: np.ndarray
    peak_ratio: np.ndarray
    peak_step: np.ndarray
    amplification: np.ndarray
    steps_to_tol: np.ndarray
    diverged_step: np.ndarray
    final: np.ndarray
    solution: Solution


def track(system: System, y0, params, steps: int, tol: float = 0.05, blowup: float = 1e8, *,
          record_steps=(), on_divergence: str = "stop") -> Tracked:
    r"""Iterate a reduced map ``steps`` times, inspecting every step: peak :math:`|b|/|a|`, steps to tolerance,
    divergence (:func:`~phasedyn.theory.iterate` with the ``PeakRatio`` watch, docs/theory.md §3C).

    ``y0``/``params`` as in :func:`~phasedyn.theory.iterate` (batched by their leading axes; unlike
    ``iterate`` each member may have its own ``eta`` when nothing is recorded). ``tol`` is relative to the
    target scale :math:`\sqrt m` (1 for one neuron). ``record_steps``: the steps whose states the same
    iteration also records in ``Tracked.solution`` (``()``: none; otherwise strictly increasing from 0 and
    ending at ``steps``), so that a caller who wants the curves too does not iterate the map a second time.
    ``on_divergence``: ``"stop"`` (a diverged member stops there, ``diverged_step``) or ``"raise"``
    (:class:`~phasedyn.theory.SolveError`, as in ``iterate``). One compilation per system; new values never
    recompile.
    """
    if system.kind != "map":
        raise ValueError(f"{system.name} is a flow: track() iterates maps (use a 'gd' or 'specgd' system)")
    steps = check_int("steps", steps, 1)
    tol, blowup = check_positive("tol", tol), check_positive("blowup", blowup)
    if np.size(record_steps) > 0 and np.asarray(record_steps).ravel()[-1] != steps:
        raise ValueError(f"record_steps must end at steps = {steps} (the last step tracked), "
                         f"got {np.asarray(record_steps).ravel()[-1]}")
    sol = iterate(system, y0, params, steps, record_steps=record_steps, blowup=blowup,
                  on_divergence=on_divergence, watches={"peak": PeakRatio.of(system, tol)})
    w = sol.watch["peak"]
    return Tracked(w["ratio0"], w["peak_ratio"], w["peak_step"], w["amplification"], w["steps_to_tol"],
                   np.where(sol.stop_reason == "diverged", sol.stop_step, -1), sol.y_last, sol)


def default_steps(optimizer: str, m: int, eta: float, init_scale: float, factor: float = 4.0) -> int:
    r"""A run long enough to pass the GD peak / the SpecGD turn-around, from a start of scale :math:`c_0`.

    GD: the signal escapes at :math:`t = \eta k \approx (m/12)\log(\sqrt m/c_0)`; SpecGD: every
    coefficient moves by :math:`\eta` per step, the signal needs :math:`(\sqrt m - c_0)/\eta` steps; ``"muon"``
    (Muon's quintic) the same, its steps being :math:`\eta\,p` with :math:`p \approx 0.7` for the leading
    block. ``factor`` times that.
    """
    m, eta, c0 = check_int("m", m, 1), check_positive("eta", eta), check_positive("init_scale", init_scale)
    if optimizer in ("gd", "gf", "sgd"):
        t = (m / 12) * max(np.log(np.sqrt(m) / c0), 1.0)
        return int(np.ceil(factor * t / eta))
    check_choice("optimizer", optimizer, ("gd", "gf", "sgd", "specgd", "muon"))
    return int(np.ceil(factor * max(np.sqrt(m) - c0, c0) / eta))


#: the maps :func:`scan_amplification` and :func:`boundary_bisect` scan
SCAN_OPTIMIZERS = ("gd", "specgd", "muon")


def scan_amplification(
    optimizer: Literal["gd", "specgd", "muon"], thetas, etas, m: int, d: int, init_scale: float,
    steps_factor: float = 4.0, blowup: float = 1e6,
) -> dict[str, np.ndarray]:
    r"""Amplification of :math:`|b|/|a|` over a :math:`(\eta, \theta)` grid from :math:`W(0) = c_0 I`, reduced maps.

    Returns ``{"theta", "eta", "amplification" (n_eta, n_theta), "diverged" (bool), "steps" (n_eta,)}``;
    each :math:`\eta` row runs :func:`default_steps` steps (one compilation for the whole grid). ``optimizer``:
    one of :data:`SCAN_OPTIMIZERS` (``"muon"``: SpecGD with Muon's quintic, :func:`two_layer_system`).
    """
    check_choice("optimizer", optimizer, SCAN_OPTIMIZERS)
    thetas = np.asarray(thetas, float)
    etas = np.asarray(etas, float)
    for t_ in thetas:
        check_theta(float(t_))
    system = two_layer_system(optimizer)
    amp = np.empty((etas.size, thetas.size))
    div = np.zeros_like(amp, dtype=bool)
    nsteps = np.empty(etas.size, dtype=np.int64)
    y0 = system.pack_state(identity_start(init_scale))
    for i, e in enumerate(etas):
        p = np.stack([thetas, np.full_like(thetas, m), np.full_like(thetas, d), np.full_like(thetas, e)], -1)
        nsteps[i] = default_steps(optimizer, m, float(e), init_scale, steps_factor)
        tr = track(system, y0, p, int(nsteps[i]), blowup=blowup)
        amp[i], div[i] = tr.amplification, tr.diverged_step >= 0
    return {"theta": thetas, "eta": etas, "amplification": amp, "diverged": div, "steps": nsteps}


#: amplification above this counts as misaligned (1 + a margin for round-off in a ratio that stays at 1)
MISALIGNED_LEVEL = 1.0 + 1e-9


def boundary_bisect(
    optimizer: Literal["gd", "specgd", "muon"], etas, m: int, d: int, init_scale: float, lo: float = 0.5, hi: float = 8.0,
    iters: int = 40, level: float = MISALIGNED_LEVEL, steps_factor: float = 4.0,
) -> np.ndarray:
    r"""Per :math:`\eta`, the smallest :math:`\theta \in [lo, hi]` whose amplification exceeds ``level``, on the
    reduced map from :math:`W(0) = c_0 I`: the first of 33 equispaced :math:`\theta` above ``level`` (and not
    diverged) brackets the crossing with its left neighbour, then ``iters`` bisections refine it.

    NaN where no :math:`\theta` in the bracket is misaligned without diverging (e.g. SpecGD); ``lo`` where
    ``lo`` already is.
    """
    check_choice("optimizer", optimizer, SCAN_OPTIMIZERS)
    system = two_layer_system(optimizer)
    y0 = system.pack_state(identity_start(init_scale))
    etas = np.atleast_1d(np.asarray(etas, float))
    out = np.full(etas.size, np.nan)

    def amp(thetas: np.ndarray, e: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        p = np.stack([thetas, np.full_like(thetas, m), np.full_like(thetas, d), np.full_like(thetas, e)], -1)
        tr = track(system, y0, p, steps)
        return tr.amplification, tr.diverged_step >= 0

    for i, e in enumerate(etas):
        steps = default_steps(optimizer, m, float(e), init_scale, steps_factor)
        cands = np.linspace(lo, hi, 33)
        a_c, d_c = amp(cands, float(e), steps)
        ok = (a_c > level) & ~d_c
        if not ok.any():
            continue
        if ok[0]:
            out[i] = lo
            continue
        j = int(np.argmax(ok))  # first misaligned, non-diverged candidate: bisect in [cands[j - 1], cands[j]]
        if d_c[j - 1]:
            out[i] = cands[j]
            continue
        left, right = float(cands[j - 1]), float(cands[j])
        for _ in range(check_int("iters", iters, 1)):
            mid = 0.5 * (left + right)
            (a_mid,), _ = amp(np.array([mid]), float(e), steps)
            left, right = (left, mid) if a_mid > level else (mid, right)
        out[i] = 0.5 * (left + right)
    return out


def boundary(thetas: np.ndarray, amplification: np.ndarray, diverged: np.ndarray | None = None,
             level: float = MISALIGNED_LEVEL) -> np.ndarray:
    r"""Per row, the smallest :math:`\theta` where ``amplification`` first exceeds ``level`` (linear interpolation
    between grid points, in :math:`\theta`); NaN where no (non-diverged) point of the row does."""
    thetas = np.asarray(thetas, float)
    amp = np.asarray(amplification, float)
    div = np.zeros_like(amp, bool) if diverged is None else np.asarray(diverged, bool)
    out = np.full(amp.shape[0], np.nan)
    for i, row in enumerate(amp):
        above = (row > level) & ~div[i]
        if not above.any():
            continue
        j = int(np.argmax(above))
        if j == 0 or div[i, j - 1]:
            out[i] = thetas[j]
            continue
        f0, f1 = row[j - 1] - level, row[j] - level
        out[i] = thetas[j - 1] + (thetas[j] - thetas[j - 1]) * (-f0) / (f1 - f0)
    return out
