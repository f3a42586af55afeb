"""Overlay's gap and final on a theory curve that is NaN past its validity stop (a truncated hierarchy, docs/theory.md
§3(B), §4): the gap is measured on the valid part, never NaN because of the tail; final is None there. Synthetic curves, no solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phasedyn.compare import STATS, Overlay

N_T = 11
T = np.linspace(0.0, 1.0, N_T)
VALID = (7, 9)  # per seed: the theory is NaN from this grid index on (the seed mean from index 7)
OFFSET = 0.01  # theory - simulation on the valid part
SPIKE = (4, 0.05)  # one grid index where the two differ more: the gap must see it


def _overlay(nan_stat: str | None = None) -> Overlay:
    base = np.stack([1.0 + T, 2.0 - T])  # (2 seeds, N_T)
    sim = {k: base * (i + 1) for i, k in enumerate(STATS)}
    theory = {k: v + OFFSET for k, v in sim.items()}
    for k in STATS:
        theory[k][:, SPIKE[0]] = sim[k][:, SPIKE[0]] + SPIKE[1]
        for seed, stop in enumerate(VALID):
            theory[k][seed, stop:] = np.nan
    if nan_stat is not None:
        theory[nan_stat][:] = np.nan
    return Overlay("hierarchy-gd-K4", T, theory, sim, {"optimizer": "gd"}, np.zeros(2), 1.0)


def test_gap_is_measured_where_both_curves_are_finite():
    gap = _overlay().gap()
    assert set(gap) == set(STATS)
    n_valid = min(VALID)  # grid indices 0..6 have both seed means finite
    for k in STATS:
        assert gap[k]["max"] == pytest.approx(SPIKE[1], rel=1e-12), k
        assert gap[k]["mean"] == pytest.approx(((n_valid - 1) * OFFSET + SPIKE[1]) / n_valid, rel=1e-12), k


def test_final_is_the_value_at_the_end_or_none():
    """A theory curve that ended at its validity stop has no value at the run's end: None, not the value at an
    earlier time beside the simulation's final one (the test of the README hierarchy run asserts the same)."""
    ov = _overlay()
    fin = ov.final()
    for k in STATS:
        assert fin["theory"][k] is None, k
        assert fin["simulation"][k] == pytest.approx(ov.mean("sim", k)[-1], rel=1e-15), k  # the run's end


def test_a_curve_without_finite_values_gives_none_and_strict_json():
    ov = _overlay(nan_stat="mse")
    gap, fin = ov.gap(), ov.final()
    assert gap["mse"] == {"max": None, "mean": None} and fin["theory"]["mse"] is None
    assert fin["simulation"]["mse"] == pytest.approx(ov.mean("sim", "mse")[-1])
    assert gap["u"]["max"] == pytest.approx(SPIKE[1])  # the other statistics are unaffected
    json.dumps({"gap": gap, "final": fin}, allow_nan=False)  # nothing non-finite left


def test_gap_and_final_without_nan_are_unchanged():
    """No NaN anywhere: the gap is over the whole grid and final is the grid's last value, as before."""
    base = np.stack([1.0 + T, 2.0 - T])
    sim = {k: base.copy() for k in STATS}
    theory = {k: base + OFFSET * T for k in STATS}
    ov = Overlay("isotropic-gf", T, theory, sim, {"optimizer": "gd"}, np.zeros(2), 1.0)
    for k in STATS:
        diff = np.abs(ov.mean("theory", k) - ov.mean("sim", k))
        assert ov.gap()[k] == {"max": float(diff.max()), "mean": float(diff.mean())}
        assert ov.final()["theory"][k] == float(ov.mean("theory", k)[-1])
        assert ov.final()["simulation"][k] == float(ov.mean("sim", k)[-1])
