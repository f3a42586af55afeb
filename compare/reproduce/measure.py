r"""The theory and measurements shared by [P1]'s experiments: the problem, the per-seed theory overlaid on a
simulation, [P1]'s predictions, the fits and phases read off both curves, and a REPORT.md row of numbers."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy.integrate import solve_ivp

from phasedyn.simulate import run
from phasedyn.theory import Problem, powerlaw_problem
from phasedyn.theory import powerlaw as PL

from .._interrupt import check_complete
from ..fit import growth_rate_seeds, t2_exponent_fit
from ..overlay import STATS, Overlay, _sign_fixed, _sim_curves, curve_basin
from ..powerlaw import _shift_to, basin
from .settings import DELTA, EPS


def make_problem(d: int, a: float, seed: int = 0, sigma: float = 0.0,
                 init_scale: float = 1.0) -> tuple[Problem, list[str]]:
    """:func:`~phasedyn.theory.powerlaw_problem`, returning the warnings it raised (a <= 1) as text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem = powerlaw_problem(d, a, seed=seed, sigma=sigma, init_scale=init_scale)
    return problem, [str(w.message) for w in caught]


def theory_curves(problem: Problem, theory: str, t: np.ndarray, w0: np.ndarray, eta: float | None = None,
                  rtol: float = 1e-8) -> dict[str, np.ndarray]:
    r"""Per-seed theory on the grid ``t`` from the initial weights ``w0`` ``(n_seeds, d)``.

    ``theory="gf"``: exact per-mode gradient flow (exponential integrator); ``"sgd"``: the exact per-mode
    online-SGD mean field (:math:`B = d`, with its :math:`O(\eta)` and label-noise terms).
    """
    if theory == "gf":
        sol = PL.exact(problem, "gf", ts=t, w0=w0, max_steps=2_000_000, rtol=rtol, atol=rtol * 1e-2)
    elif theory == "sgd":
        sol = PL.blocks(problem, None, "sgd", eta=eta, ts=t, w0=w0, max_steps=2_000_000, rtol=rtol,
                        atol=rtol * 1e-2)
    else:
        raise ValueError(f"theory must be 'gf' or 'sgd', got {theory!r}")
    return {k: np.atleast_2d(sol[k]) for k in STATS}


def overlay_p1(problem: Problem, optimizer: str, eta: float, steps: int, seeds: int, n_record: int,
               theory: str = "gf", progress: bool | None = None, label: str = "", rtol: float = 1e-8) -> Overlay:
    r"""Simulate ``problem`` (``"gd"`` or ``"sgd"``) and overlay ``theory`` solved from each seed's ``w(0)``,
    both on the simulation's grid :math:`t = \eta k` (see :func:`aligned` for the time-shifted comparison)."""
    traj = run(problem, optimizer, eta, steps, seeds=seeds, n_record=n_record, progress=progress)
    sim = _sim_curves(traj)
    check_complete(traj, _sign_fixed(sim))  # a SIGINT: no theory or report from a truncated run (exit 130)
    th = theory_curves(problem, theory, traj.t, problem.w0_batch(traj.seeds), eta, rtol)
    shift = np.zeros(len(traj.seeds))
    params = {"optimizer": optimizer, "theory": theory, "eta": eta, "steps": int(steps), "seeds": traj.seeds,
              "n_record": int(n_record), "align": None, "d": problem.d, "a": problem.meta.get("a"),
              "s_star": problem.s_star, "sigma": problem.sigma, "problem": {"kind": problem.kind, **problem.meta},
              "theory_shift": shift.tolist(), "simulation_optimizer": optimizer,
              "basin": basin(problem, traj.w_final), "basin_theory": curve_basin(th["u"])}
    return Overlay(f"p1-{label}" if label else "p1", traj.t, _sign_fixed(th), _sign_fixed(sim), params,
                   np.zeros(len(traj.seeds)), problem.s_star)


def aligned(ov: Overlay, delta: float) -> Overlay:
    r"""``ov`` with each theory curve shifted in time to cross :math:`|u| = \delta` when its simulation does
    (:func:`phasedyn.compare.powerlaw._shift_to`; before the crossing the shifted curve is held at its start)."""
    th, shift = _shift_to(ov.t, ov.theory, ov.sim, delta)
    return dataclasses.replace(ov, theory=th, params={**ov.params, "align": delta, "theory_shift": shift.tolist()})


def p1_predictions(problem: Problem, u0: float) -> dict:
    r"""[P1]'s predictions (:func:`phasedyn.theory.powerlaw.predictions`, phase-retrieval loss) for the mean
    :math:`|u_0|` of the seeds, at the report's :math:`\delta`: :math:`\rho` by the secular equation and, as an
    independent check, as the top eigenvalue of :math:`4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top`;
    :math:`T_1 = \log(\delta/|u_0|)/\rho`; the Phase-II exponents (a > 1)."""
    return PL.predictions(problem, None, DELTA, u0=u0)


def linear_escape_time(problem: Problem, w0: np.ndarray, delta: float = DELTA, t_max: float = 1e4) -> float | None:
    r"""T1 of the Phase-I linearisation itself: the first :math:`t` with :math:`|u(t)| = \delta` for
    :math:`\dot w = Mw` with :math:`M` from :func:`~phasedyn.theory.powerlaw.phase1_operator` (phase retrieval:
    :math:`4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top`, gradient flow at :math:`s = 0`),
    :math:`u = (\Sigma w^*)^\top w`. It differs from [P1]'s :math:`\log(\delta/|u_0|)/\rho` only through the weight of
    :math:`w_0` on the top eigenvector of :math:`M` (an :math:`O(1)/\rho` shift), so it separates the prefactor
    from the rate. Matrix-free (the spectrum of M lies in :math:`[4s^*\lambda_d, \rho]`: not stiff): DOP853 with a
    terminal event. ``None`` if not reached by ``t_max``."""
    diag, c, v = PL.phase1_operator(problem)
    w0 = np.asarray(w0, float)
    if abs(v @ w0) >= delta:
        return 0.0
    event = lambda t, w: abs(v @ w) - delta  # noqa: E731
    event.terminal, event.direction = True, 1.0
    sol = solve_ivp(lambda t, w: diag * w + c * v * (v @ w), (0.0, t_max), w0, method="DOP853", rtol=1e-10,
                    atol=1e-14 * float(np.linalg.norm(w0)), events=event)
    return float(sol.t_events[0][0]) if sol.t_events[0].size else None


def rho_fit(t: np.ndarray, u: np.ndarray, lo: float, hi: float) -> dict | None:
    r"""Slope of :math:`\log|u|` on the window :math:`\mathrm{lo} \le |u| < \mathrm{hi}` (per seed; mean and
    95% interval like :func:`~phasedyn.compare.fit.growth_rate_seeds`). Used for the small-init runs with a
    window deep in the linear phase, fixed in :math:`|u|` rather than relative to :math:`|u_0|` (a seed whose
    :math:`u_0` is small by cancellation between modes would otherwise put the transient into the window)."""
    rates = []
    for ui in np.atleast_2d(u):
        au = np.abs(ui)
        a, b = np.flatnonzero(au >= lo), np.flatnonzero(au >= hi)
        if a.size and b.size and b[0] - a[0] >= 3:
            sl = slice(a[0], b[0])
            rates.append(float(np.polyfit(t[sl], np.log(au[sl]), 1)[0]))
    if not rates:
        return None
    r = np.asarray(rates)
    half = 1.96 * r.std(ddof=1) / np.sqrt(r.size) if r.size > 1 else float("nan")
    return {"value": float(r.mean()), "ci95": [float(r.mean() - half), float(r.mean() + half)], "n": int(r.size),
            "window_abs_u": [lo, hi]}


def rel_err(x: float | None, ref: float | None) -> float | None:
    """``x/ref - 1``, or ``None`` if either is missing or ``ref`` is 0."""
    return None if x is None or ref is None or ref == 0 else float(x / ref - 1.0)


def measure(problem: Problem, ov: Overlay, exponent: bool = True) -> dict:
    """Everything compared in the report for one overlay: [P1]'s predictions, measured ρ (theory and
    simulation, same fit window), phases (same detector), Phase-II exponent fits, theory–simulation gaps."""
    a = problem.meta.get("a")
    u0 = float(np.mean(np.abs(ov.sim["u"][:, 0])))
    pred = p1_predictions(problem, u0)
    rho = {"theory": growth_rate_seeds(ov.t, ov.theory["u"], DELTA),
           "simulation": growth_rate_seeds(ov.t, ov.sim["u"], DELTA)}
    p2 = {"theory": None, "simulation": None}
    if exponent and a is not None and a > 1:
        p2 = {"theory": t2_exponent_fit(ov.t, ov.theory["u"], ov.theory["s"], problem.d, a, problem.s_star),
              "simulation": t2_exponent_fit(ov.t, ov.sim["u"], ov.sim["s"], problem.d, a, problem.s_star)}
    return {
        "predictions": pred,
        "u0_mean_abs": u0,
        "rho": rho,
        "rho_rel_err": {k: rel_err(v and v["value"], pred["rho"]) for k, v in rho.items()},
        "phases": ov.phases(DELTA, EPS),
        "T2_exponent": p2,
        "gap": ov.gap(),
        "final": ov.final(),
    }


def phase3_asymptotic_errors(problem: Problem, ov: Overlay, t2: float | None) -> dict | None:
    r"""The mesoscopic asymptotic :math:`S_d \approx 1 - \Gamma(1-1/a)x/d` inside
    :func:`~phasedyn.theory.powerlaw.phase3_window` (:math:`10 \le x \le d/10`): max relative error of
    :math:`\mathrm{MSE}(T_2)(1 - \Gamma(1-1/a)x/d)` against each measured curve, and of the asymptotic
    against the exact :math:`S_d(\tau)` (the formula's own error). ``None`` if the window is not reached."""
    a = problem.meta.get("a")
    if t2 is None or a is None or a <= 1:
        return None
    lo, hi = PL.phase3_window(problem.d, a)
    j = int(np.searchsorted(ov.t, t2))
    if j >= ov.t.size:
        return None
    tau = ov.t[j:] - ov.t[j]
    inside = (tau >= lo) & (tau <= hi)
    if inside.sum() < 2:
        return {"window_tau": [lo, hi], "n_points": int(inside.sum())}
    asym = PL.phase3_asymptotic(tau[inside], problem.d, a)
    exact_s = PL.phase3_survival(problem.lam, tau[inside])
    out = {"window_tau": [lo, hi], "n_points": int(inside.sum()),
           "asymptotic_vs_S_d": float(np.max(np.abs(asym - exact_s) / exact_s))}
    for who, key in (("theory", "theory"), ("sim", "simulation")):
        mse = ov.mean(who, "mse")
        pred = mse[j] * asym
        out[key] = float(np.max(np.abs(mse[j:][inside] - pred) / pred))
    return out


def row(exp: str, case: str, problem: Problem, m: dict, phase3_errors: dict | None = None,
        notes: str = "") -> dict:
    """One line of REPORT.md's table (numbers only; formatting in :func:`.report.write_report`)."""
    p = m["predictions"]
    r = lambda who: m["rho"][who] and m["rho"][who]["value"]  # noqa: E731
    return {
        "exp": exp, "case": case, "d": problem.d, "a": problem.meta.get("a"),
        "rho_pred": p["rho"], "rho_theory": r("theory"), "rho_sim": r("simulation"),
        "T1_pred": p["T1"], "T1_theory": m["phases"]["T1"]["theory"], "T1_sim": m["phases"]["T1"]["simulation"],
        "T2_theory": m["phases"]["T2"]["theory"], "T2_sim": m["phases"]["T2"]["simulation"],
        "p_pred": p["T2_exponent"], "p_theory": m["T2_exponent"]["theory"], "p_sim": m["T2_exponent"]["simulation"],
        "phase3": phase3_errors, "gap_u": m["gap"]["u"]["max"], "gap_mse": m["gap"]["mse"]["max"], "notes": notes,
    }


def phase3_cell(p3: dict | None, p3a: dict | None) -> dict | None:
    """The Phase-III cell of a :func:`row`: max relative errors of [P1]'s form, the effective-age form
    (:func:`phasedyn.compare.powerlaw.phase3`, ``p3``) and the asymptotic (:func:`phase3_asymptotic_errors`,
    ``p3a``)."""
    if p3 is None:
        return None
    cell = {}
    for who in ("theory", "simulation"):
        if who in p3:
            cell[who] = {"S_d": p3[who]["max_rel_err"], "effective_age": p3[who]["max_rel_err_effective_age"],
                         "asymptotic": (p3a or {}).get(who)}
    cell["asymptotic_vs_S_d"] = (p3a or {}).get("asymptotic_vs_S_d")
    return cell
