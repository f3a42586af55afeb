"""[P1]'s five experiments E1–E5, one function each (see :mod:`phasedyn.compare.reproduce`): simulate, solve the
theory per seed, measure, write the folder's files and figures."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from phasedyn.simulate.run import log_step_grid
from phasedyn.theory import Problem, harmonic
from phasedyn.theory import powerlaw as PL

from ..fit import growth_rate_seeds, t2_exponent_fit
from ..output import write_outputs
from ..overlay import STATS, Overlay, _sign_fixed, curve_basin
from ..phases import detect_phases
from ..powerlaw import phase3, t2_tail
from . import figures
from .files import experiment_arrays, finish_folder, make_setting, start_folder
from .measure import (aligned, linear_escape_time, make_problem, measure, overlay_p1, p1_predictions,
                      phase3_asymptotic_errors, phase3_cell, rel_err, rho_fit, row, theory_curves)
from .settings import DELTA, EPS, FOLDERS, RHO_WINDOW, E1Config, E2Config, E3Config, E4Config, E5Config


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
    setting = make_setting(paper, note)
    start_folder(folder, "E1", cfg, quick, setting)
    problem, warn = make_problem(cfg.d, cfg.a, cfg.seed)
    ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress, label="e1",
                    rtol=cfg.rtol)
    m = measure(problem, ov)
    t2 = m["phases"]["T2"]["theory"]
    p3, p3a = phase3(problem, ov, t2), phase3_asymptotic_errors(problem, ov, t2)
    files = write_outputs(ov, folder, DELTA, EPS)
    figs = [*files.values(), *figures.fig_e1(ov, m, folder, cfg.dpi)]
    rows = [row("E1", f"a={cfg.a:g}, d={cfg.d}, GD η={cfg.eta:g}", problem, m, phase3_cell(p3, p3a),
                "ρ fit from the unit-sphere start has a short window (3|u₀| to δ); see E2 for the small-init fit")]
    return finish_folder(folder, "E1", rows, {"measure": m, "phase3": p3, "phase3_asymptotic": p3a},
                         experiment_arrays(ov, "", problem), figs, setting, start, warn)


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
    setting = make_setting(paper, note, complete=False)
    start_folder(folder, "E2", cfg, quick, setting)
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
                m["rho_rel_err"] = {k: rel_err(v and v["value"], m["predictions"]["rho"]) for k, v in m["rho"].items()}
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
            arrays.update(experiment_arrays(ov, f"a{a:g}_{init}__"))
            curves.append((a, init, ov, m))
    figs = figures.fig_e2(curves, folder, cfg)
    return finish_folder(folder, "E2", rows, details, arrays, figs, setting, start, warn)


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
    t_all = cfg.d**cfg.a * harmonic(cfg.d, cfg.a) / 16
    t_end = cfg.eta * cfg.steps
    paper = not quick and (cfg.d, cfg.a) == (300, 2.0)
    note = (f"paper's d = 300, a = 2; [P1]'s η and horizon for this figure are not in docs/theory.md: GD η = {cfg.eta:g} "
            f"(as Fig. 2) to t = {t_end:g} (every direction is learned by τ ≈ d^a H/16 = {t_all:.3g})"
            if paper else f"reduced (--quick): t = {t_end:g} < d^a H/16 = {t_all:.3g}; d, a as [P1]")
    setting = make_setting(paper, note, complete=False)
    start_folder(folder, "E3", cfg, quick, setting)
    problem, warn = make_problem(cfg.d, cfg.a, cfg.seed)
    ov = overlay_p1(problem, "gd", cfg.eta, cfg.steps, cfg.seeds, cfg.n_record, "gf", progress=progress, label="e3",
                    rtol=cfg.rtol)
    m = measure(problem, ov)
    t2 = m["phases"]["T2"]["theory"]
    p3, p3a = phase3(problem, ov, t2), phase3_asymptotic_errors(problem, ov, t2)
    files = write_outputs(ov, folder, DELTA, EPS)
    figs = [*files.values(), *figures.fig_e3(problem, ov, t2, folder, cfg.dpi)]
    rows = [row("E3", f"a={cfg.a:g}, d={cfg.d}, GD η={cfg.eta:g}", problem, m, phase3_cell(p3, p3a))]
    details = {"measure": m, "phase3": p3, "phase3_asymptotic": p3a, "tau_all_learned": t_all}
    return finish_folder(folder, "E3", rows, details, experiment_arrays(ov, "", problem), figs, setting, start, warn)


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
    setting = make_setting(paper, note, complete=False)
    start_folder(folder, "E4", cfg, quick, setting)
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
        arrays.update(experiment_arrays(ov, f"a{a:g}__"))
        curves.append((a, ov))
    figs = figures.fig_e4(curves, folder, cfg)
    return finish_folder(folder, "E4", rows, details, arrays, figs, setting, start, warn)


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
    setting = make_setting(paper, note, complete=False)
    start_folder(folder, "E5", cfg, quick, setting)
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
        arrays.update(experiment_arrays(ov, f"d{d}__"))
        curves.append((d, ov, m, d in cfg.sim_d))
    figs = figures.fig_e5(curves, folder, cfg)
    return finish_folder(folder, "E5", rows, details, arrays, figs, setting, start, warn)


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
         "rho_rel_err": {"theory": rel_err(rho and rho["value"], pred["rho"]), "simulation": None},
         "phases": {k: {"theory": v, "simulation": None} for k, v in ph.items()},
         "T2_exponent": {"theory": t2_exponent_fit(t, th["u"], th["s"], problem.d, a, problem.s_star),
                         "simulation": None},
         "gap": {k: {"max": None, "mean": None} for k in STATS},
         "final": {"theory": ov.final()["theory"], "simulation": None}}
    return ov, m


# ----------------------------------------------------------------------------- all of them
RUNNERS: dict[str, Callable[..., dict]] = {"E1": e1_fig2, "E2": e2_escape, "E3": e3_phase3, "E4": e4_sgd_noise,
                                           "E5": e5_phase2}
