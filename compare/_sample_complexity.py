r"""``phasedyn run single-index --experiment sample-complexity``: samples to escape against :math:`d` for information
exponents :math:`k^* = 1, 2, 3` (issue 12; docs/theory.md §5(B)).

For each :math:`k^*` the teacher and student are :math:`\mathrm{He}_{k^*}` with the correlation loss, trained by
spherical online SGD (the setting of Ben Arous, Gheissari and Jagannath) and by vanilla online SGD with the square
loss, side by side, from a start uniform on the sphere (its sign chosen so that :math:`u_0 > 0`: for odd :math:`k^*` the drift
:math:`\propto u^{k^*-1}` is even, and a negative start drifts back to 0), on :math:`\Sigma = I` for the :math:`n_d` log-spaced
:math:`d` from ``d_min`` to ``d``. The step is a fixed fraction (:data:`STEP_FRACTION`) of the largest step at which
the derived mean field still escapes from :math:`u_0 = d^{-1/2}`: :math:`\dot u = A(u_0) - \eta B(u_0)` at the start,
read off the derived system, so :math:`\eta_{max} = A/B` (:func:`largest_escaping_step`); it scales like
:math:`d^{-\max(1, k^*/2)}`. The samples to escape are :math:`n = T_1/\eta` (first :math:`|u| \ge` :data:`ESCAPE` :math:`= 0.5`), per seed,
from the simulation and from the derived mean field started at each seed's own :math:`u_0`.

Predicted exponents of :math:`n \propto d^{\gamma}` (stated before measuring, docs/theory.md §5(B)): :math:`\gamma = 1`
for :math:`k^* = 1`; :math:`1` times :math:`\log d` for :math:`k^* = 2` (a fitted slope of 1 to 1.35 on
:math:`d \le 10^3`); :math:`k^* - 1 = 2` for :math:`k^* = 3`. summary.json holds each fitted :math:`\gamma` with a
bootstrap 90% interval over seeds, for theory and simulation, and the predicted band; and
``effective_dimension_collapse``, which candidate effective dimension the mean-field escape on a family of
anisotropic spectra follows (:mod:`._collapse`, :math:`k^* = 2`, spherical SGD, at :math:`d` = ``d``). A seed that does not escape
within the run counts as infinitely many samples in the median; for :math:`k^* = 3` the mean field started at a
seed's own :math:`u_0` does not escape when :math:`u_0` is below the level where the normalisation's term beats the
drift, while the simulation's fluctuations carry it out, so the theory's median can be infinite where the
simulation's is not.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from phasedyn import simulate
from phasedyn.theory import Model, isotropic, isotropic_system, single_index_problem

from ._collapse import collapse
from .output import config_json, package_version, write_json
from .phases import first_crossing

K_STARS = (1, 2, 3)
#: the step as a fraction of the largest step at which the mean field escapes from u0 = d^-1/2
STEP_FRACTION = 0.25
#: predicted bands of the fitted exponent gamma of n ~ d^gamma, per k* (module docstring)
PREDICTED = {1: (0.85, 1.15), 2: (0.95, 1.4), 3: (1.7, 2.3)}
#: the escape level |u| >= ESCAPE (weak recovery; far above the start's d^-1/2 for every d >= 16)
ESCAPE = 0.5
#: the most steps one simulated point may take (a point that needs more is reported as not escaped)
MAX_STEPS = 2_000_000
SETTINGS = {"spherical": ("correlation", "spherical-sgd"), "vanilla": ("square", "sgd")}


def largest_escaping_step(model: Model, optimizer: str, d: int) -> float:
    r"""The largest step at which the derived isotropic mean field of ``optimizer`` escapes from the start
    :math:`(u, s) = (d^{-1/2}, 1)`: both rates are linear in :math:`\eta`, :math:`\dot u = A_u - \eta B_u` must stay
    positive (the signal grows) and :math:`\dot s = A_s + \eta B_s` must not exceed 0 where the drift shrinks
    :math:`s` (the norm stays bounded; vanilla SGD only): :math:`\eta_{max} = \min(A_u/B_u, -A_s/B_s)`."""
    import jax.numpy as jnp

    field = isotropic_system(optimizer, model).vector_field
    y = jnp.array([d**-0.5, 1.0])
    f0 = np.asarray(field(0.0, y, jnp.array([1.0, 0.0, float(d), 0.0])))
    f1 = np.asarray(field(0.0, y, jnp.array([1.0, 0.0, float(d), 1.0])))
    (a_u, a_s), (b_u, b_s) = f0, f0 - f1
    bounds = [a_u / b_u] if b_u > 0 and a_u > 0 else [math.inf]
    if optimizer == "sgd" and a_s < 0 and b_s < 0:
        bounds.append(-a_s / -b_s)
    return float(min(bounds))


def _median(n: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median over seeds with a seed that never escaped counted as infinitely many samples (not dropped)."""
    return np.median(np.where(np.isfinite(n), n, np.inf), axis=axis)


def _fit(ds: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> dict:
    """Slope of log n against log d (seed medians, :func:`_median`) over the d whose median is finite, and a bootstrap
    90% interval over seeds."""
    med = _median(n)
    ok = np.isfinite(med)
    if ok.sum() < 2:
        return {"gamma": None, "interval": None, "d_used": ds[ok].tolist()}
    x = np.log(ds[ok])
    slope = float(np.polyfit(x, np.log(med[ok]), 1)[0])
    boot = []
    for _ in range(200):
        m = _median(n[rng.integers(0, len(n), len(n))])[ok]
        if np.all(np.isfinite(m)):
            boot.append(np.polyfit(x, np.log(m), 1)[0])
    interval = [float(np.quantile(boot, 0.05)), float(np.quantile(boot, 0.95))] if len(boot) >= 20 else None
    return {"gamma": slope, "interval": interval, "d_used": ds[ok].tolist()}


def _crossing(t: np.ndarray, u: np.ndarray) -> float:
    hit = first_crossing(t, np.abs(u), ESCAPE)
    return math.nan if hit is None else hit


def escape_samples(k: int, setting: str, d: int, cfg) -> dict:
    """Samples to escape at one ``d`` for ``He_k`` in ``setting`` (``"spherical"`` or ``"vanilla"``): per seed, from
    the simulation and from the mean field; ``eta`` and the run length (3x the theory's slowest escape)."""
    loss, optimizer = SETTINGS[setting]
    model = Model.single_index(f"he{k}", f"he{k}", loss)
    eta = STEP_FRACTION * largest_escaping_step(model, "spherical-sgd" if setting == "spherical" else "sgd", d)
    eta = min(eta, 0.5 / d)
    pb = single_index_problem(d, seed=cfg.seed)
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    w0 = pb.w0_batch(seeds)
    w0 = w0 / np.linalg.norm(w0, axis=1, keepdims=True)
    w0 *= np.sign(w0 @ (pb.lam * pb.w_star))[:, None]  # u0 > 0: for odd k* the mean field escapes only upwards
    t_grid = np.geomspace(1e-3, 1e3, 400)
    th = isotropic.solve(pb, optimizer, eta=eta, ts=np.r_[0.0, t_grid], w0=w0, model=model, max_steps=200_000)
    t_th = np.array([_crossing(np.r_[0.0, t_grid], u) for u in np.asarray(th["u"])])
    if not np.any(np.isfinite(t_th)):  # the mean field does not escape: nothing to simulate against
        return {"d": d, "eta": eta, "steps": 0, "theory": t_th.tolist(), "simulation": [math.nan] * len(seeds)}
    steps = min(MAX_STEPS, max(10, int(math.ceil(3 * float(np.nanmax(t_th)) / eta))))
    rec = np.unique(np.linspace(0, steps, 400).astype(int))
    tr = simulate.run(pb, optimizer, eta=eta, steps=steps, record_steps=rec, seeds=seeds, w0=w0, model=model,
                      progress=False, prng=cfg.prng)
    t_sim = np.array([_crossing(tr.t, u) for u in tr.stats["u"]])
    return {"d": d, "eta": eta, "steps": steps, "theory": (t_th / eta).tolist(), "simulation": (t_sim / eta).tolist()}


def run_sample_complexity(cfg, out: Path, progress: bool | None = None, figures: bool = True) -> dict:
    """Run the scan of the module docstring into ``out``: config.json, summary.json, sample_complexity.npz, figure."""
    write_json(out / "config.json", config_json("single-index", cfg))
    start = time.perf_counter()
    ds = np.unique(np.geomspace(cfg.d_min, cfg.d, cfg.n_d).round().astype(int))
    rng = np.random.default_rng(cfg.seed)
    results, arrays = {}, {"d": ds}
    for setting in SETTINGS:
        for k in K_STARS:
            rows = [escape_samples(k, setting, int(d), cfg) for d in ds]
            entry = {"eta": [r["eta"] for r in rows], "steps": [r["steps"] for r in rows],
                     "predicted_gamma_band": list(PREDICTED[k])}
            for side in ("theory", "simulation"):
                n = np.array([r[side] for r in rows], float).T  # (seeds, n_d)
                arrays[f"{setting}_he{k}_{side}"] = n
                entry[side] = _fit(ds.astype(float), n, rng)
                entry[f"{side}_median_samples"] = [float(x) if np.isfinite(x) else None for x in _median(n)]
                entry[f"{side}_escaped"] = np.isfinite(n).sum(0).tolist()
            results[f"{setting}/he{k}"] = entry
    np.savez(out / "sample_complexity.npz", **arrays)
    iso_d = np.unique(np.geomspace(max(8, cfg.d_min // 4), 8 * cfg.d, 10).astype(int))
    table = collapse(2, "spherical-sgd", d=int(cfg.d), iso_d=iso_d, seeds=cfg.seeds)  # :mod:`._collapse`
    summary = {"system": "single-index-sample-complexity", "params": {
        "d": ds.tolist(), "seeds": cfg.seeds, "escape_level": ESCAPE, "max_steps": MAX_STEPS, "step_fraction": STEP_FRACTION,
        "settings": {k: {"loss": v[0], "optimizer": v[1]} for k, v in SETTINGS.items()}},
        "exponents": results, "effective_dimension_collapse": table, "version": package_version(), "schema": 2}
    figs = _plot(ds, arrays, results, out) if figures else []
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_json(out / "summary.json", summary)
    return {"summary": summary, "files": [out / "config.json", out / "summary.json", out / "sample_complexity.npz",
                                          *figs]}


def report(name: str, result: dict) -> str:
    """The command line's lines for a finished scan: each fitted exponent against its band, then the files."""
    def fmt(f: dict) -> str:
        if f["gamma"] is None:
            return "n/a"
        ci = "" if f["interval"] is None else f" [{f['interval'][0]:.2f}, {f['interval'][1]:.2f}]"
        return f"{f['gamma']:.2f}{ci}"

    lines = [f"[{name}] samples to escape n ~ d^gamma (90% interval), predicted band per k*:"]
    for key, e in result["summary"]["exponents"].items():
        lo, hi = e["predicted_gamma_band"]
        lines.append(f"    {key}: theory {fmt(e['theory'])}, simulation {fmt(e['simulation'])}; band [{lo}, {hi}]")
    return "\n".join(lines + [f"    {f}" for f in result["files"]])


def _plot(ds: np.ndarray, arrays: dict, results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, setting in zip(axes, SETTINGS):
        for k, color in zip(K_STARS, ("C0", "C1", "C2")):
            res = results[f"{setting}/he{k}"]
            th, sim = arrays[f"{setting}_he{k}_theory"], arrays[f"{setting}_he{k}_simulation"]
            g_th, g_sim = res["theory"]["gamma"], res["simulation"]["gamma"]
            ax.plot(ds, _median(th), "--", color=color,
                    label=f"k*={k} theory" + (f" (slope {g_th:.2f})" if g_th is not None else ""))
            med = _median(sim)
            lo, hi = (np.quantile(np.where(np.isfinite(sim), sim, np.inf), q, 0) for q in (0.1, 0.9))
            lo, hi = np.minimum(lo, med), np.where(np.isfinite(hi), hi, med)
            ax.errorbar(ds, med, yerr=[np.nan_to_num(med - lo), np.nan_to_num(hi - med)],
                        fmt="o", color=color, ms=4,
                        label=f"k*={k} simulation" + (f" (slope {g_sim:.2f})" if g_sim is not None else ""))
        ax.set(xscale="log", yscale="log", xlabel="d", title=f"{setting} online SGD, He_k teacher and student")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"samples to escape $n = T_1/\eta$")
    fig.tight_layout()
    paths = [out / "sample_complexity.png", out / "sample_complexity.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths
