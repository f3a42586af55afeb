"""``phasedyn reproduce p1 --quick``: files, report rows, and numbers that would catch a wrong reproduction.

The quick run (< 2 min) is made once per module; every test reads its outputs.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from _shell import run_once

import phasedyn.theory as th
from phasedyn.compare import reproduce as R
from phasedyn.compare.cli import main

FIGURES = {"E1": "fig2_u_s_mse", "E2": "escape_u", "E3": "phase3_mse", "E4": "sgd_noise", "E5": "phase2_log1mu"}


# README.md's `phasedyn reproduce p1`, as tests/test_readme.py runs it (--quick added): one run per session
README_REPRODUCE = [["phasedyn", "reproduce", "p1", "--quick"]]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    proc, cwd = run_once(README_REPRODUCE, tmp_path_factory.mktemp("repro"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = cwd / "phasedyn-out" / "p1"
    results = {name: _strict((root / R.FOLDERS[name] / "results.json").read_text()) for name in R.EXPERIMENTS}
    return root, results


def _strict(text: str) -> object:
    """Strict JSON: a NaN / Infinity literal fails (issue 11: the quick run wrote "ci95": [NaN, NaN])."""
    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def test_every_json_file_is_strict_and_no_temporary_folder_is_left(quick):
    root, _ = quick
    files = sorted(root.rglob("*.json"))
    assert len(files) >= 2 * len(R.EXPERIMENTS)  # config.json and results.json (+ summary.json) per experiment
    for f in files:
        _strict(f.read_text())
    assert not [p.name for p in root.parent.iterdir() if ".phasedyn-" in p.name]


def _rows(results, name):
    return results[name]["rows"]


def test_every_experiment_writes_config_results_and_figures(quick):
    root, _ = quick
    for name, stem in FIGURES.items():
        folder = root / R.FOLDERS[name]
        for f in ("config.json", "results.json", "results.npz", f"{stem}.png", f"{stem}.pdf"):
            assert (folder / f).is_file() and (folder / f).stat().st_size > 0, (name, f)
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["mode"] == "quick" and cfg["experiment"] == name and "seed" in cfg["config"]
        with np.load(folder / "results.npz") as npz:
            assert any(k.endswith("t") for k in npz.files)
            assert all(np.all(np.isfinite(npz[k])) for k in npz.files if "theory" in k)


def test_report_has_a_row_per_experiment_and_a_setting_line(quick, capsys):
    root, results = quick
    text = (root / "REPORT.md").read_text()
    for name in R.EXPERIMENTS:
        rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(rows) == len(_rows(results, name)) >= 1, name
        assert all(len(re.findall(r"(?<!\\)\|", line)) == 18 for line in rows), name  # 17 columns, | escaped
        assert re.search(rf"^- \*\*{name}\*\* .*(REDUCED|paper setting)", text, re.M), name
    assert "REDUCED" in text and "quick" in text
    assert "a = 0.5 <= 1" in text  # the a <= 1 warning is recorded for E4


def test_escape_rate_measured_within_5_percent_from_a_small_init(quick):
    """E2: from |w(0)| = 1e-6 the slope of log|u| (|u| in [1e-4, 1e-2]) is [P1]'s rho within 5%, theory and GD."""
    _, results = quick
    small = [r for r in _rows(results, "E2") if "1e-06" in r["case"]]
    assert len(small) == len(R.QUICK["E2"].a_values)
    for r in small:
        for key in ("rho_theory", "rho_sim"):
            assert r[key] == pytest.approx(r["rho_pred"], rel=0.05), (r["case"], key)
    # and the secular-equation root agrees with the Lanczos top eigenvalue of 4Σ + 8(Σw*)(Σw*)^T
    for det in results["E2"]["details"].values():
        assert det["predictions"]["rho_eig"] == pytest.approx(det["predictions"]["rho"], rel=1e-8)
    # escape is faster for larger a ([P1]): rho increases with a
    rhos = [r["rho_pred"] for r in small]
    assert rhos == sorted(rhos)


def test_escape_time_linearisation_leads_by_order_one_over_rho_and_p1_formula_is_the_right_order(quick):
    _, results = quick
    for key, det in results["E2"]["details"].items():
        t1_th, t1_sim = det["phases"]["T1"]["theory"], det["phases"]["T1"]["simulation"]
        assert t1_th is not None and t1_sim is not None, key
        assert t1_sim == pytest.approx(t1_th, rel=0.02), key  # GD at eta = 1e-3 vs gradient flow
        # the linear flow (s = 0) escapes first: s > 0 near |u| = delta slows u, by an O(1/rho) time
        rho = det["predictions"]["rho"]
        assert 0 < t1_th - det["T1_linearised"]["mean"] < 3 / rho, key
        assert 0.3 < det["predictions"]["T1"] / t1_th < 1.5, key  # log(delta/|u0|)/rho: same order


def test_gd_tracks_gradient_flow(quick):
    """E1, E2, E3, E5: GD (eta <= 1e-2) against the exact per-mode gradient flow from the same w(0)."""
    _, results = quick
    for name in ("E1", "E2", "E3"):
        for r in _rows(results, name):
            assert r["gap_u"] < 0.02, (name, r["case"])
            if r["T2_theory"] is not None:
                assert r["T2_sim"] == pytest.approx(r["T2_theory"], rel=0.02), (name, r["case"])
    e1 = _rows(results, "E1")[0]
    assert e1["T2_theory"] is not None and e1["T1_theory"] < e1["T2_theory"]


def test_phase3_effective_age_beats_p1_form_and_errors_are_small(quick):
    _, results = quick
    for name in ("E1", "E3"):
        cell = _rows(results, name)[0]["phase3"]
        for who in ("theory", "simulation"):
            c = cell[who]
            assert c["effective_age"] < c["S_d"], (name, who)
            assert c["effective_age"] < 0.1 and c["S_d"] < 0.5, (name, who)
            assert c["asymptotic"] is not None and c["asymptotic"] < 0.5, (name, who)
        assert cell["theory"]["S_d"] == pytest.approx(cell["simulation"]["S_d"], abs=0.02)
        assert cell["asymptotic_vs_S_d"] < 0.1


def test_sgd_mean_field_matches_simulation_at_the_end(quick):
    _, results = quick
    rows = _rows(results, "E4")
    assert [r["a"] for r in rows] == list(R.QUICK["E4"].a_values)
    for key, det in results["E4"]["details"].items():
        fin = det["final"]
        assert fin["simulation"]["mse"] == pytest.approx(fin["theory"]["mse"], rel=0.2), key
        assert fin["simulation"]["u"] > 0.9, key
        assert (len(det["warnings"]) > 0) == (det["predictions"]["asymptotics_apply"] is False), key
    assert all(r["p_pred"] is None for r in rows if r["a"] <= 1)


def test_phase2_exponent_is_fitted_with_ci_and_reported_below_the_bound(quick):
    _, results = quick
    rows = _rows(results, "E5")
    assert [r["d"] for r in rows] == list(R.QUICK["E5"].d_values)
    values = []
    for r in rows:
        fit = r["p_theory"]
        assert fit is not None and fit["predicted"] == pytest.approx(4.0)
        assert fit["ci95"][0] <= fit["value"] <= fit["ci95"][1]
        assert 0.5 < fit["value"] < 4.0  # measured exponent, well below [P1]'s O(.) bound at this d
        values.append(fit["value"])
        if r["p_sim"] is not None:
            assert r["p_sim"]["value"] == pytest.approx(fit["value"], abs=0.1)
    assert values == sorted(values)  # grows with d (towards the bound?) -- as measured on the exact system


def test_phase2_tail_relaxation_predicts_T2_and_is_reported(quick):
    """E5: T2(eps) - T1' of theory and GD against phase2_time (eps from 0.02 down to what the quick horizon
    reaches), within 3.5 eps (the first-order bound of tests/test_powerlaw_theory.py); slopes within 0.06;
    the REPORT.md section lists every case."""
    root, results = quick
    for r in _rows(results, "E5"):
        tail = r["tail"]
        for who in ("theory", "simulation"):
            c = tail[who]
            if c is None:
                assert who == "simulation" and "theory only" in r["case"]
                continue
            eps = np.asarray(c["eps"])
            assert eps.size >= 3 and eps[0] == pytest.approx(0.02)
            assert np.all(np.abs(c["rel_err"]) <= 3.5 * eps), (r["case"], who, c["rel_err"])
            assert abs(c["exponent"]["predicted"] - c["exponent"]["measured"]) <= 0.06
            assert c["exponent_asymptotic"] == pytest.approx(2.0)
    text = (root / "REPORT.md").read_text()
    section = text.split("## Phase II against the tail-relaxation theory", 1)[1].split("## Settings")[0]
    assert sum(line.startswith("| d=") for line in section.splitlines()) == len(_rows(results, "E5"))


def test_linear_escape_time_is_exact_for_the_linear_flow():
    """Independent check of the linearised T1: for w0 along the top eigenvector of M, u grows exactly as e^{rho t}."""
    p = th.powerlaw_problem(200, 2.0, seed=3)
    v = p.lam * p.w_star
    M = np.diag(4 * p.lam) + 8 * np.outer(v, v)
    mu, V = np.linalg.eigh(M)
    w0 = 1e-6 * V[:, -1] * np.sign(V[:, -1] @ v)
    u0 = v @ w0
    expected = math.log(0.1 / u0) / mu[-1]
    assert R.linear_escape_time(p, w0, 0.1) == pytest.approx(expected, rel=1e-6)
    assert mu[-1] == pytest.approx(th.powerlaw.escape_rate(p), rel=1e-10)


def test_rho_fit_window_in_absolute_u():
    t = np.linspace(0, 10, 1001)
    u = np.stack([1e-7 * np.exp(2.5 * t), -3e-7 * np.exp(2.5 * t)])
    res = R.rho_fit(t, u, 1e-4, 1e-2)
    assert res["value"] == pytest.approx(2.5, rel=1e-6) and res["n"] == 2
    assert R.rho_fit(t, 1e-6 * np.ones_like(t), 1e-4, 1e-2) is None


@pytest.mark.parametrize("argv", [
    ["reproduce"],
    ["reproduce", "p2"],
    ["reproduce", "p1", "--bogus"],
    ["reproduce", "p1", "--quick=yes"],
])
def test_reproduce_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err


def test_reproduce_parser_keeps_the_top_level_out_and_no_progress():
    from phasedyn.compare.cli import _parser

    args = _parser().parse_args(["--out", "X", "--no-progress", "reproduce", "p1", "--quick"])
    assert args.command == "reproduce" and args.quick and args.rep_out is None and str(args.out) == "X"
    assert args.no_progress and not args.rep_no_progress
    args = _parser().parse_args(["reproduce", "p1", "--out", "Y"])
    assert str(args.rep_out) == "Y" and not args.quick
