"""Publication figures: simulation bands under theory lines, phases marked.

Sized for print: the 2×2 overview is double-column width (6.8 in), the (u, s) figure single-column
(3.4 in); 8–9 pt fonts; saved as PNG (300 dpi) and PDF.

Shared by every figure of the package: :func:`log_ticks` (readable labels on any log axis), :func:`band`
(mean ± sd, geometric on a log axis) and :func:`place_legend` (a legend where it covers no data).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path as MPath

from .overlay import Overlay

RC = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "lines.linewidth": 1.2, "axes.grid": True, "grid.alpha": 0.3, "savefig.bbox": "tight",
}
LABELS = {
    "u": r"overlap $u = w^\top\Sigma w^*$",
    "s": r"norm $s = w^\top\Sigma w$",
    "loss": r"population loss $L$",
    "mse": r"MSE $\min|w \mp w^*|^2/d$",
}
THEORY_COLOR, SIM_COLOR = "C3", "C0"
#: log panels stop at this fraction of the curve's scale (see _panel)
LOG_FLOOR = 1e-9
#: the phase lines of the overview: (key, line style, legend name)
PHASE_LINES = (("T1", ":", "$T_1$"), ("T2", "-.", "$T_2$"))
#: legend entry of the ▼ that ends a log curve at the floor
FLOOR_LABEL = f"▼ last point above the floor $10^{{{round(math.log10(LOG_FLOOR))}}}\\times$ scale (below: round-off, not drawn)"


# ----------------------------------------------------------------------------- shared helpers
class _LogTicks(ticker.Locator):
    """Major ticks of a log axis with at least 3 inside the view: decades (1, 10, 100), else 1-2-5 per decade,
    else (a range under about half a decade) plain linear ticks."""

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((vmin, vmax))
        if not (vmin > 0 and np.isfinite(vmax)):
            return ticker.LogLocator().tick_values(vmin, vmax)
        for loc in (ticker.LogLocator(subs=(1.0,), numticks=8), ticker.LogLocator(subs=(1.0, 2.0, 5.0), numticks=12),
                    ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3)):
            ticks = np.asarray(loc.tick_values(vmin, vmax))
            inside = ticks[(ticks >= vmin * (1 - 1e-9)) & (ticks <= vmax * (1 + 1e-9)) & (ticks > 0)]
            if inside.size >= 3:
                return ticks[ticks > 0]
        return inside

    def nonsingular(self, vmin, vmax):
        loc = ticker.LogLocator()
        loc.set_axis(self.axis)
        return loc.nonsingular(vmin, vmax)


class _LogLabels(ticker.Formatter):
    r"""Labels of :class:`_LogTicks`: :math:`10^k` when every tick is a power of ten, else plain numbers
    (``0.02``, ``2.5``) between 1e-3 and 1e4 and :math:`m\times10^k` with a short mantissa outside; never
    :math:`2.15\times10^0`."""

    _decades = False

    def format_ticks(self, values):
        self._decades = all(self._power_of_ten(v) for v in values if v > 0)
        return [self(v, i) for i, v in enumerate(values)]

    def __call__(self, x, pos=None):
        if x <= 0 or not np.isfinite(x):
            return ""
        e = math.floor(math.log10(x) + 1e-9)
        mant = round(x / 10.0**e, 4)
        if self._decades:
            return rf"$\mathdefault{{10^{{{e}}}}}$"
        if 1e-3 <= x < 1e4:
            return f"{x:.6g}"
        return rf"$\mathdefault{{{mant:g}\times10^{{{e}}}}}$"

    @staticmethod
    def _power_of_ten(v: float) -> bool:
        return abs(math.log10(v) - round(math.log10(v))) < 1e-9


def log_ticks(ax, which: str = "both") -> None:
    """Readable ticks on the log axes of ``ax`` (``which``: "x", "y" or "both"; call after ``set_*scale``): at
    least 3 labelled major ticks in any view (:class:`_LogTicks`), unlabelled minor ticks."""
    for name in ("x", "y") if which == "both" else (which,):
        axis = getattr(ax, f"{name}axis")
        if axis.get_scale() == "log":
            axis.set_major_locator(_LogTicks())
            axis.set_major_formatter(_LogLabels())
            axis.set_minor_locator(ticker.LogLocator(subs="auto", numticks=12))
            axis.set_minor_formatter(ticker.NullFormatter())


def band(mean: np.ndarray, sd: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Lower and upper edge of a ± sd band: ``mean ± sd`` on a linear axis; on a log axis the geometric band
    :math:`\bar x\,e^{\pm\sigma/\bar x}` (``mean * exp(±sd/mean)``, NaN where ``mean <= 0``): the same width as
    ``mean ± sd`` to first order in :math:`\sigma/\bar x`, symmetric in log, and never at or below 0, so it is
    neither clipped at the axis' bottom nor drags the axis to a floor far below the data."""
    if not log:
        return mean - sd, mean + sd
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(mean > 0, np.exp(sd / mean), np.nan)
        m = np.where(mean > 0, mean, np.nan)
    return m / r, m * r


def _renderer(fig: Figure):
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def data_overlap(ax, bbox, renderer=None) -> list[str]:
    """Labels (or reprs) of the data artists of ``ax`` (lines with finite points, ``fill_between`` bands) that
    cross the display-space box ``bbox`` inside the axes: empty when ``bbox`` covers no plotted data."""
    from matplotlib.collections import PolyCollection
    from matplotlib.transforms import Bbox

    box = Bbox.intersection(bbox, ax.get_window_extent(renderer))
    if box is None or box.width <= 0 or box.height <= 0:
        return []
    hits = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        ok = np.all(np.isfinite(xy), axis=1)
        if line.get_linestyle() in ("None", "", " "):  # markers only: a point inside the box (marker radius)
            r = line.get_markersize() * (renderer.points_to_pixels(1.0) if renderer else 1.0) / 2
            hit = box.expanded(1, 1).padded(r).count_contains(xy[ok]) > 0
        else:  # a segment through the box, over each finite run of the line
            edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
            hit = any(MPath(xy[a:b]).intersects_bbox(box, filled=False) for a, b in zip(edges[::2], edges[1::2])
                      if b - a >= 2) or (box.count_contains(xy[ok]) > 0)
        if hit:
            hits.append(line.get_label())
    for coll in ax.collections:
        if isinstance(coll, PolyCollection):
            for p in coll.get_paths():
                q = coll.get_transform().transform_path(p)
                if np.isfinite(q.vertices).all() and q.intersects_bbox(box, filled=True):
                    hits.append(f"band {coll.get_label()}")
                    break
    return hits


def place_legend(ax, *, handles=None, outside_ncol: int = 1, **kw):
    """A legend on ``ax`` at the first of its usual corners and edges where it crosses no plotted data
    (:func:`data_overlap`, after a draw); where every place does, a figure legend below the axes
    (``outside_ncol`` columns)."""
    fig = ax.get_figure()
    leg = ax.legend(handles=handles, frameon=False, **kw) if handles else ax.legend(frameon=False, **kw)
    renderer = _renderer(fig)
    for loc in ("upper left", "lower left", "upper right", "lower right", "center left", "center right",
                "lower center", "upper center"):
        leg.set_loc(loc)
        if not data_overlap(ax, leg.get_window_extent(renderer), renderer):
            return leg
    leg.remove()
    h, labels = ax.get_legend_handles_labels() if handles is None else (handles, [x.get_label() for x in handles])
    return fig.legend(h, labels, frameon=False, loc="outside lower center", ncol=outside_ncol, **kw)


def _save(fig: Figure, out: Path, stem: str, dpi: int = 300) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


# ----------------------------------------------------------------------------- the overview
def _time_label(ov: Overlay, long: bool = True) -> str:
    if not ov.params.get("align"):
        return r"time $t = \eta k$"
    return rf"$\tau = t - T_1$ (aligned at $|u| \geq {ov.params['align']}$)" if long else r"$\tau = t - T_1$"


def _panel(ax, ov: Overlay, stat: str, phases: dict | None, logy: bool) -> None:
    """One panel of the overview. On a log panel (loss, MSE) values below ``LOG_FLOOR`` × the curve's scale are
    masked (round-off and solver tolerance, not dynamics: L = 3s² + 3s*² − 4u² − 2ss* cancels at the minimum);
    a ▼ marks each curve's last point above that floor and its legend entry says so. The band is
    :func:`band`'s (geometric on the log panels)."""
    t = ov.t
    pos = t > 0
    m, sd, th = ov.mean("sim", stat), ov.std("sim", stat), ov.mean("theory", stat)
    floor = None
    if logy:
        floor = LOG_FLOOR * max(np.max(np.abs(m)), np.max(np.abs(th)))
        m, th = (np.where(v > floor, v, np.nan) for v in (m, th))
    lo, hi = band(m, sd, logy)
    if ov.params.get("theory_start") == "law":  # the escape law's predicted band, under the simulation's
        tlo, thi = band(th, ov.std("theory", stat), logy)
        ax.fill_between(t[pos], tlo[pos], thi[pos], color=THEORY_COLOR, alpha=0.12, lw=0, zorder=0.5,
                        label="theory ± sd (law of the start)")
    ax.fill_between(t[pos], lo[pos], hi[pos], color=SIM_COLOR, alpha=0.25, lw=0)
    ax.plot(t[pos], m[pos], color=SIM_COLOR, lw=1.0, label=f"simulation (mean ± sd, {ov.sim[stat].shape[0]} seeds)")
    ax.plot(t[pos], th[pos], color=THEORY_COLOR, ls="--", label="theory")
    if floor is not None:  # clip at the floor only where the data reach it; otherwise frame the data
        data_min = np.nanmin(np.concatenate([m[pos], th[pos], lo[pos]]))
        ax.set_ylim(bottom=max(floor, 0.5 * data_min))
        ends = []
        for y, color in ((m, SIM_COLOR), (th, THEORY_COLOR)):
            ok = np.flatnonzero(np.isfinite(y) & pos)
            if ok.size and ok[-1] < t.size - 1:  # the curve goes below the floor after ok[-1]
                ax.plot(t[ok[-1]], y[ok[-1]], "v", color=color, ms=4, ls="none", zorder=4, label=FLOOR_LABEL)
                ends.append((t[ok[-1]], y[ok[-1]]))
        if ends:  # where the curves leave the panel, in words
            x, y = max(ends)
            ax.annotate(f"below floor\nfrom t ≈ {x:.2g}", (x, y), xytext=(5, 2), textcoords="offset points",
                        fontsize=6, va="bottom")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    log_ticks(ax)
    if phases:
        off = float(ov.shift.mean())
        for name, style, pretty in PHASE_LINES:
            for who, color in (("theory", THEORY_COLOR), ("simulation", SIM_COLOR)):
                tt = phases[name][who]
                if tt is not None and tt - off > 0:  # an aligned axis cannot show T1 (tau <= 0): no line, no entry
                    ax.axvline(tt - off, color=color, ls=style, lw=0.8, alpha=0.8, label=f"{pretty} ({who})")
    ax.set_xlabel(_time_label(ov))
    ax.set_ylabel(LABELS[stat])


def _figure_legend(fig: Figure, axes, ncol: int = 3, **kw):
    """One legend below the panels: every labelled artist of ``axes`` once, in order (so it names only what is
    drawn)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab in seen and lab.startswith("▼"):  # one entry for the marker, drawn black
                continue
            seen.setdefault(lab, h)
    handles = []
    for lab, h in seen.items():
        if lab.startswith("▼"):
            h = Line2D([], [], ls="none", marker="v", color="0.3", ms=4)
            lab = lab[2:]
        handles.append((h, lab))
    return fig.legend([h for h, _ in handles], [lab for _, lab in handles], loc="outside lower center", ncol=ncol,
                      frameon=False, **kw)


def _overview_figure(ov: Overlay, phases: dict | None = None) -> Figure:
    """The Figure of :func:`plot_overview` (drawn under :data:`RC`; not saved)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 5.2), layout="constrained")  # no pyplot state: any backend, no leaks
        axes = fig.subplots(2, 2, sharex=True)  # one time axis: the log panels stop where the others do not
        for ax, stat, logy in zip(axes.flat, ("u", "s", "loss", "mse"), (False, False, True, True)):
            _panel(ax, ov, stat, phases, logy)
        pos = ov.t > 0
        axes[0, 0].set_xlim(ov.t[pos][0] / 1.3, ov.t[pos][-1] * 1.3)
        for ax in axes[0]:
            ax.xaxis.set_tick_params(labelbottom=True)
        _figure_legend(fig, axes.flat)
        p = ov.params
        fig.suptitle(f"{run_label(ov)}: d = {p['d']}, η = {p['eta']:g}, {len(p['seeds'])} seeds", fontsize=9)
    return fig


SIMULATED = {"gd": "population GD", "sgd": "online SGD"}
THEORIES = {"gf": "gradient flow", "gd": "exact GD map", "sgd": "SGD mean field"}


def run_label(ov: Overlay) -> str:
    """What was simulated and the theory it is compared with, e.g. ``isotropic: online SGD vs SGD mean field
    (law of the start)``; the theory system's name where the overlay does not say (issue 15 §3)."""
    p = ov.params
    sim, theory = SIMULATED.get(p.get("simulation_optimizer")), THEORIES.get(p.get("theory") or p.get("optimizer"))
    if sim is None or theory is None:
        return ov.system
    start = " (law of the start)" if p.get("theory_start") == "law" else ""
    solver = f", {p['solver']}" if p.get("solver") not in (None, "modes") else ""
    return f"{ov.system.split('-')[0]}: {sim} vs {theory}{solver}{start}"


def plot_overview(ov: Overlay, out: Path, phases: dict | None = None, stem: str = "overview") -> list[Path]:
    """2×2 figure (u, s, loss, MSE vs t, one time axis; legend below names every line drawn, phase lines
    included); returns the PNG and PDF paths."""
    with matplotlib.rc_context(RC):
        return _save(_overview_figure(ov, phases), out, stem)


def _us_figure(ov: Overlay) -> Figure:
    """The Figure of :func:`plot_us` (not saved)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4, 2.5), layout="constrained")
        ax = fig.subplots()
        pos = ov.t > 0
        for stat, color in (("u", "C0"), ("s", "C2")):
            m, sd = ov.mean("sim", stat), ov.std("sim", stat)
            lo, hi = band(m, sd, False)
            ax.fill_between(ov.t[pos], lo[pos], hi[pos], color=color, alpha=0.25, lw=0)
            ax.plot(ov.t[pos], m[pos], color=color, lw=1.0, label=f"${stat}$ simulation")
            ax.plot(ov.t[pos], ov.mean("theory", stat)[pos], color="k", ls="--", lw=0.9,
                    label="theory" if stat == "u" else None)
        ax.set_xscale("log")
        log_ticks(ax)
        ax.set_xlabel(_time_label(ov, long=False))
        ax.set_ylabel("summary statistic")
        place_legend(ax)
    return fig


def plot_us(ov: Overlay, out: Path, stem: str = "u_s") -> list[Path]:
    """Single-column figure of u and s against t; returns the PNG and PDF paths."""
    with matplotlib.rc_context(RC):
        return _save(_us_figure(ov), out, stem)
