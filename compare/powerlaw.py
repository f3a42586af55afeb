r"""Power-law data: simulation against the exact per-mode, block or truncated-hierarchy theory.

:func:`overlay_powerlaw` simulates population GD or online SGD on :math:`\lambda_i \propto i^{-a}`
and solves the chosen theory **per seed from that seed's own initial weights** (the per-mode and
block systems need the full :math:`w(0)`, the hierarchy its moments), on the simulation's time
grid :math:`t = \eta k`. ``optimizer="gd"`` pairs population GD with the exact GD map (agreement to
round-off); ``"gf"`` with gradient flow (an :math:`O(\eta)` gap); ``"sgd"`` with the online-SGD mean
field. With ``align=delta`` each theory curve is shifted in time so that it crosses
:math:`|u| = \delta` when its simulation does (docs/theory.md §4).

The experiment ``phasedyn run powerlaw`` (:class:`~._powerlaw_config.PowerlawConfig`, ``run_powerlaw``,
``DEFAULT_POWERLAW``) lives in :mod:`._powerlaw_config`; those names are re-exported here (lazily: that module
imports this one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phasedyn.simulate import run
from phasedyn.simulate import SPHERES, normalise
from phasedyn.theory import Model, Problem, saddle_level
from phasedyn.theory import powerlaw as PL
from phasedyn.theory.validate import check_choice, check_positive

from ._interrupt import check_complete
from .fit import t2_tail_comparison
from .overlay import OPTIMIZERS, STATS, Overlay, _sign_fixed, _sim_curves, curve_basin, sim_rule
from .phases import first_crossing

SOLVERS = ("modes", "blocks", "hierarchy")


def _theory(problem: Problem, optimizer: str, solver: str, w0: np.ndarray, t: np.ndarray, steps: np.ndarray,
            eta: float, B: int, K: int, closure: str, model: Model) -> tuple[dict[str, np.ndarray], dict]:
    """The theory curves per seed and, for the hierarchy, where each stops being valid (``params`` fields)."""
    kw = dict(eta=None if optimizer == "gf" else eta, w0=w0, max_steps=10**7, model=model)
    if optimizer == "gd":
        kw.pop("max_steps")
        kw.update(steps=int(steps[-1]), record_steps=steps)
    else:
        kw.update(ts=t)
    if solver == "hierarchy":  # its valid part: NaN after the first invalid step (PL.hierarchy warns)
        sol = PL.hierarchy(problem, K, closure, optimizer, **kw)
        invalid = sol.stop_reason == "validity"
        validity = {"hierarchy_valid_until": [float(x) if bad else None for x, bad in zip(sol.stop_time, invalid)],
                    "hierarchy_invalid_reason": [str(r) if bad else None for r, bad in zip(sol.stop_detail, invalid)]}
        return {k: sol[k] for k in STATS}, validity
    none = {"hierarchy_valid_until": None, "hierarchy_invalid_reason": None}
    if solver == "modes" and optimizer == "gf":  # the exponential integrator: fast at any t, stiff or not
        sol = PL.exact(problem, ts=t, w0=w0, model=model)
        return {k: sol[k] for k in STATS}, none
    sol = PL.blocks(problem, None if solver == "modes" else B, optimizer, **kw)
    return {k: sol[k] for k in STATS}, none


def _shift_to(t: np.ndarray, theory: dict, sim: dict, delta: float) -> tuple[dict, np.ndarray]:
    """Shift each theory curve in time so that it crosses |u| = delta when its simulation does."""
    shifted, shifts = {k: np.empty_like(v) for k, v in theory.items()}, []
    for i in range(sim["u"].shape[0]):
        t_sim, t_th = first_crossing(t, np.abs(sim["u"][i]), delta), first_crossing(t, np.abs(theory["u"][i]), delta)
        if t_sim is None or t_th is None:
            raise ValueError(f"align = {delta}: seed index {i} never reaches |u| >= {delta}; run longer or lower align")
        shifts.append(t_sim - t_th)
        for k in theory:
            shifted[k][i] = np.interp(t - shifts[-1], t, theory[k][i])
    return shifted, np.asarray(shifts)


def overlay_powerlaw(
    problem: Problem, optimizer: str = "gd", eta: float = 1e-2, steps: int = 100_000, seeds: int = 4,
    n_record: int = 300, solver: str = "modes", B: int = 100, K: int = 16, closure: str = "top",
    align: float | None = None, progress: bool | None = None, prng: str | None = None,
    model: Model | str | None = None, checkpoint: str | Path | None = None, resume: str | Path | None = None,
) -> Overlay:
    """Simulate ``problem`` and overlay the chosen theory (see module doc); ``solver`` in {modes, blocks, hierarchy}.

    ``checkpoint``, ``resume``: the simulation's (:func:`phasedyn.simulate.run`); a SIGINT that stops it raises
    :class:`~._interrupt.Interrupted` (partial trajectory, sign-fixed curves) before any theory is computed.

    ``prng``: JAX generator of the SGD samples (:data:`phasedyn.simulate.run.PRNG_IMPLS`; ``None``: JAX's default).
    ``model``: the per-sample loss, the same for the simulation (``jax.grad``) and the theory (derived).
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("solver", solver, SOLVERS)
    if solver == "hierarchy" and "spherical" in optimizer:
        raise ValueError(f"solver 'hierarchy' has no spherical optimizer; use solver 'modes' or 'blocks' for "
                         f"{optimizer!r}")
    model = Model.coerce(model)
    traj = run(problem, sim_rule(optimizer), eta, steps, seeds=seeds, n_record=n_record,
               progress=progress, prng=prng, model=model, checkpoint=checkpoint, resume=resume)
    check_complete(traj, _sign_fixed(_sim_curves(traj)))
    eta = traj.config["eta"]  # validated once, by simulate.run (check_run), before anything runs
    sim = _sim_curves(traj)
    w0 = problem.w0_batch(traj.seeds)
    if optimizer in SPHERES:  # the start the simulation took: normalised in its norm (simulate._spherical)
        w0 = np.asarray(normalise(w0, problem.lam, SPHERES[optimizer]))
    theory, validity = _theory(problem, optimizer, solver, w0, traj.t, traj.steps, eta, B, K, closure, model)
    basin_theory = curve_basin(theory["u"])
    theory = _sign_fixed(theory)  # by its basin, before any time shift (a truncated hierarchy curve ends in NaN)
    shift = np.zeros(len(traj.seeds))
    if align is not None:
        theory, shift = _shift_to(traj.t, theory, sim, check_positive("align", align))
    params = {
        "optimizer": optimizer, "solver": solver, "B": B if solver == "blocks" else None,
        "K": K if solver == "hierarchy" else None, "closure": closure if solver == "hierarchy" else None,
        "eta": eta, "steps": int(steps), "seeds": traj.seeds, "n_record": int(n_record), "align": align,
        "d": problem.d, "a": problem.meta.get("a"), "s_star": problem.s_star, "sigma": problem.sigma,
        "problem": {"kind": problem.kind, **problem.meta}, "theory_shift": shift.tolist(),
        "simulation_optimizer": sim_rule(optimizer), "prng": traj.config["prng"],
        "basin": basin(problem, traj.w_final), "basin_theory": basin_theory, "model": model.to_dict(), **validity,
    }
    name = {"modes": "modes", "blocks": f"blocks-B{B}", "hierarchy": f"hierarchy-K{K}-{closure}"}[solver]
    kind = "powerlaw" if problem.kind in ("powerlaw", "custom") else problem.kind
    return Overlay(f"{kind}-{optimizer}-{name}{model.tag}", traj.t, theory, _sign_fixed(sim), params,
                   np.zeros(len(traj.seeds)), problem.s_star, saddle_level(problem.s_star, model, problem.sigma))


PHASE_RETRIEVAL_ONLY = PL.PHASE_RETRIEVAL_ONLY


def predictions(problem: Problem, ov: Overlay, delta: float = 0.1, model: Model | None = None) -> dict:
    """[P1]'s predictions for this problem and run (:func:`phasedyn.theory.powerlaw.predictions`), with T1 from
    the seeds' mean |u(0)| of the simulation."""
    return PL.predictions(problem, model, delta, u0=float(np.mean(np.abs(ov.sim["u"][:, 0]))))


def basin(problem: Problem, w: np.ndarray) -> list[int]:
    """Which minimum, +w* (1) or -w* (-1), each row of ``w`` lies by: the sign of u = w^T Sigma w* (before sign-fixing)."""
    return np.where(np.asarray(w) @ (problem.lam * problem.w_star) < 0, -1, 1).tolist()


def t2_tail(problem: Problem, ov: Overlay) -> dict:
    r"""Phase II of theory and simulation against the tail-relaxation prediction
    (:func:`~phasedyn.compare.fit.t2_tail_comparison`). Each seed's start is signed by the basin its *theory* curve
    ends in (``params["basin_theory"]``): the prediction takes nothing from the simulation but w(0)."""
    w0 = problem.w0_batch(ov.params["seeds"]) * np.asarray(ov.params["basin_theory"], float)[:, None]
    return {who: t2_tail_comparison(ov.t, getattr(ov, key)["u"], getattr(ov, key)["s"], problem.lam, problem.w_star,
                                    w0, problem.meta.get("a"), problem.s_star)
            for who, key in (("theory", "theory"), ("simulation", "sim"))}


def phase3(problem: Problem, ov: Overlay, t2: float | None) -> dict | None:
    r"""Phase III after ``t2``: the measured MSE(T2 + τ) against [P1]'s :math:`\mathrm{MSE}(T_2)S_d(\tau)` and the
    effective-age form (:func:`~phasedyn.theory.powerlaw.phase3_prediction`), each curve against its own
    MSE(T2) and MSE(0): max relative error over the recorded grid after ``t2``."""
    if t2 is None:
        return None
    out = {"T2": t2}
    for who in ("theory", "sim"):
        mse = ov.mean(who, "mse")
        j = int(np.searchsorted(ov.t, t2))
        if j >= ov.t.size - 2:
            return None
        tau = ov.t[j:] - ov.t[j]
        naive = PL.phase3_prediction(problem.lam, tau, mse[j])
        aged = PL.phase3_prediction(problem.lam, tau, mse[j], mse[0])
        rel = lambda pred: float(np.max(np.abs(mse[j:] - pred) / pred))  # noqa: E731
        out["theory" if who == "theory" else "simulation"] = {
            "max_rel_err": rel(naive), "max_rel_err_effective_age": rel(aged),
            "tau0": PL.phase3_effective_age(problem.lam, mse[j] / mse[0]), "tau_max": float(tau[-1])}
    return out


def __getattr__(name: str) -> object:
    """``PowerlawConfig``, ``run_powerlaw``, ``DEFAULT_POWERLAW`` from :mod:`._powerlaw_config` (see module doc)."""
    if name in ("PowerlawConfig", "run_powerlaw", "DEFAULT_POWERLAW"):
        from . import _powerlaw_config

        return getattr(_powerlaw_config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
