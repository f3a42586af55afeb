"""Theory against simulation (independent routes: only initial conditions pass between them)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import phasedyn.theory as th
from phasedyn.compare import Overlay, detect_phases, first_crossing, overlay_isotropic, settles_above
from phasedyn.compare.cli import main


# ----------------------------------------------------------------------------- overlays
def test_population_gd_matches_gradient_flow_after_escape():
    """Issue: GD at d = 2000, eta = 1e-3 vs the GF ODE aligned at |u| >= 0.1: max |u gap| < 0.02.

    For Σ = I population GD is exactly a 2D map, so the remaining gap is the O(eta) time discretisation.
    """
    ov = overlay_isotropic(th.isotropic_problem(2000, seed=3), "gf", eta=1e-3, steps=3000, seeds=4,
                           n_record=300, align=0.1, progress=False)
    per_seed = np.abs(ov.theory["u"] - ov.sim["u"]).max()
    assert ov.gap()["u"]["max"] < 0.02
    assert per_seed < 0.02
    assert np.abs(ov.theory["s"] - ov.sim["s"]).max() < 0.02
    # the gap is O(eta): it is not zero (the test would catch a theory fed from the simulation)
    assert per_seed > 1e-5
    assert np.all(ov.sim["u"][:, -1] > 0.99) and np.all(ov.theory["u"][:, -1] > 0.99)


def test_gd_map_matches_population_gd_to_roundoff():
    """The theory's exact isotropic GD map reproduces finite-d population GD at a large step."""
    ov = overlay_isotropic(th.isotropic_problem(500, seed=1), "gd", eta=2e-2, steps=250, seeds=3, progress=False)
    for k in ("u", "s", "loss"):
        assert np.abs(ov.theory[k] - ov.sim[k]).max() < 1e-10, k
    # and it is a real step: gradient flow on the same grid is far off
    gf = th.solve(th.isotropic_system("gf"), np.stack([ov.sim["u"][:, 0], ov.sim["s"][:, 0]], -1),
                  th.isotropic_params("gf", d=500), ts=ov.t)
    assert np.abs(gf["u"] - ov.sim["u"]).max() > 1e-2


def _sgd_gaps(d: int, eps: float = 0.02, t_max: float = 2.0, seeds: int = 16):
    """Max |u| gap of the seed mean against the SGD ODE and against plain GF (same simulation)."""
    gaps = []
    for theory in ("sgd", "gf"):  # the same seeds give the same simulation: only the theory differs
        ov = overlay_isotropic(th.isotropic_problem(d, seed=1), "sgd", eta=eps / d, steps=int(t_max * d / eps),
                               seeds=seeds, n_record=200, align=0.2, progress=False, theory=theory)
        gaps.append(ov.gap()["u"]["max"])
    return tuple(gaps)


def test_online_sgd_gap_shrinks_like_inverse_sqrt_d():
    """Mean of 16 seeds vs the SGD ODE (aligned at |u| >= 0.2), eta = 0.02/d, at d and 8d.

    Fluctuations are O(d^-1/2), so the gap ratio should be near sqrt(8) = 2.83; the band
    [sqrt(8)/2, 2 sqrt(8)] allows for the seed noise of a 16-seed mean. The O(eta) SGD term must
    matter: plain gradient flow is further from the simulation than the SGD ODE.
    """
    small_sgd, small_gf = _sgd_gaps(64)
    large_sgd, large_gf = _sgd_gaps(512)
    ratio = small_sgd / large_sgd
    print(f"SGD gap: d=64 {small_sgd:.4f}, d=512 {large_sgd:.4f}, ratio {ratio:.2f}; "
          f"GF gap: {small_gf:.4f}, {large_gf:.4f}")
    assert np.sqrt(8) / 2 < ratio < 2 * np.sqrt(8)
    assert large_sgd < large_gf
    assert small_sgd < small_gf


def test_sign_fix_and_seed_statistics():
    ov = overlay_isotropic(th.isotropic_problem(200, seed=0), "gf", eta=1e-2, steps=500, seeds=6, progress=False)
    assert np.all(ov.sim["u"][:, -1] >= 0) and np.all(ov.theory["u"][:, -1] >= 0)
    assert ov.sim["u"].shape == (6, ov.t.size)
    assert np.allclose(ov.std("sim", "u"), ov.sim["u"].std(0))
    # per-seed theory starts exactly at the simulation's own statistics, nothing else is shared
    assert np.array_equal(ov.theory["u"][:, 0], ov.sim["u"][:, 0])


def test_overlay_rejects_bad_input():
    with pytest.raises(ValueError, match="isotropic"):
        overlay_isotropic(th.powerlaw_problem(50, 2.0), "gf", progress=False)
    with pytest.raises(ValueError, match="eta"):
        overlay_isotropic(th.isotropic_problem(50), "gf", eta=-1.0, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        overlay_isotropic(th.isotropic_problem(50), "adam", progress=False)
    with pytest.raises(ValueError, match="never reach"):
        overlay_isotropic(th.isotropic_problem(50), "gf", eta=1e-3, steps=10, align=0.5, progress=False)


# ----------------------------------------------------------------------------- phases
def test_phase_detector_interpolates_known_crossings():
    t = np.linspace(0, 10, 101)
    u = 1 / (1 + np.exp(-(t - 4)))  # |u| >= 0.5 exactly at t = 4
    s = np.where(t < 2, 0.2, 1.0) + 0 * t
    assert first_crossing(t, u, 0.5) == pytest.approx(4.0, abs=2e-3)
    assert first_crossing(t, u, 2.0) is None
    assert settles_above(t, s, 1 / 3) == pytest.approx(2.0, abs=0.1)
    assert settles_above(t, 1 - s, 0.5) is None
    ph = detect_phases(t, -u, s, s_star=1.0, delta=0.5, eps=0.05)  # the sign of u is irrelevant
    assert ph["T1"] == pytest.approx(4.0, abs=2e-3)
    assert ph["T2"] == pytest.approx(4 + np.log(0.95 / 0.05), abs=2e-2)  # u = 0.95 there
    with pytest.raises(ValueError, match="delta"):
        detect_phases(t, u, s, delta=1.5)


def test_phase_T1_matches_predicted_escape_time():
    """Detector on the ODE against the closed-form escape time (small delta, linear regime)."""
    gf = th.isotropic_system("gf")
    u0, delta = 1e-6, 1e-3
    sol = th.solve(gf, {"u": u0, "s": 1.0}, th.isotropic_params("gf"), ts=np.linspace(0, 3, 30001))
    t1 = detect_phases(sol.t, sol["u"], sol["s"], delta=delta)["T1"]
    assert t1 == pytest.approx(th.escape_time(u0, 1.0, 1.0, delta), rel=2e-3)


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv, word", [
    (["run", "isotropic", "--d", "1"], "d"),
    (["run", "isotropic", "--eta", "-1"], "eta"),
    (["run", "isotropic", "--eta", "nan"], "eta"),
    (["run", "isotropic", "--seeds", "0"], "seeds"),
    (["run", "isotropic", "--noise", "-0.5"], "noise"),
    (["run", "isotropic", "--optimizer", "adam"], "optimizer"),
    (["run", "isotropic", "--d", "ten"], "--d"),
    (["run", "powerlaw-nope"], "system"),
])
def test_cli_bad_arguments_exit_2_with_one_line(argv, word, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err, err


def test_cli_diverging_run_exits_1(tmp_path, capsys):
    code = main(["run", "isotropic", "--optimizer", "gd", "--d", "50", "--eta", "1", "--steps", "100",
                 "--seeds", "2", "--out", str(tmp_path), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "step" in err and len(err.strip().splitlines()) == 1


def test_cli_run_writes_stable_outputs(tmp_path):
    out = tmp_path / "iso"
    code = main(["run", "isotropic", "--d", "100", "--eta", "1e-2", "--steps", "300", "--seeds", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"system", "params", "phases", "final", "gap", "version", "schema"}
    assert summary["schema"] == 2
    assert set(summary["phases"]) == {"T1", "T1p", "T2"}
    assert all(set(v) == {"theory", "simulation"} for v in summary["phases"].values())
    assert set(summary["final"]) == {"theory", "simulation"}
    assert set(summary["final"]["theory"]) == {"u", "s", "loss", "mse"}
    assert all(set(v) == {"max", "mean"} for v in summary["gap"].values())
    assert summary["params"]["d"] == 100 and summary["params"]["eta"] == 1e-2
    npz = np.load(out / "trajectories.npz")
    expected = {"t"} | {f"theory_{k}{m}" for k in ("u", "s", "loss", "mse") for m in ("", "_std")} | {
        f"sim_{k}_{m}" for k in ("u", "s", "loss", "mse") for m in ("mean", "std")}
    assert set(npz.files) == expected
    assert json.loads((out / "config.json").read_text())["d"] == 100
    for f in ("overview.png", "overview.pdf", "u_s.png", "u_s.pdf"):
        assert (out / f).stat().st_size > 1000


def test_cli_prng_is_used_and_recorded(tmp_path):
    """--prng reaches the simulation and is written to config.json and summary params; a bad name is refused."""
    args = ["run", "isotropic", "--optimizer", "sgd", "--d", "40", "--steps", "200", "--seeds", "2", "--no-progress"]
    assert main(args + ["--prng", "philox4x32", "--out", str(tmp_path / "ph")]) == 0
    assert main(args + ["--out", str(tmp_path / "tf")]) == 0
    ph, tf = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("ph", "tf"))
    assert ph["params"]["prng"] == "philox4x32" and tf["params"]["prng"] == "threefry2x32"
    assert json.loads((tmp_path / "ph" / "config.json").read_text())["prng"] == "philox4x32"
    assert ph["final"]["simulation"]["u"] != tf["final"]["simulation"]["u"]  # another sample stream
    with pytest.raises(SystemExit):
        main(args + ["--prng", "mt19937", "--out", str(tmp_path / "bad")])


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "phasedyn.compare.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "phasedyn" in out.stdout


def test_titles_name_what_was_simulated_and_the_theory():
    """Issue 15 §3: the overview's title names the simulation and the theory it is compared with."""
    from phasedyn.compare.plots import run_label

    t = np.linspace(0.0, 1.0, 5)
    curves = {k: np.ones((1, 5)) for k in ("u", "s", "loss", "mse")}

    def ov(system, **params):
        return Overlay(system, t, curves, curves, params, np.zeros(1), 1.0)

    assert run_label(ov("isotropic-gf", simulation_optimizer="gd", theory="gf")) == \
        "isotropic: population GD vs gradient flow"
    assert run_label(ov("isotropic-sgd", simulation_optimizer="sgd", theory="sgd", theory_start="law")) == \
        "isotropic: online SGD vs SGD mean field (law of the start)"
    assert run_label(ov("powerlaw-gd-hierarchy-K16-top", simulation_optimizer="gd", optimizer="gd",
                        solver="hierarchy")) == "powerlaw: population GD vs exact GD map, hierarchy"
    assert run_label(ov("spiked-specgd")) == "spiked-specgd"
