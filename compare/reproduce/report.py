"""``REPORT.md``: [P1]'s predictions against theory and simulation, one table row per case."""

from __future__ import annotations

import math
from pathlib import Path

from ..output import package_version
from .settings import DELTA, EPS, EXPERIMENTS, FOLDERS, PAPER, TITLES


def _f(x: float | None, fmt: str = ".4g") -> str:
    """A table number: ``x`` in ``fmt``, "—" if missing or not finite."""
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _fit_cell(fit: dict | None) -> str:
    """An exponent fit as "value [lo, hi]" (95% CI)."""
    if fit is None:
        return "—"
    return f"{fit['value']:.2f} [{fit['ci95'][0]:.2f}, {fit['ci95'][1]:.2f}]"


def _p3_text(cell: dict | None) -> str:
    """The Phase-III cell (:func:`.measure.phase3_cell`) as "S_d th/sim; eff. age th/sim; asympt. th/sim"."""
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
