"""Power-law data: finite-d simulation against the exact per-mode / block / hierarchy theory."""

from __future__ import annotations

import json

import numpy as np
import pytest

import phasedyn.theory as th
from phasedyn.compare.cli import main
from phasedyn.compare.fit import growth_rate, growth_rate_seeds
from phasedyn.compare.powerlaw import overlay_powerlaw


@pytest.fixture(scope="module")
def problem_1000():
    return th.powerlaw_problem(1000, 2.0, seed=0)


def test_population_gd_matches_exact_per_mode_flow(problem_1000):
    """Issue 3: population GD at d = 1000 (eta = 1e-2) vs the exact per-mode ODE, aligned at escape:
    within 0.02 in u and s. The remaining gap is the O(eta) time discretisation."""
    ov = overlay_powerlaw(problem_1000, "gf", eta=1e-2, steps=20_000, seeds=2, solver="modes", align=0.1,
                          progress=False)
    gap_u = np.abs(ov.theory["u"] - ov.sim["u"]).max()
    gap_s = np.abs(ov.theory["s"] - ov.sim["s"]).max()
    assert gap_u < 0.02 and gap_s < 0.02
    assert gap_u > 1e-6  # a real O(eta) gap: theory is not fed from the simulation


def test_gd_map_per_mode_matches_population_gd_to_roundoff():
    p = th.powerlaw_problem(300, 1.5, seed=2)
    ov = overlay_powerlaw(p, "gd", eta=5e-2, steps=2000, seeds=2, solver="modes", progress=False)
    for k in ("u", "s", "loss", "mse"):
        assert np.abs(ov.theory[k] - ov.sim[k]).max() < 1e-10, k


def test_blocks_and_hierarchy_overlays_agree_with_simulation_in_phase_one():
    p = th.powerlaw_problem(400, 2.0, seed=1)
    blocks = overlay_powerlaw(p, "gf", eta=1e-2, steps=300, seeds=2, solver="blocks", B=60, progress=False)
    hier = overlay_powerlaw(p, "gf", eta=1e-2, steps=300, seeds=2, solver="hierarchy", K=12, progress=False)
    for ov in (blocks, hier):
        assert np.abs(ov.theory["u"] - ov.sim["u"]).max() < 0.02, ov.system


def test_growth_rate_fit_window_rule():
    t = np.linspace(0, 5, 501)
    u = 1e-4 * np.exp(2.0 * t) * (1 + 0.5 * np.exp(-5 * t))  # transient, then rate 2
    assert growth_rate(t, u, delta=0.1) == pytest.approx(2.0, rel=2e-2)
    assert growth_rate(t, 1e-4 * np.ones_like(t)) is None  # never grows: no window
    res = growth_rate_seeds(t, np.stack([u, 2 * u]), delta=0.1)
    assert res["n"] == 2 and res["ci95"][0] <= res["value"] <= res["ci95"][1]


def test_cli_powerlaw_writes_predictions_and_arrays(tmp_path):
    out = tmp_path / "pl"
    code = main(["run", "powerlaw", "--d", "200", "--a", "2", "--optimizer", "gd", "--steps", "3000",
                 "--seeds", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert {"system", "params", "phases", "final", "gap", "version", "predictions", "measured"} <= set(s)
    assert s["predictions"]["rho"] == pytest.approx(s["predictions"]["rho_eig"], rel=1e-8)
    assert s["predictions"]["T2_exponent"] == pytest.approx(4.0)
    assert set(s["measured"]["rho"]) == {"theory", "simulation"}
    npz = np.load(out / "trajectories.npz")
    assert {"spectrum", "w_star", "w0", "t", "theory_u", "sim_u_mean"} <= set(npz.files)
    assert npz["spectrum"].shape == (200,) and npz["w0"].shape == (2, 200)
    assert np.isclose(npz["spectrum"].sum(), 1.0)


@pytest.mark.parametrize("argv, word", [
    (["run", "powerlaw", "--a", "0"], "a"),
    (["run", "powerlaw", "--a", "-1"], "a"),
    (["run", "powerlaw", "--K", "0"], "K"),
    (["run", "powerlaw", "--d", "1"], "d"),
    (["run", "powerlaw", "--eta", "0"], "eta"),
    (["run", "powerlaw", "--closure", "cubic"], "closure"),
])
def test_cli_powerlaw_bad_arguments(argv, word, capsys):
    """Validation errors (returned) and argparse errors (raised) both exit 2 with one line naming the parameter."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0], err
