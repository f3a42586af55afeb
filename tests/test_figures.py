"""Every figure the package saves, as a new user sees it (issue 15, "the finish").

Tiny runs (an isotropic run through the command line, a spiked run with its phase diagram, E4 of the
reproduction) are made once per module; each saved Figure is captured where it is saved and checked for: finite
line data, no empty axes, at least 3 readable tick labels on every log axis, one x range for panels of one time
axis, and no legend over plotted data. The overlap check is this file's own (not the package's placement code),
and it is shown to fail on the placements the figures used to have.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.transforms import Bbox

import phasedyn.compare._spiked_plots as SPP
import phasedyn.compare.plots as P
import phasedyn.compare.reproduce.figures as RF
from phasedyn.compare import spiked as CS
from phasedyn.compare.cli import main
from phasedyn.compare.reproduce import experiments as RX
from phasedyn.compare.reproduce import settings as RS


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """``{name: Figure}`` of every figure saved by the tiny runs (captured at ``_save``)."""
    saved: dict[str, object] = {}
    patches = pytest.MonkeyPatch()
    for mod in (P, SPP, RF):
        orig = mod._save

        def capture(fig, folder, stem, *a, _orig=orig, **k):
            run = re.sub(r"^\.(.*)\.phasedyn-tmp-.*$", r"\1", Path(folder).name)  # a staged run's folder
            saved[f"{run}/{stem}"] = fig
            return _orig(fig, folder, stem, *a, **k)
        patches.setattr(mod, "_save", capture)
    tmp = tmp_path_factory.mktemp("figs")
    try:
        common = ["--d", "50", "--seeds", "2", "--no-progress"]
        assert main(["run", "isotropic", *common, "--steps", "200", "--n-record", "30",
                     "--out", str(tmp / "short")]) == 0
        # to t = 5: the phases are drawn and loss / MSE reach the round-off floor before the end
        assert main(["run", "isotropic", *common, "--eta", "0.01", "--steps", "500", "--n-record", "60",
                     "--out", str(tmp / "long")]) == 0
        assert main(["run", "isotropic", *common, "--eta", "0.01", "--steps", "500", "--n-record", "60",
                     "--align", "0.1", "--out", str(tmp / "aligned")]) == 0
        CS.run_spiked(CS.SpikedConfig(d=12, steps=300, seeds=2, n_record=40), tmp / "spiked", progress=False)
        cfg = dataclasses.replace(RS.QUICK["E4"], d=60, steps=3000, n_record=60)
        RX.e4_sgd_noise(cfg, tmp / "p1", quick=True, progress=False)
    finally:
        patches.undo()
    return saved


def test_every_saved_figure_is_captured(figures):
    names = {k.split("/")[-1] for k in figures}
    assert {"overview", "u_s", "gd_vs_specgd", "phase_diagram", "peak_ratio", "sgd_noise"} <= names
    assert len([k for k in figures if k.endswith("/overview")]) == 3


# ----------------------------------------------------------------------------- the checks
def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def _data_axes(fig):
    """The axes that show data (colorbars excluded)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _display_points(ax, step: float = 1.5) -> np.ndarray:
    """Display coordinates of every plotted line and band of ``ax`` inside the axes, segments sampled every
    ``step`` pixels (a line through a box with no vertex in it is still caught)."""
    box = ax.get_window_extent()
    chunks = []
    curves = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        if line.get_linestyle() in ("None", "", " "):
            chunks.append(xy)  # markers: their centres, widened below
            continue
        curves.append(xy)
    for coll in ax.collections:
        if isinstance(coll, PolyCollection):
            for path in coll.get_paths():
                curves.append(coll.get_transform().transform(path.vertices))
    for xy in curves:
        for a, b in zip(xy[:-1], xy[1:]):
            if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
                n = max(2, int(np.hypot(*(b - a)) / step) + 1)
                chunks.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
    pts = np.concatenate(chunks) if chunks else np.zeros((0, 2))
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    return pts[(pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)]


def legend_overlaps(fig) -> list[str]:
    """``"legend ↔ axes"`` for every legend (of an axes or of the figure) whose box covers plotted data."""
    r = _renderer(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    bad = []
    for leg in (x for x in legends if x.get_visible()):
        lb = leg.get_window_extent(r)
        for ax in _data_axes(fig):
            box = Bbox.intersection(lb, ax.get_window_extent(r))
            if box is None or box.width <= 0 or box.height <= 0:
                continue
            pts = _display_points(ax)
            inside = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            if inside.any():
                bad.append(f"legend {[t.get_text() for t in leg.get_texts()][:2]} over {ax.get_ylabel()!r}")
    return bad


def _log_axis_problems(fig) -> list[str]:
    r = _renderer(fig)
    bad = []
    for ax in _data_axes(fig):
        for name in ("x", "y"):
            axis = getattr(ax, f"{name}axis")
            if axis.get_scale() != "log":
                continue
            lo, hi = sorted(axis.get_view_interval())
            shown = [t.label1.get_text() for t in axis.get_major_ticks() if t.label1.get_visible()
                     and t.label1.get_text() and lo * (1 - 1e-9) <= t.get_loc() <= hi * (1 + 1e-9)]
            shared = getattr(ax, f"get_shared_{name}_axes")().get_siblings(ax)
            if not shown and len(shared) > 1:  # labels hidden on purpose on a shared axis: its sibling shows them
                continue
            if len(shown) < 3:
                bad.append(f"{ax.get_ylabel()!r} {name}: {shown}")
            crowded = [s for s in shown if re.search(r"\d\.\d+\s*\\times\s*10\^\{0\}", s) or "times10^{0}" in s]
            if crowded:
                bad.append(f"{ax.get_ylabel()!r} {name}: {crowded}")
    del r
    return bad


@pytest.mark.parametrize("name", ["short/overview", "long/overview", "aligned/overview", "short/u_s", "long/u_s",
                                  "spiked/gd_vs_specgd", "spiked/phase_diagram", "spiked/peak_ratio",
                                  "e4_sgd_noise/sgd_noise"])
def test_figure(figures, name):
    fig = figures[name]
    _renderer(fig)
    for ax in _data_axes(fig):
        finite = False
        for line in ax.get_lines():
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            assert not np.isinf(x).any() and not np.isinf(y).any(), (name, line.get_label())
            ok = np.isfinite(x) & np.isfinite(y)
            assert ok.any(), f"{name}: line {line.get_label()!r} has no finite point"
            finite = True
        finite = finite or any(np.isfinite(np.asarray(c.get_array() if c.get_array() is not None else
                                                      [v for p in c.get_paths() for v in p.vertices.ravel()],
                                                      float)).any() for c in ax.collections)
        assert finite, f"{name}: empty axes {ax.get_ylabel()!r}"
    assert _log_axis_problems(fig) == [], name
    by_xlabel: dict[str, list] = {}
    for ax in _data_axes(fig):
        by_xlabel.setdefault(ax.get_xlabel(), []).append(ax.get_xlim())
    for label, lims in by_xlabel.items():
        if label:
            assert np.allclose(lims, lims[0], rtol=1e-12), (name, label, lims)
    assert legend_overlaps(fig) == [], name


def _legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_overview_names_only_the_lines_it_draws(figures):
    """No title promises a T1 line; on the aligned axis (τ = t − T1) no T1 line and no T1 entry."""
    for run in ("long", "aligned"):
        fig = figures[f"{run}/overview"]
        assert "T_1" not in fig.get_suptitle()
        drawn = {ln.get_label() for ax in fig.axes for ln in ax.get_lines()}
        for text in _legend_texts(fig):
            if "T_" in text:
                assert text in drawn, (run, text)
    assert not any("T_1" in t for t in _legend_texts(figures["aligned/overview"]))
    assert any("T_2" in t for t in _legend_texts(figures["long/overview"]))
    # the loss and MSE curves end at the round-off floor: marked, said in words, on the common time axis
    fig = figures["long/overview"]
    assert any("floor" in t for t in _legend_texts(fig))
    assert any("below floor" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_theta_threshold_has_a_legend_entry(figures):
    for name in ("spiked/phase_diagram", "spiked/peak_ratio"):
        assert any(r"\theta = 2" in t for t in _legend_texts(figures[name])), name


def test_mean_field_one_colour_per_a(figures):
    """E4: the dashed theory line of each a in that a's colour, a different colour per a, the legend naming a."""
    fig = figures["e4_sgd_noise/sgd_noise"]
    for ax in _data_axes(fig):
        solid = [ln.get_color() for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        dashed = [ln.get_color() for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert solid == dashed and len(set(dashed)) == len(dashed) == 3
    assert sum(t.startswith("a = ") for t in _legend_texts(fig)) == 3


def test_band_is_geometric_on_a_log_axis():
    m, sd = np.array([1.0, 2.0, 0.0]), np.array([2.0, 0.5, 0.1])
    lo, hi = P.band(m, sd, log=True)
    assert np.allclose(lo[:2], m[:2] * np.exp(-sd[:2] / m[:2])) and np.allclose(hi[:2] * lo[:2], m[:2] ** 2)
    assert np.all(lo[:2] > 0) and np.isnan(lo[2])
    assert np.allclose(P.band(m, sd, log=False), (m - sd, m + sd))


def test_the_checks_fail_on_the_old_figures(figures):
    """The old placement (legend inside the misalignment panel, lower left) and a bad log axis are caught."""
    fig = figures["spiked/gd_vs_specgd"]
    for leg in list(fig.legends):
        leg.set_visible(False)
    ax = fig.axes[3]
    leg = ax.legend(frameon=False, loc="lower left")
    try:
        assert legend_overlaps(fig), "the old legend placement over the SpecGD curve is not caught"
    finally:
        leg.remove()
        for leg in fig.legends:
            leg.set_visible(True)
    # a narrow log range with matplotlib's default ticks: fewer than 3 major labels
    from matplotlib.figure import Figure
    bad = Figure()
    ax = bad.subplots()
    ax.plot([1, 2], [1.6, 3.5])
    ax.set_yscale("log")
    assert _log_axis_problems(bad)
    P.log_ticks(ax)
    assert _log_axis_problems(bad) == []
