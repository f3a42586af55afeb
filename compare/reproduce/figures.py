"""The figures of [P1]'s experiments (PNG + PDF), one function per experiment."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from phasedyn.theory import Problem
from phasedyn.theory import powerlaw as PL

from ..fit import t2_times, t2_window
from ..overlay import Overlay
from ..phases import first_crossing
from ..plots import RC, SIM_COLOR, THEORY_COLOR, _figure_legend, band, log_ticks, place_legend
from .settings import RHO_WINDOW, E2Config, E4Config, E5Config


def _save(fig: Figure, folder: Path, stem: str, dpi: int = 300) -> list[Path]:
    """``folder/stem.png`` (at ``dpi``) and ``folder/stem.pdf``; returns both paths."""
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def _band(ax, t: np.ndarray, y: np.ndarray, color: str, label: str | None = None, lw: float = 1.0,
          positive: bool = False) -> None:
    """Seed mean (solid) with ± sd band of a ``(n_seeds, n_t)`` array on the t > 0 part of the grid; ``positive``
    (a log axis): the geometric band mean·exp(±sd/mean) of :func:`~..plots.band`, never at or below 0."""
    pos = t > 0
    m, sd = y.mean(0), y.std(0)
    lo, hi = band(m, sd, positive)
    if positive:
        m = np.where(m > 0, m, np.nan)
    ax.fill_between(t[pos], lo[pos], hi[pos], color=color, alpha=0.2, lw=0)
    ax.plot(t[pos], m[pos], color=color, lw=lw, label=label)


def _phase_lines(ax, phases: dict, keys: tuple[str, ...] = ("T1", "T1p", "T2")) -> None:
    """Vertical lines at the phase times of theory and simulation (dotted T1, dashed T1', dash-dot T2), each
    labelled, so a legend names just the lines drawn."""
    styles = {"T1": ":", "T1p": (0, (5, 2)), "T2": "-."}
    names = {"T1": "$T_1$", "T1p": "$T_1'$", "T2": "$T_2$"}
    for k in keys:
        for who, color in (("theory", THEORY_COLOR), ("simulation", SIM_COLOR)):
            tt = phases[k][who]
            if tt is not None and tt > 0:
                ax.axvline(tt, color=color, ls=styles[k], lw=0.7, alpha=0.7, label=f"{names[k]} ({who})")


def _a_legend(fig: Figure, axes, sim: str, theory: str):
    """One legend below the panels: a colour per exponent a (theory and simulation of an a share it), and the
    line styles of simulation (solid) and theory (dashed)."""
    for ax in axes[1:]:  # the a labels once
        for line in ax.get_lines():
            line.set_label(f"_{line.get_label()}")
    styles = [Line2D([], [], color="0.4", lw=1.0, label=sim), Line2D([], [], color="0.4", ls="--", lw=0.9, label=theory)]
    h, labels = axes[0].get_legend_handles_labels()
    return fig.legend([*h, *styles], [*labels, sim, theory], loc="outside lower center", ncol=len(h) + 2,
                      frameon=False)


def fig_e1(ov: Overlay, m: dict, folder: Path, dpi: int = 300) -> list[Path]:
    """E1, [P1] Fig. 2: u, s and MSE of GD (mean ± sd) under the exact gradient flow, phases marked."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.8), layout="constrained")
        axes = fig.subplots(1, 3, sharex=True)
        for ax, stat, ylabel in zip(axes, ("u", "s", "mse"), (r"overlap $u$", r"norm $s$", "MSE")):
            positive = stat == "mse"
            _band(ax, ov.t, ov.sim[stat], SIM_COLOR, f"GD (η = {ov.params['eta']:g})", positive=positive)
            ax.plot(ov.t[ov.t > 0], ov.mean("theory", stat)[ov.t > 0], color=THEORY_COLOR, ls="--", lw=1.0,
                    label="gradient flow (exact)")
            _phase_lines(ax, m["phases"])
            ax.set_xscale("log")
            if positive:
                ax.set_yscale("log")
            log_ticks(ax)
            ax.set_xlabel(r"$t = \eta k$")
            ax.set_ylabel(ylabel)
        axes[1].axhline(ov.s_level, color="0.5", lw=0.6, ls=":", label="saddle level of $s$")
        _figure_legend(fig, axes, ncol=4, fontsize=6)
        p = ov.params
        fig.suptitle(f"[P1] Fig. 2: a = {p['a']:g}, d = {p['d']}, {p['steps']:.0e} GD steps", fontsize=8)
        return _save(fig, folder, "fig2_u_s_mse", dpi)


def fig_e2(curves: list, folder: Path, cfg: E2Config) -> list[Path]:
    """E2: u(t) from the unit sphere with [P1]'s T1, and |u| from the small start with the slope ρ;
    ``curves``: ``(a, init, overlay, measures)`` per run."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 3.0), layout="constrained")
        ax_u, ax_log = fig.subplots(1, 2, sharex=True)  # one time axis
        colors = {a: f"C{i}" for i, a in enumerate(cfg.a_values)}
        for a, init, ov, m in curves:
            c = colors[a]
            if init == "unit":
                _band(ax_u, ov.t, ov.sim["u"], c, f"a = {a:g}")
                ax_u.plot(ov.t[ov.t > 0], ov.mean("theory", "u")[ov.t > 0], color=c, ls="--", lw=0.9)
                t1 = m["predictions"]["T1"]
                if t1:
                    ax_u.axvline(t1, color=c, ls=":", lw=0.7)
            else:
                _band(ax_log, ov.t, np.abs(ov.sim["u"]), c, f"a = {a:g}", positive=True)
                ax_log.plot(ov.t[ov.t > 0], np.abs(ov.mean("theory", "u"))[ov.t > 0], color=c, ls="--", lw=0.9)
                rho, mid = m["predictions"]["rho"], math.sqrt(RHO_WINDOW[0] * RHO_WINDOW[1])
                t_mid = first_crossing(ov.t, np.abs(ov.mean("sim", "u")), mid)
                if t_mid is not None:  # slope rho through the middle of the fit window
                    t_lin = PL.escape_time(m["u0_mean_abs"], rho, mid)  # log(mid/|u0|)/rho
                    tt = np.linspace(max(t_mid - t_lin, 0), t_mid + 4 / rho, 50)
                    ax_log.plot(tt, mid * np.exp(rho * (tt - t_mid)), color=c, ls=":", lw=1.0)
        ax_u.set_xscale("log")
        log_ticks(ax_u)
        ax_u.set_xlabel(r"$t = \eta k$")
        ax_u.set_ylabel(r"overlap $u$ (unit-sphere start)")
        ax_u.set_title(r"$u(t)$; dotted: [P1]'s $T_1 = \log(\delta/|u_0|)/\rho$")
        ax_log.set_yscale("log")
        ax_log.set_ylim(bottom=0.3 * min(m["u0_mean_abs"] for _, i, _, m in curves if i == "small"), top=2)
        log_ticks(ax_log)
        _a_legend(fig, [ax_u, ax_log], "GD simulation (mean ± sd)", "gradient flow")
        ax_log.set_xlabel(r"$t = \eta k$")
        ax_log.set_ylabel(rf"$|u|$ (start $|w(0)| = {cfg.small_init:g}$)")
        ax_log.set_title(r"Phase I: dotted slope $\rho$ from the secular equation")
        fig.suptitle(f"Escape for several a: d = {cfg.d}, GD η = {cfg.eta:g} ({cfg.seeds} seeds, mean ± sd)",
                     fontsize=8)
        return _save(fig, folder, "escape_u", cfg.dpi)


def fig_e3(problem: Problem, ov: Overlay, t2: float | None, folder: Path, dpi: int = 300) -> list[Path]:
    """E3: the MSE, and after ``t2`` against [P1]'s form, the effective-age form and the asymptotic."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 2.6), layout="constrained")
        ax_all, ax3 = fig.subplots(1, 2)
        _band(ax_all, ov.t, ov.sim["mse"], SIM_COLOR, "GD", positive=True)
        ax_all.plot(ov.t[ov.t > 0], ov.mean("theory", "mse")[ov.t > 0], color=THEORY_COLOR, ls="--",
                    label="gradient flow")
        ax_all.set_xscale("log")
        ax_all.set_yscale("log")
        log_ticks(ax_all)
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
            log_ticks(ax3)
            ax3.set_xlabel(r"$\tau = t - T_2$")
            ax3.set_ylabel(r"MSE$(T_2 + \tau)$")
            place_legend(ax3, fontsize=6)
        place_legend(ax_all)
        fig.suptitle(f"Phase III: a = {problem.meta['a']:g}, d = {problem.d} (shaded: 10 ≤ x ≤ d/10)", fontsize=8)
        return _save(fig, folder, "phase3_mse", dpi)


def fig_e4(curves: list, folder: Path, cfg: E4Config) -> list[Path]:
    """E4: MSE and u of online SGD under the mean field (aligned); ``curves``: ``(a, overlay)`` per a."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 3.0), layout="constrained")
        ax_m, ax_u = fig.subplots(1, 2, sharex=True)
        for i, (a, ov) in enumerate(curves):
            c = f"C{i}"
            lab = f"a = {a:g}" + (" (a ≤ 1)" if a <= 1 else "")
            _band(ax_m, ov.t, ov.sim["mse"], c, lab, positive=True)  # theory and simulation of one a: one colour
            ax_m.plot(ov.t[ov.t > 0], ov.mean("theory", "mse")[ov.t > 0], color=c, ls="--", lw=0.9)
            _band(ax_u, ov.t, ov.sim["u"], c, lab)
            ax_u.plot(ov.t[ov.t > 0], ov.mean("theory", "u")[ov.t > 0], color=c, ls="--", lw=0.9)
        ax_m.set_yscale("log")
        for ax, yl in ((ax_m, "MSE"), (ax_u, r"overlap $u$")):
            ax.set_xscale("log")
            log_ticks(ax)
            ax.set_xlabel(r"$t = \eta k$")
            ax.set_ylabel(yl)
        _a_legend(fig, [ax_m, ax_u], "online SGD (mean ± sd)", "mean field (B = d)")
        fig.suptitle(f"Online SGD with label noise N(0, {cfg.noise_var:g}): d = {cfg.d}, η = {cfg.eta:g}, "
                     f"{cfg.seeds} seeds (theory aligned at |u| = {cfg.align:g})", fontsize=8)
        return _save(fig, folder, "sgd_noise", cfg.dpi)


def fig_e5(curves: list, folder: Path, cfg: E5Config) -> list[Path]:
    """E5: 1 − u against t, and T2(ε) − T1' against 1/ε with the fits, the tail relaxation and [P1]'s slope;
    ``curves``: ``(d, overlay, measures, simulated)`` per d."""
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
        p = PL.t2_exponent(a)
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
        log_ticks(ax)
        ax.set_xlabel(r"$t$")
        ax.set_ylabel(r"$1 - u$")
        ax.set_title("solid: exact gradient flow; dotted: GD simulation")
        place_legend(ax, fontsize=6)
        ax_fit.set_xscale("log")
        ax_fit.set_yscale("log")
        log_ticks(ax_fit)
        ax_fit.set_xlabel(r"$1/\varepsilon$")
        ax_fit.set_ylabel(r"$T_2(\varepsilon) - T_1'$")
        ax_fit.set_title(r"o theory, x GD, -- tail relaxation; [P1]'s bound $\varepsilon^{-2a/(a-1)}$")
        place_legend(ax_fit, fontsize=6)
        fig.suptitle(f"Phase II, a = {a:g}: 1 − u and the time to reach [1 − ε, 1]", fontsize=8)
        return _save(fig, folder, "phase2_log1mu", cfg.dpi)
