r"""``phasedyn reproduce p1``: regenerate the experiments of [P1] (arXiv:2511.18661), docs/theory.md §3(B).

One function per experiment; each simulates (population GD or online SGD, every run seeded: target
:math:`w^*` by ``seed``, initialisation :math:`j` by seed :math:`j`, SGD samples by
``jax.random.key(j)``), solves the theory **per seed from that seed's own** :math:`w(0)`, reads phases
and exponents off both curves with the same detector and fit (docs/theory.md §4), and writes into
``DIR/p1/<name>/``: ``config.json``, ``results.json``, ``results.npz`` and PNG + PDF figures.
:func:`reproduce_p1` runs them all and writes ``DIR/p1/REPORT.md``.

=====  =====================================================  =====================================
name   [P1]'s experiment                                      claim / equation reproduced
=====  =====================================================  =====================================
E1     Fig. 2: a = 2, d = 1000, GD η = 1e-2, 1e7 steps         the three phases in (u, s, MSE)
E2     u(t) for a ∈ {1.5, 2, 3, 4}, d = 1000, GD η = 1e-3      Phase I: u ∝ e^{ρt}, ρ the root > 4λ₁ of
                                                              1 = 8Σ(w*_i)²λ_i²/(ρ − 4λ_i);
                                                              T₁ ≈ log(δ/|u₀|)/ρ = Θ(log d)
E3     Phase III at d = 300 (a = 2)                           MSE(T₂+τ) ≈ MSE(T₂)·S_d(τ),
                                                              S_d ≈ 1 − Γ(1−1/a)x/d in 1 ≪ x ≪ d
E4     online SGD, a ∈ {0.5, 1, 1.5}, noise N(0, 0.05)        the mean-field (B = d, "sgd") system
E5     log(1−u) vs log t, d ∈ {500, 2000, 5000} (a = 2)       T₂ − T₁' = O(ε^{−2a/(a−1)} log 1/ε)
=====  =====================================================  =====================================

Theory: gradient flow is the exact per-mode system by the exponential integrator
(:func:`phasedyn.theory.powerlaw.exact`); online SGD is the exact per-mode mean field
(:func:`phasedyn.theory.powerlaw.blocks` with :math:`B = d`, ``"sgd"``, label noise included). GD at
step η is compared with gradient flow, so an :math:`O(\eta)` gap is expected and reported.
``quick=True`` shrinks horizons, seeds and dimensions (for tests, < 2 min); REPORT.md says which
experiment ran at [P1]'s setting and which at a reduced one, and why.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy.integrate import solve_ivp
from scipy.sparse.linalg import LinearOperator, eigsh

from phasedyn.simulate import run
from phasedyn.simulate.run import log_step_grid
from phasedyn.theory import Problem, powerlaw_problem
from phasedyn.theory import powerlaw as PL

from .fit import growth_rate_seeds, t2_exponent_fit, t2_times, t2_window
from .output import package_version, write_outputs
from .overlay import STATS, Overlay, _sign_fixed
from .phases import detect_phases, first_crossing
from .plots import RC, SIM_COLOR, THEORY_COLOR
from .powerlaw import _shift_to, basin, curve_basin, phase3, t2_tail

PAPER = "[P1] Braun, Loureiro, Minh, Imaizumi, arXiv:2511.18661"
EXPERIMENTS = ("E1", "E2", "E3", "E4", "E5")
FOLDERS = {"E1": "e1_fig2", "E2": "e2_escape", "E3": "e3_phase3", "E4": "e4_sgd_noise", "E5": "e5_phase2"}
DELTA, EPS = 0.1, 0.05
"""Phase detector thresholds used everywhere: T1 at |u| >= DELTA, T2 with u, s within EPS of s*."""
RHO_WINDOW = (1e-4, 1e-2)
"""|u| window of the ρ fit for E2's small-init runs: deep in the linear phase (s ~ u² <= 1e-4), past the transient."""


# ----------------------------------------------------------------------------- configurations
@dataclasses.dataclass(frozen=True)
class E1Config:
    """[P1] Fig. 2: a = 2, d = 1000, population GD at η = 1e-2 for 1e7 steps (paper setting by default)."""

    a: float = 2.0
    d: int = 1000
    eta: float = 1e-2
    steps: int = 10**7
    seeds: int = 1
    seed: int = 0
    n_record: int = 400
    paper_steps: int = 10**7
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E2Config:
    """u(t) through escape for several a at d = 1000, GD η = 1e-3 (unit-sphere start, [P1]'s), plus a run from
    ``small_init`` × the same directions, whose long linear phase lets the slope ρ be fitted."""

    a_values: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0)
    d: int = 1000
    eta: float = 1e-3
    steps: int = 50_000
    seeds: int = 4
    seed: int = 0
    small_init: float = 1e-6
    n_record: int = 300
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E3Config:
    """Phase III at d = 300, a = 2: GD η = 1e-2 against gradient flow, past the time every direction is learned."""

    a: float = 2.0
    d: int = 300
    eta: float = 1e-2
    steps: int = 2 * 10**6
    seeds: int = 2
    seed: int = 0
    n_record: int = 400
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E4Config:
    """Online SGD for a ∈ {0.5, 1, 1.5} with label noise of *variance* 0.05 (σ = √0.05), mean-field theory."""

    a_values: tuple[float, ...] = (0.5, 1.0, 1.5)
    d: int = 500
    eta: float = 0.02
    steps: int = 150_000
    seeds: int = 4
    seed: int = 0
    noise_var: float = 0.05
    n_record: int = 300
    align: float = DELTA
    rtol: float = 1e-8
    dpi: int = 300


@dataclasses.dataclass(frozen=True)
class E5Config:
    """Phase II, log(1 − u) vs log t for several d (a = 2): exact GF for every d, GD simulation for ``sim_d``."""

    a: float = 2.0
    d_values: tuple[int, ...] = (500, 2000, 5000)
    sim_d: tuple[int, ...] = (500, 2000, 5000)
    eta: float = 1e-2
    steps: int = 10**6
    seeds: int = 2
    seed: int = 0
    n_record: int = 300
    rtol: float = 1e-8
    dpi: int = 300


FULL = {"E1": E1Config(), "E2": E2Config(), "E3": E3Config(), "E4": E4Config(), "E5": E5Config()}
_Q = {"rtol": 1e-6, "dpi": 150}  # --quick: looser theory tolerance (same numbers to ~4 digits), lighter PNGs
QUICK = {  # E3 and E5's d = 300, E1 and E5's d = 1000 share grid and batch shapes: one compilation each
    "E1": E1Config(steps=10**5, n_record=200, **_Q),
    "E2": E2Config(steps=20_000, seeds=2, n_record=200, **_Q),
    "E3": E3Config(steps=10**5, seeds=1, n_record=200, **_Q),
    "E4": E4Config(d=200, steps=15_000, seeds=2, n_record=200, **_Q),
    "E5": E5Config(d_values=(300, 1000), sim_d=(300,), steps=10**5, seeds=1, n_record=200, **_Q),
}


def configs(quick: bool = False) -> dict[str, Any]:
    """The configuration of each experiment: [P1]'s (or the largest practical) setting, or the ``--quick`` one."""
    return dict(QUICK if quick else FULL)


# ----------------------------------------------------------------------------- shared machinery
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
    sim = {"u": traj.stats["u1"], "s": traj.stats["s1"], "loss": traj.stats["loss"], "mse": traj.stats["mse"]}
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
    r"""[P1]'s predictions: :math:`\rho` (secular equation, :func:`~phasedyn.theory.powerlaw.escape_rate`), the same
    as the top eigenvalue of :math:`M` by Lanczos (matrix-free, an independent check), :math:`T_1 =
    \log(\delta/|u_0|)/\rho` for the mean :math:`|u_0|`, and the Phase-II exponent :math:`2a/(a-1)` (a > 1).
    Same keys as :func:`phasedyn.compare.powerlaw.predictions`, without its dense eigen-solve."""
    a = problem.meta.get("a")
    rho = PL.escape_rate(problem)
    v, D = problem.lam * problem.w_star, 4 * problem.s_star * problem.lam
    op = LinearOperator((problem.d, problem.d), matvec=lambda x: D * x.ravel() + 8 * v * (v @ x.ravel()),
                        dtype=float)
    rho_eig = float(eigsh(op, k=1, which="LA", tol=1e-13, v0=np.ones(problem.d))[0][0])
    return {"rho": rho, "rho_eig": rho_eig, "T1": PL.escape_time(u0, rho, DELTA) if u0 > 0 else None,
            "T2_exponent": PL.t2_exponent(a) if a is not None and a > 1 else None,
            "asymptotics_apply": bool(a is not None and a > 1)}


def linear_escape_time(problem: Problem, w0: np.ndarray, delta: float = DELTA, t_max: float = 1e4) -> float | None:
    r"""T1 of the Phase-I linearisation itself: the first :math:`t` with :math:`|u(t)| = \delta` for
    :math:`\dot w = Mw`, :math:`M = 4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top` (gradient flow at :math:`s = 0`),
    :math:`u = (\Sigma w^*)^\top w`. It differs from [P1]'s :math:`\log(\delta/|u_0|)/\rho` only through the weight of
    :math:`w_0` on the top eigenvector of :math:`M` (an :math:`O(1)/\rho` shift), so it separates the prefactor
    from the rate. Matrix-free (the spectrum of M lies in :math:`[4s^*\lambda_d, \rho]`: not stiff): DOP853 with a
    terminal event. ``None`` if not reached by ``t_max``."""
    v, D = problem.lam * problem.w_star, 4 * problem.s_star * problem.lam
    w0 = np.asarray(w0, float)
    if abs(v @ w0) >= delta:
        return 0.0
    event = lambda t, w: abs(v @ w) - delta  # noqa: E731
    event.terminal, event.direction = True, 1.0
    sol = solve_ivp(lambda t, w: D * w + 8 * v * (v @ w), (0.0, t_max), w0, method="DOP853", rtol=1e-10,
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


def _rel(x: float | None, ref: float | None) -> float | None:
    return None if x is None or ref is None or ref == 0 else float(x / ref - 1.0)


def measure(problem: Problem, ov: Overlay, exponent: bool = True) -> dict:
    """Everything compared in the report for one overlay: [P1]'s predictions, measured ρ (theory and
    simulation, same fit window), phases (same detector), Phase-II exponent fits, theory–simulation gaps."""
    a = problem.meta.get("a")
    pred = p1_predictions(problem, float(np.mean(np.abs(ov.sim["u"][:, 0]))))
    rho = {"theory": growth_rate_seeds(ov.t, ov.theory["u"], DELTA),
           "simulation": growth_rate_seeds(ov.t, ov.sim["u"], DELTA)}
    p2 = {"theory": None, "simulation": None}
    if exponent and a is not None and a > 1:
        p2 = {"theory": t2_exponent_fit(ov.t, ov.theory["u"], ov.theory["s"], problem.d, a, problem.s_star),
              "simulation": t2_exponent_fit(ov.t, ov.sim["u"], ov.sim["s"], problem.d, a, problem.s_star)}
    return {
        "predictions": pred,
        "u0_mean_abs": float(np.mean(np.abs(ov.sim["u"][:, 0]))),
        "rho": rho,
        "rho_rel_err": {k: _rel(v and v["value"], pred["rho"]) for k, v in rho.items()},
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
    """One line of REPORT.md's table (numbers only; formatting in :func:`write_report`)."""
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


def _arrays(ov: Overlay, prefix: str, problem: Problem | None = None) -> dict[str, np.ndarray]:
    out = {f"{prefix}t": ov.t}
    for k in STATS:
        out[f"{prefix}theory_{k}"] = ov.theory[k]
        out[f"{prefix}sim_{k}"] = ov.sim[k]
    if problem is not None:
        out[f"{prefix}spectrum"] = problem.lam
        out[f"{prefix}w_star"] = problem.w_star
        out[f"{prefix}w0"] = problem.w0_batch(ov.params["seeds"])
    return out


def _json_default(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x)}")


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return path


def _start(folder: Path, name: str, cfg: Any, quick: bool, setting: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "config.json", {"experiment": name, "paper": PAPER, "mode": "quick" if quick else "full",
                                         "config": dataclasses.asdict(cfg), "setting": setting,
                                         "delta": DELTA, "eps": EPS, "version": package_version()})


def _finish(folder: Path, name: str, rows: list[dict], details: dict, arrays: dict, figs: list[Path],
            setting: dict, start: float, warn: list[str]) -> dict:
    wall = time.perf_counter() - start
    for r in rows:
        r["wall_s"] = wall
    np.savez_compressed(folder / "results.npz", **arrays)
    res = {"experiment": name, "setting": setting, "rows": rows, "details": details, "warnings": warn,
           "wall_time_s": round(wall, 2)}
    _write_json(folder / "results.json", res)
    res["files"] = [folder / "config.json", folder / "results.json", folder / "results.npz", *figs]
    return res


def _save(fig: Figure, folder: Path, stem: str, dpi: int = 300) -> list[Path]:
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def _band(ax, t: np.ndarray, y: np.ndarray, color: str, label: str | None = None, lw: float = 1.0,
          positive: bool = False) -> None:
    """Seed mean (solid) with ± sd band of a ``(n_seeds, n_t)`` array on the t > 0 part of the grid."""
    pos = t > 0
    m, sd = y.mean(0), y.std(0)
    lo = m - sd
    if positive:  # log axis: a band reaching 0 would drag the axis to 1e-300; clip it at a fifth of the mean
        lo = np.maximum(lo, 0.2 * m)
        m = np.where(m > 0, m, np.nan)
    ax.fill_between(t[pos], lo[pos], (m + sd)[pos], color=color, alpha=0.2, lw=0)
    ax.plot(t[pos], m[pos], color=color, lw=lw, label=label)


def _phase_lines(ax, phases: dict, keys: tuple[str, ...] = ("T1", "T1p", "T2")) -> None:
    styles = {"T1": ":", "T1p": (0, (5, 2)), "T2": "-."}
    for k in keys:
        for who, color in (("theory", THEORY_COLOR), ("simulation", SIM_COLOR)):
            tt = phases[k][who]
            if tt is not None and tt > 0:
                ax.axvline(tt, color=color, ls=styles[k], lw=0.7, alpha=0.7)


def _setting(paper: bool, note: str, complete: bool = True) -> dict:
    """``paper``: ran at [P1]'s setting as docs/theory.md states it (not reduced); ``complete``: docs/theory.md states all of
    it (otherwise the unstated parameters, named in ``note``, are our choice)."""
    return {"paper": paper, "complete": bool(paper and complete), "note": note}


# ----------------------------------------------------------------------------- E1
def e1_fig2(cfg: E1Config, out: Path, quick: bool = False, progress: bool | None = None) -> dict:
    r"""[P1] Fig. 2: population GD, a = 2, d = 1000, η = 1e-2 for 1e7 steps (t = 1e5): u, s and MSE.

    Claim: three phases — escape (:math:`|u|` grows like :math:`e^{\rho t}` up to :math:`T_1`), Phase II
    (:math:`s \ge 1/3` from :math:`T_1'`, u, s reach :math:`[1-\varepsilon, 1]` at :math:`T_2`), Phase III
    (slow spectral-tail decay of the MSE, :math:`\mathrm{MSE}(T_2+\tau) \approx \mathrm{MSE}(T_2)S_d(\tau)`).
    Theory: exact per-mode gradient flow from each seed's :math:`w(0)` (GD at η = 1e-2: an O(η) gap).
    """
    start = time.perf_counter()
    folder = out / FOLDERS["E1"]
    paper = cfg.steps >= cfg.paper_steps and (cfg.a, cfg.d, cfg.eta) == (2.0, 1000, 1e-2)
    note = (f"a = 2, d = 1000, GD η = 1e-2, {cfg.paper_steps:.0e} steps; {cfg.seeds} seed(s)"
            if paper else f"reduced: {cfg.steps:.0e} steps instead of {cfg.paper_steps:.0e}"
            + (" (--quick)" if quick else ""))
    setting = _setting(paper, note)
    _start(folder, "E1", cfg, quick, setting)
    problem, warn = make_problem(cfg.d, cfg.a, cfg.seed)
    ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress, label="e1",
                    rtol=cfg.rtol)
    m = measure(problem, ov)
    t2 = m["phases"]["T2"]["theory"]
    p3, p3a = phase3(problem, ov, t2), phase3_asymptotic_errors(problem, ov, t2)
    files = write_outputs(ov, folder, DELTA, EPS)
    figs = [*files.values(), *_fig_e1(ov, m, folder, cfg.dpi)]
    rows = [row("E1", f"a={cfg.a:g}, d={cfg.d}, GD η={cfg.eta:g}", problem, m, _p3_cell(p3, p3a),
                "ρ fit from the unit-sphere start has a short window (3|u₀| to δ); see E2 for the small-init fit")]
    return _finish(folder, "E1", rows, {"measure": m, "phase3": p3, "phase3_asymptotic": p3a},
                   _arrays(ov, "", problem), figs, setting, start, warn)


def _fig_e1(ov: Overlay, m: dict, folder: Path, dpi: int = 300) -> list[Path]:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.3), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, stat, ylabel in zip(axes, ("u", "s", "mse"), (r"overlap $u$", r"norm $s$", "MSE")):
            positive = stat == "mse"
            _band(ax, ov.t, ov.sim[stat], SIM_COLOR, f"GD (η = {ov.params['eta']:g})", positive=positive)
            ax.plot(ov.t[ov.t > 0], ov.mean("theory", stat)[ov.t > 0], color=THEORY_COLOR, ls="--", lw=1.0,
                    label="gradient flow (exact)")
            _phase_lines(ax, m["phases"])
            ax.set_xscale("log")
            if positive:
                ax.set_yscale("log")
            ax.set_xlabel(r"$t = \eta k$")
            ax.set_ylabel(ylabel)
        axes[1].axhline(1 / 3, color="0.5", lw=0.6, ls=":")
        axes[0].legend(frameon=False, loc="upper left")
        p = ov.params
        fig.suptitle(f"[P1] Fig. 2: a = {p['a']:g}, d = {p['d']}, {p['steps']:.0e} GD steps "
                     "(dotted $T_1$, dashed $T_1'$, dash-dot $T_2$; red theory, blue simulation)", fontsize=8)
        return _save(fig, folder, "fig2_u_s_mse", dpi)


# ----------------------------------------------------------------------------- E2
def e2_escape(cfg: E2Config, out: Path, quick: bool = False, progress: bool | None = None) -> dict:
    r"""Phase I for several a at d = 1000, GD η = 1e-3: :math:`u(t)` through escape, theory vs simulation.

    Claims: :math:`|u| \propto e^{\rho t}` with :math:`\rho` the unique root above :math:`4\lambda_1` of
    :math:`1 = 8\sum_i (w^*_i)^2\lambda_i^2/(\rho - 4\lambda_i)`; :math:`T_1 \approx \log(\delta/|u_0|)/\rho`
    (:math:`\Theta(\log d)`); escape is faster for larger a. Two starts per a: [P1]'s unit sphere
    (:math:`|u_0| \sim d^{-1/2}`: T1, u(t)) and the same directions scaled by ``small_init`` (a long linear
    phase: the fitted slope is compared with ρ).
    """
    start = time.perf_counter()
    folder = out / FOLDERS["E2"]
    paper = (cfg.d, cfg.eta) == (1000, 1e-3) and not quick
    note = ("d = 1000, GD η = 1e-3, a ∈ {" + ", ".join(f"{a:g}" for a in cfg.a_values)
            + f"}}, to t = {cfg.eta * cfg.steps:g}, {cfg.seeds} seeds (the list of a and the horizon are ours: "
            "docs/theory.md says 'several a', 'through escape'); "
            f"plus a start at |w(0)| = {cfg.small_init:g} (not in [P1]) for the ρ fit") if paper else (
            f"reduced (--quick): t = {cfg.eta * cfg.steps:g}, {cfg.seeds} seeds; d, η as [P1]")
    setting = _setting(paper, note, complete=False)
    _start(folder, "E2", cfg, quick, setting)
    rows, details, arrays, curves, warn = [], {}, {}, [], []
    for a in cfg.a_values:
        for init, scale in (("unit", 1.0), ("small", cfg.small_init)):
            problem, w = make_problem(cfg.d, a, cfg.seed, init_scale=scale)
            warn += w
            ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress,
                            label=f"e2-a{a:g}-{init}", rtol=cfg.rtol)
            m = measure(problem, ov, exponent=False)
            if init == "small":  # deep-linear window in |u| (see rho_fit); the house rule's fit kept alongside
                m["rho_house_rule"] = m["rho"]
                m["rho"] = {who: rho_fit(ov.t, getattr(ov, key)["u"], *RHO_WINDOW)
                            for who, key in (("theory", "theory"), ("simulation", "sim"))}
                m["rho_rel_err"] = {k: _rel(v and v["value"], m["predictions"]["rho"]) for k, v in m["rho"].items()}
            w0 = problem.w0_batch(ov.params["seeds"])
            t1_lin = [linear_escape_time(problem, w, DELTA) for w in w0]
            m["T1_linearised"] = {"per_seed": t1_lin,
                                  "mean": float(np.mean(t1_lin)) if all(x is not None for x in t1_lin) else None}
            case = f"a={a:g}, " + ("|w(0)|=1 ([P1])" if init == "unit" else f"|w(0)|={scale:g}")
            t1l = m["T1_linearised"]["mean"]
            notes = [] if t1l is None else [f"T1 of the exact linearisation {t1l:.3g}"]
            if init == "small":
                notes.append(f"ρ fitted on {RHO_WINDOW[0]:g} ≤ |u| < {RHO_WINDOW[1]:g}")
            rows.append(row("E2", case, problem, m, notes="; ".join(notes)))
            details[f"a{a:g}_{init}"] = m
            arrays.update(_arrays(ov, f"a{a:g}_{init}__"))
            curves.append((a, init, ov, m))
    figs = _fig_e2(curves, folder, cfg)
    return _finish(folder, "E2", rows, details, arrays, figs, setting, start, warn)


def _fig_e2(curves: list, folder: Path, cfg: E2Config) -> list[Path]:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.6), layout="constrained")
        ax_u, ax_log = fig.subplots(1, 2)
        colors = {a: f"C{i}" for i, a in enumerate(cfg.a_values)}
        for a, init, ov, m in curves:
            c = colors[a]
            if init == "unit":
                _band(ax_u, ov.t, ov.sim["u"], c, f"a = {a:g}")
                ax_u.plot(ov.t[ov.t > 0], ov.mean("theory", "u")[ov.t > 0], color="k", ls="--", lw=0.7)
                t1 = m["predictions"]["T1"]
                if t1:
                    ax_u.axvline(t1, color=c, ls=":", lw=0.7)
            else:
                _band(ax_log, ov.t, np.abs(ov.sim["u"]), c, f"a = {a:g}", positive=True)
                ax_log.plot(ov.t, np.abs(ov.mean("theory", "u")), color="k", ls="--", lw=0.7)
                rho, mid = m["predictions"]["rho"], math.sqrt(RHO_WINDOW[0] * RHO_WINDOW[1])
                t_mid = first_crossing(ov.t, np.abs(ov.mean("sim", "u")), mid)
                if t_mid is not None:  # slope rho through the middle of the fit window
                    tt = np.linspace(max(t_mid - math.log(mid / m["u0_mean_abs"]) / rho, 0), t_mid + 4 / rho, 50)
                    ax_log.plot(tt, mid * np.exp(rho * (tt - t_mid)), color=c, ls=":", lw=1.0)
        ax_u.plot([], [], color="k", ls="--", lw=0.7, label="gradient flow")
        ax_u.set_xscale("log")
        ax_u.set_xlabel(r"$t = \eta k$")
        ax_u.set_ylabel(r"overlap $u$ (unit-sphere start)")
        ax_u.set_title(r"$u(t)$; dotted: [P1]'s $T_1 = \log(\delta/|u_0|)/\rho$")
        ax_u.legend(frameon=False, loc="upper left")
        ax_log.set_yscale("log")
        ax_log.set_ylim(bottom=0.3 * min(m["u0_mean_abs"] for _, i, _, m in curves if i == "small"), top=2)
        ax_log.set_xlabel(r"$t = \eta k$")
        ax_log.set_ylabel(rf"$|u|$ (start $|w(0)| = {cfg.small_init:g}$)")
        ax_log.set_title(r"Phase I: dotted slope $\rho$ from the secular equation")
        fig.suptitle(f"Escape for several a: d = {cfg.d}, GD η = {cfg.eta:g} ({cfg.seeds} seeds, mean ± sd)",
                     fontsize=8)
        return _save(fig, folder, "escape_u", cfg.dpi)


# ----------------------------------------------------------------------------- E3
def e3_phase3(cfg: E3Config, out: Path, quick: bool = False, progress: bool | None = None) -> dict:
    r"""Phase III at d = 300 (a = 2): after :math:`T_2`, with :math:`u = s = 1`, :math:`\dot w = -8\Sigma(w - w^*)`
    so :math:`\mathrm{MSE}(T_2+\tau) \approx \mathrm{MSE}(T_2)S_d(\tau)`,
    :math:`S_d = \frac1d\sum_i e^{-16\lambda_i\tau}` ([P1]); against it the effective-age form
    :math:`\mathrm{MSE}(T_2)S_d(\tau_0+\tau)/S_d(\tau_0)`
    (:math:`S_d(\tau_0) = \mathrm{MSE}(T_2)/\mathrm{MSE}(0)`) and the mesoscopic asymptotic
    :math:`1 - \Gamma(1-1/a)x/d` in its window :math:`10 \le x \le d/10`. Every direction is learned at
    :math:`\tau \sim d^aH_{d,a}/16`.
    """
    start = time.perf_counter()
    folder = out / FOLDERS["E3"]
    t_all = cfg.d**cfg.a * PL.harmonic(cfg.d, cfg.a) / 16
    t_end = cfg.eta * cfg.steps
    paper = not quick and (cfg.d, cfg.a) == (300, 2.0)
    note = (f"paper's d = 300, a = 2; [P1]'s η and horizon for this figure are not in docs/theory.md: GD η = {cfg.eta:g} "
            f"(as Fig. 2) to t = {t_end:g} (every direction is learned by τ ≈ d^a H/16 = {t_all:.3g})"
            if paper else f"reduced (--quick): t = {t_end:g} < d^a H/16 = {t_all:.3g}; d, a as [P1]")
    setting = _setting(paper, note, complete=False)
    _start(folder, "E3", cfg, quick, setting)
    problem, warn = make_problem(cfg.d, cfg.a, cfg.seed)
    ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress, label="e3",
                    rtol=cfg.rtol)
    m = measure(problem, ov)
    t2 = m["phases"]["T2"]["theory"]
    p3, p3a = phase3(problem, ov, t2), phase3_asymptotic_errors(problem, ov, t2)
    files = write_outputs(ov, folder, DELTA, EPS)
    figs = [*files.values(), *_fig_e3(problem, ov, t2, folder, cfg.dpi)]
    rows = [row("E3", f"a={cfg.a:g}, d={cfg.d}, GD η={cfg.eta:g}", problem, m, _p3_cell(p3, p3a))]
    return _finish(folder, "E3", rows, {"measure": m, "phase3": p3, "phase3_asymptotic": p3a,
                                        "tau_all_learned": t_all}, _arrays(ov, "", problem), figs, setting, start,
                   warn)


def _fig_e3(problem: Problem, ov: Overlay, t2: float | None, folder: Path, dpi: int = 300) -> list[Path]:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.6), layout="constrained")
        ax_all, ax3 = fig.subplots(1, 2)
        _band(ax_all, ov.t, ov.sim["mse"], SIM_COLOR, "GD", positive=True)
        ax_all.plot(ov.t[ov.t > 0], ov.mean("theory", "mse")[ov.t > 0], color=THEORY_COLOR, ls="--",
                    label="gradient flow")
        ax_all.set_xscale("log")
        ax_all.set_yscale("log")
        ax_all.set_xlabel(r"$t = \eta k$")
        ax_all.set_ylabel("MSE")
        if t2 is not None:
            ax_all.axvline(t2, color="k", ls="-.", lw=0.7, label=r"$T_2$")
            j = int(np.searchsorted(ov.t, t2))
            tau = ov.t[j:] - ov.t[j]
            pos = tau > 0
            a = problem.meta["a"]
            for who, color, lab in (("sim", SIM_COLOR, "GD"), ("theory", THEORY_COLOR, "gradient flow")):
                mse = ov.mean(who, "mse")
                ax3.plot(tau[pos], mse[j:][pos], color=color, lw=1.0 if who == "sim" else 1.2,
                         ls="-" if who == "sim" else "--", label=lab)
            mse = ov.mean("theory", "mse")
            ax3.plot(tau[pos], PL.phase3_prediction(problem.lam, tau, mse[j])[pos], color="C2", lw=0.9,
                     label=r"[P1] MSE$(T_2)S_d(\tau)$")
            ax3.plot(tau[pos], PL.phase3_prediction(problem.lam, tau, mse[j], mse[0])[pos], color="C4", lw=0.9,
                     ls=(0, (4, 1.5)), label="effective age")
            lo, hi = PL.phase3_window(problem.d, a)
            inside = (tau >= lo) & (tau <= hi)
            if inside.any():
                ax3.plot(tau[inside], mse[j] * PL.phase3_asymptotic(tau[inside], problem.d, a), color="C1",
                         lw=2.0, alpha=0.6, label=r"$1-\Gamma(1-1/a)x/d$")
            ax3.axvspan(lo, hi, color="C1", alpha=0.08, lw=0)
            ax3.set_xscale("log")
            ax3.set_yscale("log")
            ax3.set_xlabel(r"$\tau = t - T_2$")
            ax3.set_ylabel(r"MSE$(T_2 + \tau)$")
            ax3.legend(frameon=False, loc="lower left", fontsize=6)
        ax_all.legend(frameon=False, loc="lower left")
        fig.suptitle(f"Phase III: a = {problem.meta['a']:g}, d = {problem.d} (shaded: 10 ≤ x ≤ d/10)", fontsize=8)
        return _save(fig, folder, "phase3_mse", dpi)


def _p3_cell(p3: dict | None, p3a: dict | None) -> dict | None:
    if p3 is None:
        return None
    cell = {}
    for who in ("theory", "simulation"):
        if who in p3:
            cell[who] = {"S_d": p3[who]["max_rel_err"], "effective_age": p3[who]["max_rel_err_effective_age"],
                         "asymptotic": (p3a or {}).get(who)}
    cell["asymptotic_vs_S_d"] = (p3a or {}).get("asymptotic_vs_S_d")
    return cell


# ----------------------------------------------------------------------------- E4
def e4_sgd_noise(cfg: E4Config, out: Path, quick: bool = False, progress: bool | None = None) -> dict:
    r"""Online SGD for a ∈ {0.5, 1, 1.5} with label noise :math:`\xi \sim N(0, 0.05)`, read as variance 0.05
    (:math:`\sigma = \sqrt{0.05}`), against the exact per-mode online-SGD mean field (:math:`B = d`, ``"sgd"``:
    the drift of gradient flow plus the :math:`\eta\,\mathbb E|\nabla\ell|^2` terms of docs/theory.md §2, label noise
    included). For a <= 1 [P1]'s asymptotics do not apply (the spectrum is valid; a warning is recorded).
    Theory curves are shifted in time to cross :math:`|u| = 0.1` with their simulation (escape is random).
    """
    start = time.perf_counter()
    folder = out / FOLDERS["E4"]
    sigma = math.sqrt(cfg.noise_var)
    paper = not quick
    note = (f"[P1]'s a ∈ {{0.5, 1, 1.5}} and label noise N(0, 0.05) (variance 0.05, σ = {sigma:.4g}); [P1]'s d and η "
            f"are not in docs/theory.md: d = {cfg.d}, η = {cfg.eta:g} (stable over the run; checked), "
            f"to t = {cfg.eta * cfg.steps:g}, {cfg.seeds} seeds") if paper else (
            f"reduced (--quick): d = {cfg.d}, t = {cfg.eta * cfg.steps:g}, {cfg.seeds} seeds")
    setting = _setting(paper, note, complete=False)
    _start(folder, "E4", cfg, quick, setting)
    rows, details, arrays, curves, warn = [], {}, {}, [], []
    for a in cfg.a_values:
        problem, w = make_problem(cfg.d, a, cfg.seed, sigma=sigma)
        warn += w
        raw = overlay_p1(problem, "sgd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "sgd", progress=progress,
                         label=f"e4-a{a:g}", rtol=cfg.rtol)
        m = measure(problem, raw)  # rho, T1, T2 of each curve on its own time axis
        ov = aligned(raw, cfg.align)  # gaps and figure after the random escape (docs/theory.md §4)
        m["gap_unaligned"], m["gap"], m["final"] = m["gap"], ov.gap(), ov.final()
        notes = "⚠ a ≤ 1: [P1]'s asymptotics do not apply (UserWarning recorded)" if w else ""
        fin = m["final"]
        m["final_mse_rel_gap"] = abs(fin["theory"]["mse"] - fin["simulation"]["mse"]) / fin["theory"]["mse"]
        notes += ("; " if notes else "") + (f"final MSE sim {fin['simulation']['mse']:.3g} vs mean field "
                                            f"{fin['theory']['mse']:.3g}; theory aligned at |u| = {cfg.align:g}")
        rows.append(row("E4", f"a={a:g}, SGD η={cfg.eta:g}, σ²={cfg.noise_var:g}", problem, m, notes=notes))
        details[f"a{a:g}"] = {**m, "warnings": w, "theory_shift": ov.params["theory_shift"]}
        arrays.update(_arrays(ov, f"a{a:g}__"))
        curves.append((a, ov))
    figs = _fig_e4(curves, folder, cfg)
    return _finish(folder, "E4", rows, details, arrays, figs, setting, start, warn)


def _fig_e4(curves: list, folder: Path, cfg: E4Config) -> list[Path]:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.6), layout="constrained")
        ax_m, ax_u = fig.subplots(1, 2)
        for i, (a, ov) in enumerate(curves):
            c = f"C{i}"
            lab = f"a = {a:g}" + (" (a ≤ 1)" if a <= 1 else "")
            _band(ax_m, ov.t, ov.sim["mse"], c, lab, positive=True)
            ax_m.plot(ov.t[ov.t > 0], ov.mean("theory", "mse")[ov.t > 0], color="k", ls="--", lw=0.7)
            _band(ax_u, ov.t, ov.sim["u"], c, lab)
            ax_u.plot(ov.t[ov.t > 0], ov.mean("theory", "u")[ov.t > 0], color="k", ls="--", lw=0.7)
        ax_m.plot([], [], color="k", ls="--", lw=0.7, label="mean field (B = d)")
        for ax, yl in ((ax_m, "MSE"), (ax_u, r"overlap $u$")):
            ax.set_xscale("log")
            ax.set_xlabel(r"$t = \eta k$")
            ax.set_ylabel(yl)
        ax_m.set_yscale("log")
        ax_m.legend(frameon=False, loc="lower left")
        fig.suptitle(f"Online SGD with label noise N(0, {cfg.noise_var:g}): d = {cfg.d}, η = {cfg.eta:g}, "
                     f"{cfg.seeds} seeds (theory aligned at |u| = {cfg.align:g})", fontsize=8)
        return _save(fig, folder, "sgd_noise", cfg.dpi)


# ----------------------------------------------------------------------------- E5
def e5_phase2(cfg: E5Config, out: Path, quick: bool = False, progress: bool | None = None) -> dict:
    r"""Phase II, :math:`\log(1-u)` vs :math:`\log t` for several d (a = 2). [P1]:
    :math:`T_2(\varepsilon) - T_1' = O(\varepsilon^{-2a/(a-1)}\log(1/\varepsilon))`, an *upper bound* (exponent 4
    at a = 2), valid for :math:`\varepsilon \gtrsim d^{-(a-1)/2}`. The exponent is fitted on the exact
    gradient flow (every d) and on GD simulations (``sim_d``) with :func:`~phasedyn.compare.fit.t2_exponent_fit`
    (window :math:`\varepsilon` from 0.1 to :math:`\max(d^{-(a-1)/2}, 10^{-3})`, bootstrap CI). Reported as
    measured: the exact system's exponent is well below the bound.
    """
    start = time.perf_counter()
    folder = out / FOLDERS["E5"]
    t_end = cfg.eta * cfg.steps
    paper = not quick and tuple(cfg.d_values) == (500, 2000, 5000)
    note = (f"paper's d ∈ {{500, 2000, 5000}}, a = 2; exact GF for every d and GD (η = {cfg.eta:g}) for d ∈ "
            f"{{{', '.join(map(str, cfg.sim_d))}}}; [P1]'s horizon is not in docs/theory.md: t = {t_end:g} "
            f"(past T2 at ε = d^-(a-1)/2 for every d), {cfg.seeds} seeds") if paper else (
            f"reduced (--quick): d ∈ {{{', '.join(map(str, cfg.d_values))}}} instead of {{500, 2000, 5000}}, "
            f"t = {t_end:g}, simulation only at d ∈ {{{', '.join(map(str, cfg.sim_d))}}}")
    setting = _setting(paper, note, complete=False)
    _start(folder, "E5", cfg, quick, setting)
    rows, details, arrays, curves, warn = [], {}, {}, [], []
    for d in cfg.d_values:
        problem, w = make_problem(d, cfg.a, cfg.seed)
        warn += w
        if d in cfg.sim_d:
            ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress,
                            label=f"e5-d{d}", rtol=cfg.rtol)
            m = measure(problem, ov)
        else:
            ov, m = _theory_only(problem, cfg)
        m["T2_tail"] = t2_tail(problem, ov)
        if d not in cfg.sim_d:
            m["T2_tail"]["simulation"] = None
        rows.append(row("E5", f"d={d}, a={cfg.a:g}" + ("" if d in cfg.sim_d else " (theory only)"), problem, m,
                        notes="[P1]'s exponent is an O(·) upper bound"))
        rows[-1]["tail"] = m["T2_tail"]
        details[f"d{d}"] = {**m, "simulated": d in cfg.sim_d}
        arrays.update(_arrays(ov, f"d{d}__"))
        curves.append((d, ov, m, d in cfg.sim_d))
    figs = _fig_e5(curves, folder, cfg)
    return _finish(folder, "E5", rows, details, arrays, figs, setting, start, warn)


def _theory_only(problem: Problem, cfg: E5Config) -> tuple[Overlay, dict]:
    """Exact gradient flow alone (no simulation) on the run's log grid: ``sim`` is NaN, so only theory columns count."""
    t = cfg.eta * log_step_grid(cfg.steps, cfg.n_record).astype(float)
    seeds = list(range(cfg.seeds))
    raw = theory_curves(problem, "gf", t, problem.w0_batch(seeds), rtol=cfg.rtol)
    th = _sign_fixed(raw)
    sim = {k: np.full_like(v, np.nan) for k, v in th.items()}
    ov = Overlay("p1-theory-only", t, th, sim, {"optimizer": None, "theory": "gf", "eta": cfg.eta, "seeds": seeds,
                                                "d": problem.d, "a": problem.meta["a"], "align": None,
                                                "basin_theory": curve_basin(raw["u"])},
                 np.zeros(len(seeds)), problem.s_star)
    a = problem.meta["a"]
    u0 = float(np.mean(np.abs(th["u"][:, 0])))
    pred = p1_predictions(problem, u0)
    ph = detect_phases(t, ov.mean("theory", "u"), ov.mean("theory", "s"), problem.s_star, DELTA, EPS)
    rho = growth_rate_seeds(t, th["u"], DELTA)
    m = {"predictions": pred, "u0_mean_abs": u0, "rho": {"theory": rho, "simulation": None},
         "rho_rel_err": {"theory": _rel(rho and rho["value"], pred["rho"]), "simulation": None},
         "phases": {k: {"theory": v, "simulation": None} for k, v in ph.items()},
         "T2_exponent": {"theory": t2_exponent_fit(t, th["u"], th["s"], problem.d, a, problem.s_star),
                         "simulation": None},
         "gap": {k: {"max": None, "mean": None} for k in STATS},
         "final": {"theory": {k: float(ov.mean("theory", k)[-1]) for k in STATS}, "simulation": None}}
    return ov, m


def _fig_e5(curves: list, folder: Path, cfg: E5Config) -> list[Path]:
    a = cfg.a
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.7), layout="constrained")
        ax, ax_fit = fig.subplots(1, 2)
        for i, (d, ov, m, simulated) in enumerate(curves):
            c = f"C{i}"
            pos = ov.t > 0
            gap_th = 1 - ov.mean("theory", "u")
            ax.plot(ov.t[pos], np.where(gap_th > 0, gap_th, np.nan)[pos], color=c, lw=1.2, label=f"d = {d}")
            if simulated:
                gap_sim = 1 - ov.mean("sim", "u")
                ax.plot(ov.t[pos], np.where(gap_sim > 0, gap_sim, np.nan)[pos], color=c, lw=0.8, ls=":")
            tail = m.get("T2_tail", {}).get("theory")
            if tail is not None:  # the tail-relaxation prediction (REPORT.md's Phase-II section)
                ax_fit.plot(1 / np.asarray(tail["eps"]), tail["measured"], marker="s", ls="none", ms=2.5, color=c,
                            mfc="none")
                ax_fit.plot(1 / np.asarray(tail["eps"]), tail["predicted"], color=c, ls="--", lw=0.8,
                            label=f"d = {d}: tail relaxation (□ theory), p = {tail['exponent']['predicted']:.2f}")
            eps = t2_window(d, a)
            if eps is None:
                continue
            for who, marker in (("theory", "o"), ("sim", "x")):
                if who == "sim" and not simulated:
                    continue
                cur = getattr(ov, who)
                with np.errstate(invalid="ignore"):
                    x = np.exp(np.nanmean(np.log([t2_times(ov.t, u, s, eps, ov.s_star)
                                                  for u, s in zip(cur["u"], cur["s"])]), axis=0))
                ax_fit.plot(1 / eps, x, marker=marker, ls="none", ms=3, color=c,
                            mfc="none" if who == "theory" else c)
                fit = m["T2_exponent"][who if who == "theory" else "simulation"]
                ok = np.isfinite(x) & (x > 0)
                if who == "theory" and fit is not None and ok.sum() >= 2:
                    L = np.log(1 / eps[ok])
                    c0 = np.mean(np.log(x[ok]) - fit["value"] * L)
                    ax_fit.plot(1 / eps[ok], np.exp(c0 + fit["value"] * L), color=c, lw=0.8,
                                label=f"d = {d}: p = {fit['value']:.2f} [{fit['ci95'][0]:.2f}, {fit['ci95'][1]:.2f}]")
        p = 2 * a / (a - 1)
        lo, hi = ax_fit.get_xlim()
        fits = [ln for ln in ax_fit.get_lines() if ln.get_label().startswith("d = ") and "tail" not in ln.get_label()]
        if fits:
            first = fits[0]
            x0, y0 = first.get_xdata()[0], first.get_ydata()[0]
            xx = np.geomspace(x0, hi, 10)
            ax_fit.plot(xx, y0 * (xx / x0) ** p, color="0.4", ls="--", lw=0.8, label=rf"slope $2a/(a-1) = {p:g}$")
        tt = np.geomspace(ov.t[ov.t > 0][len(ov.t) // 3], ov.t[-1], 10)
        ax.plot(tt, 0.3 * (tt / tt[0]) ** (-1 / p), color="0.4", ls="--", lw=0.8,
                label=rf"slope $-1/p$, $p = 2a/(a-1) = {p:g}$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$t$")
        ax.set_ylabel(r"$1 - u$")
        ax.set_title("solid: exact gradient flow; dotted: GD simulation")
        ax.legend(frameon=False, loc="lower left", fontsize=6)
        ax_fit.set_xscale("log")
        ax_fit.set_yscale("log")
        ax_fit.set_xlabel(r"$1/\varepsilon$")
        ax_fit.set_ylabel(r"$T_2(\varepsilon) - T_1'$")
        ax_fit.set_title(r"o theory, x GD, -- tail relaxation; [P1]'s bound $\varepsilon^{-2a/(a-1)}$")
        ax_fit.legend(frameon=False, loc="upper left", fontsize=6)
        fig.suptitle(f"Phase II, a = {a:g}: 1 − u and the time to reach [1 − ε, 1]", fontsize=8)
        return _save(fig, folder, "phase2_log1mu", cfg.dpi)


# ----------------------------------------------------------------------------- report
RUNNERS: dict[str, Callable[..., dict]] = {"E1": e1_fig2, "E2": e2_escape, "E3": e3_phase3, "E4": e4_sgd_noise,
                                           "E5": e5_phase2}
TITLES = {"E1": "Fig. 2: a = 2, d = 1000, GD η = 1e-2, u, s, MSE", "E2": "u(t) through escape for several a",
          "E3": "Phase-III approximation at d = 300", "E4": "online SGD, a ≤ 1.5, label noise N(0, 0.05)",
          "E5": "log(1 − u) vs log t, Phase-II exponent"}


def _f(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _fit_cell(fit: dict | None) -> str:
    if fit is None:
        return "—"
    return f"{fit['value']:.2f} [{fit['ci95'][0]:.2f}, {fit['ci95'][1]:.2f}]"


def _p3_text(cell: dict | None) -> str:
    if not cell:
        return "—"
    parts = []
    for key, lab in (("S_d", "S_d"), ("effective_age", "eff. age"), ("asymptotic", "asympt.")):
        th = cell.get("theory", {}).get(key)
        si = cell.get("simulation", {}).get(key)
        parts.append(f"{lab} {_f(th, '.2g')}/{_f(si, '.2g')}")
    return "; ".join(parts)


def write_report(results: dict[str, dict], out: Path, quick: bool, total_s: float) -> Path:
    """``REPORT.md``: one table of [P1]'s predictions against theory and simulation (a row per case, every row
    starting with its experiment), the Phase-III errors, run times, and a line per experiment on its setting."""
    lines = [f"# Reproducing {PAPER}", "",
             f"Mode: **{'quick (--quick: reduced everywhere)' if quick else 'full'}**; phasedyn {package_version()}; "
             f"total run time {total_s:.0f} s. Phase detector (same for theory and simulation): "
             f"T1 at |u| ≥ {DELTA}, T2 when u and s are within {EPS} of s* = 1. Times are model time t = ηk.",
             "", "Theory: exact per-mode gradient flow (exponential integrator) for GD runs (so an O(η) gap is "
             "expected), the exact per-mode online-SGD mean field for SGD runs; always solved from each seed's own "
             "w(0). ρ [P1]: root of 1 = 8Σ(w*_i)²λ_i²/(ρ − 4λ_i); T1 [P1]: log(δ/|u₀|)/ρ with the seeds' mean "
             "|u₀|; measured ρ: slope of log|u| between 3|u₀| and δ (mean over seeds); p: Phase-II exponent "
             "fitted on T2(ε) − T1' ∝ ε^(−p), 95% bootstrap CI; [P1]'s p = 2a/(a − 1) is an O(·) upper bound. "
             "Phase III: max relative error after T2 of MSE(T2)·S_d(τ) ([P1]), of the effective-age form, and of "
             "the asymptotic 1 − Γ(1 − 1/a)x/d inside 10 ≤ x ≤ d/10 (theory/simulation). max|Δu|: largest gap "
             "between the seed-mean u curves of theory and simulation.", "",
             "| Exp. | case | ρ [P1] | ρ theory | ρ sim | T1 [P1] | T1 theory | T1 sim | T2 theory | T2 sim | "
             "p [P1] | p theory [95% CI] | p sim [95% CI] | Phase III max rel. err. (theory/sim) | max\\|Δu\\| | "
             "run time (s) | notes |",
             "|" + "---|" * 17]
    for name in EXPERIMENTS:
        if name not in results:
            continue
        for r in results[name]["rows"]:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in [
                r["exp"], r["case"], _f(r["rho_pred"]), _f(r["rho_theory"]), _f(r["rho_sim"]), _f(r["T1_pred"]),
                _f(r["T1_theory"]), _f(r["T1_sim"]), _f(r["T2_theory"]), _f(r["T2_sim"]), _f(r["p_pred"], ".3g"),
                _fit_cell(r["p_theory"]), _fit_cell(r["p_sim"]), _p3_text(r["phase3"]), _f(r["gap_u"], ".2g"),
                f"{r['wall_s']:.0f}", r["notes"] or ""]) + " |")
    tail_rows = [r for name in EXPERIMENTS if name in results for r in results[name]["rows"] if r.get("tail")]
    if tail_rows:
        lines += ["", "## Phase II against the tail-relaxation theory", "",
                  "Beyond [P1]: after the escape the learned head follows the spectral tail adiabatically while the "
                  "tail relaxes linearly (`phasedyn.theory.powerlaw.phase2_time`: 1 − u = 4A/3 − B/2, 1 − s = 2A/3 "
                  "with the tail's deficits A, B). T2(ε) − T1' measured against it for ε from 0.02 to 10⁻³ (where "
                  "reached); p: slope of log(T2 − T1') against log(1/ε) over the same ε; a/(a − 1): the large-d "
                  "exponent (d → ∞ with the modes being learned 1 ≪ x ≪ d).", "",
                  "| case | ε range | max rel. err. of T2 (theory/sim) | p measured (theory/sim) | p predicted | "
                  "a/(a − 1) | [P1] bound 2a/(a − 1) |", "|" + "---|" * 7]
        for r in tail_rows:
            th, si = r["tail"].get("theory"), r["tail"].get("simulation")
            if th is None:
                continue
            lines.append(f"| {r['case']} | {th['eps'][0]:.3g}–{th['eps'][-1]:.3g} | "
                         f"{_f(th['max_abs_rel_err'], '.2g')}/{_f(si and si['max_abs_rel_err'], '.2g')} | "
                         f"{th['exponent']['measured']:.3f}/{_f(si and si['exponent']['measured'], '.3f')} | "
                         f"{th['exponent']['predicted']:.3f} | {th['exponent_asymptotic']:.3g} | {_f(r['p_pred'], '.3g')} |")
    lines += ["", "## Settings", ""]
    for name in EXPERIMENTS:
        if name not in results:
            continue
        res = results[name]
        st = res["setting"]
        tag = ("paper setting" if st.get("complete") else "paper setting where docs/theory.md states it, the rest ours"
               if st["paper"] else "REDUCED")
        lines.append(f"- **{name}** ({TITLES[name]}) — {tag}: {res['setting']['note']}. "
                     f"Run time {res['wall_time_s']:.0f} s. Files: `{FOLDERS[name]}/`.")
        for w in sorted(set(res.get("warnings", []))):
            lines.append(f"  - warning recorded: {w}")
    path = out / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def reproduce_p1(out: Path, quick: bool = False, progress: bool | None = None,
                 only: tuple[str, ...] = EXPERIMENTS, log: Callable[[str], None] = print) -> dict:
    """Run [P1]'s experiments ``only`` (default all) into ``out/p1/`` and write ``out/p1/REPORT.md``.

    Returns ``{"results": {name: result}, "report": path, "total_s": seconds}``; each result has ``rows``,
    ``setting``, ``details``, ``wall_time_s`` and ``files``.
    """
    for name in only:
        if name not in RUNNERS:
            raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    root = Path(out) / "p1"
    root.mkdir(parents=True, exist_ok=True)
    cfgs = configs(quick)
    results, start = {}, time.perf_counter()
    for name in only:
        log(f"[{name}] {TITLES[name]} ...")
        results[name] = RUNNERS[name](cfgs[name], root, quick=quick, progress=progress)
        log(f"[{name}] done in {results[name]['wall_time_s']:.1f} s -> {(root / FOLDERS[name]).resolve()}")
    total = time.perf_counter() - start
    report = write_report(results, root, quick, total)
    return {"results": results, "report": report, "total_s": total}
