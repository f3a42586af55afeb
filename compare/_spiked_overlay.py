r"""Spiked covariance: the reduced two-layer map over the full-matrix simulation, as an :class:`~.overlay.Overlay`
(docs/theory.md §3C, §4).

:func:`overlay_spiked` trains :math:`W \in \mathbb R^{m\times d}` (:func:`phasedyn.simulate.matrix.run_matrix`, which
never imports the theory's equations) and iterates the reduced map of :mod:`phasedyn.theory.spiked` **per seed from
that seed's own** :math:`(a, b, c)` **at step 0**, on the same step grid. On the invariant manifold (``init``
``"identity"``, or ``"orthogonal"`` with :math:`m = d`) the two agree to round-off; off it (``"gaussian"``,
:math:`m < d`, online SGD) the gap measures how far the reduced model still holds. Online SGD is compared with the
population-GD map (its mean, without the :math:`O(\eta)` noise).

The curves carry the common statistics ``u``, ``s``, ``loss``, ``mse`` (the two-layer system's observables,
:func:`phasedyn.theory.spiked.matrix_statistics`; the simulation's ``u``, ``s``, ``mse`` are the same functions of
its recorded :math:`a, b, c`, exact for any :math:`W`, and its ``loss`` is its own population loss), the
coefficients :math:`|a|, |b|, |c|`, and, on the simulation side only, ``alignment`` and ``off``.
"""

from __future__ import annotations

import numpy as np

from phasedyn.simulate import log_step_grid
from phasedyn.simulate.matrix import OPTIMIZERS, POLARS, MatrixTrajectory, run_matrix
from phasedyn.theory import spiked as SP
from phasedyn.theory.validate import check_choice, check_int

from ._interrupt import check_complete
from .overlay import STATS, Overlay
from .phases import first_crossing

#: the reduced coefficients, overlaid as :math:`|a|, |b|, |c|` (the simulation measures norms)
COEFFICIENTS = ("a", "b", "c")
#: the simulation's own curves beyond the compared ones
SIM_ONLY = ("alignment", "off")
#: ``t_escape``: first time the seed-mean :math:`u = |a|/\sqrt m` reaches this level (half the target's)
ESCAPE_LEVEL = 0.5


def reduced_optimizer(optimizer: str, polar: str = "svd") -> str:
    """The two-layer reduced map a full-matrix run is compared with: ``"gd"`` for GD and SGD, ``"specgd"`` (the
    sign map) for SpecGD with the exact polar factor (``"svd"``) or Newton–Schulz run to convergence, ``"muon"``
    for SpecGD with Muon's quintic (:func:`phasedyn.theory.spiked.muon_block_polar`)."""
    if optimizer != "specgd":
        return "gd"
    return "muon" if polar == "muon" else "specgd"


def overlay_spiked(
    problem, optimizer: str, eta: float, steps: int, m: int, init: str = "identity", init_scale: float | None = None,
    seeds: int = 4, polar: str = "svd", batch: int = 1, tol: float = 0.05, n_record: int = 200,
    progress: bool | None = None, model=None, checkpoint=None, resume=None,
) -> Overlay:
    r"""Simulate ``problem`` (a spiked :class:`~phasedyn.theory.Problem`) and overlay the reduced map.

    The theory starts per seed from the simulation's own :math:`(a, b, c)` at step 0; the reduced system
    needs :math:`v = e_1 \perp w^*` (checked: ``ValueError`` otherwise). ``optimizer="sgd"`` is compared with
    the population-GD map, SpecGD with ``polar="muon"`` with the reduced map of Muon's quintic
    (:func:`reduced_optimizer`). That map amplifies round-off (by :math:`10^4`-:math:`10^5` within 20-45 steps
    at :math:`\eta = 0.07`, :math:`d = m = 32`), so on the manifold the curves agree to round-off through the
    escape and the peak of :math:`|b|/|a|` and then separate at the rate the map itself sets. Records on the log grid of ``n_record`` steps plus each record step's predecessor.
    ``init_scale``: :math:`c_0` of :math:`W(0)`, ``None`` for :func:`~phasedyn.simulate.matrix.run_matrix`'s default
    (the simulation owns the start; the value used is in ``params``). Other arguments as in ``run_matrix``.

    Returns the common :class:`~.overlay.Overlay`: ``phases()`` gives ``T1`` and ``T2`` (``T1p`` is ``None``: the
    two-layer saddles with :math:`u = 0` lie at several levels of :math:`s`), and ``measured()`` the spiked
    measurements of :func:`measurements`.

    ``model``: the :class:`~phasedyn.theory.Model` (``None``: phase retrieval). The two-layer map is derived for
    phase retrieval only, so another loss is refused here (``ValueError``) before anything runs.

    ``checkpoint``, ``resume``: the simulation's (``run_matrix``); a SIGINT that stops it raises
    :class:`~._interrupt.Interrupted` (partial trajectory) before the reduced map is iterated.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("polar", polar, POLARS)
    system = SP.system(None, reduced_optimizer(optimizer, polar), model, network="two_layer")
    if problem.kind != "spiked":
        raise ValueError("overlay_spiked needs a spiked problem (phasedyn.theory.spiked_problem), "
                         f"got kind {problem.kind!r}")
    v = np.zeros(problem.d)
    v[0] = 1.0
    SP.check_geometry(problem.w_star, v)
    theta = float(problem.meta["theta"])
    grid = log_step_grid(check_int("steps", steps, 1), check_int("n_record", n_record, 2))
    # each record step k comes with k - 1, so that figures can show the envelope of SpecGD's period-2 chatter
    record = np.unique(np.concatenate([grid, np.maximum(grid - 1, 0)]))
    start = {} if init_scale is None else {"init_scale": init_scale}
    traj = run_matrix(problem, optimizer, eta, steps, m, init, seeds=seeds, spikes=v, polar=polar, batch=batch,
                      tol=tol, record_steps=record, progress=progress, checkpoint=checkpoint, resume=resume, **start)
    check_complete(traj)
    y_sim = np.stack([traj.stats[k] for k in COEFFICIENTS], axis=-1)  # (n_seeds, n_t, 3)
    n_seeds = y_sim.shape[0]
    p = system.pack_params(SP.spiked_params(system, theta, m, problem.d, eta))
    p = np.broadcast_to(p, (n_seeds, p.size))
    # one iteration of the map gives both the recorded curves and the every-step statistics (peak, tolerance)
    tracked = SP.track(system, y_sim[:, 0], p, int(steps), tol=tol, record_steps=traj.steps, on_divergence="raise")
    sol = tracked.solution
    theory = {k: sol[k] for k in STATS} | {k: np.abs(sol[k]) for k in COEFFICIENTS}
    observed = SP.observe(system, y_sim, p[:, None, :])
    sim = {k: traj.stats[k] if k == "loss" else observed[k] for k in STATS}
    sim |= {k: traj.stats[k] for k in (*COEFFICIENTS, *SIM_ONLY)}
    params = {
        "theta": theta, "d": problem.d, "m": int(m), "eta": float(eta), "steps": int(steps), "optimizer": optimizer,
        "theory": system.name, "polar": polar if optimizer == "specgd" else None, "init": init,
        "init_scale": traj.config["init_scale"], "batch": batch if optimizer == "sgd" else None, "tol": float(tol),
        "seeds": traj.seeds, "n_record": int(n_record), "problem": {"kind": problem.kind, **problem.meta},
    }
    return Overlay(system.name, traj.t, theory, sim, params, np.zeros(n_seeds), problem.s_star, None,
                   steps=traj.steps, measurements=measurements(traj.t, theory, sim, tracked, traj, float(eta)))


def measurements(t: np.ndarray, theory: dict, sim: dict, tracked: SP.Tracked, traj: MatrixTrajectory,
                 eta: float) -> dict[str, dict[str, float | None]]:
    r"""The spiked measurements, each ``{"theory", "simulation"}`` (means over seeds; times :math:`t = \eta k`).

    * ``peak_ratio``: :math:`\max_k |b_k|/|a_k|` over every step (``tracked`` for the theory, the simulation's own
      running maximum); ``amplification``: ``peak_ratio`` over its value at step 0; ``t_peak``: time of the peak;
    * ``alignment_final``: simulation :math:`|\hat w\cdot u_1|` of the top right singular vector at the end;
      theory 1 if :math:`|a| > |b|, |c|` at the end, else 0;
    * ``steps_to_tol``: steps from which :math:`|b|, |c| \le` ``tol`` :math:`\sqrt m` (``None`` if some seed is
      still above at the end); ``t_tol`` the same in time;
    * ``t_escape``: first time the seed-mean :math:`u = |a|/\sqrt m` reaches :data:`ESCAPE_LEVEL` (``None``: never).
    """
    th_final = np.abs(tracked.final)
    th_align = (th_final[:, 0] > np.maximum(th_final[:, 1], th_final[:, 2])).astype(float)

    def to_tol(x: np.ndarray) -> float | None:
        return None if np.any(x < 0) else float(np.mean(x))

    steps_to_tol = {"theory": to_tol(tracked.steps_to_tol), "simulation": to_tol(traj.steps_to_tol)}
    return {
        "peak_ratio": {"theory": float(tracked.peak_ratio.mean()), "simulation": float(traj.peak_ratio.mean())},
        "amplification": {"theory": float(tracked.amplification.mean()),
                          "simulation": float(traj.amplification.mean())},
        "t_peak": {"theory": float(eta * tracked.peak_step.mean()), "simulation": float(eta * traj.peak_step.mean())},
        "alignment_final": {"theory": float(th_align.mean()),
                            "simulation": float(traj.stats["alignment"][:, -1].mean())},
        "steps_to_tol": steps_to_tol,
        "t_tol": {k: None if x is None else eta * x for k, x in steps_to_tol.items()},
        "t_escape": {"theory": first_crossing(t, theory["u"].mean(axis=0), ESCAPE_LEVEL),
                     "simulation": first_crossing(t, sim["u"].mean(axis=0), ESCAPE_LEVEL)},
    }
