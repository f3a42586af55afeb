"""One shape for every system (docs/theory.md §6): the verbs system / params / state / solve / predictions of
theory.isotropic, theory.powerlaw and theory.spiked, each checked against an independent route."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from phasedyn import simulate
from phasedyn import theory as T
from phasedyn.theory import isotropic as I
from phasedyn.theory import powerlaw as PL
from phasedyn.theory import spiked as SP

VERBS = ("system", "params", "state", "solve", "predictions")
CUSTOM = "(g**2 - h**2)**2 * (1 + h**2)"


@pytest.mark.parametrize("ns", [I, PL, SP], ids=["isotropic", "powerlaw", "spiked"])
def test_every_namespace_has_the_verbs(ns):
    for verb in VERBS:
        assert callable(getattr(ns, verb)), f"{ns.__name__}.{verb}"


def test_isotropic_state_is_the_statistics_of_w():
    p = T.isotropic_problem(50, seed=3)
    w = p.w0_batch(3)
    st = I.state(p, w)
    np.testing.assert_allclose(st["u"], w @ p.w_star, rtol=1e-14)
    np.testing.assert_allclose(st["s"], np.sum(w * w, axis=1), rtol=1e-14)
    assert isinstance(I.state(p)["u"], float)


@pytest.mark.parametrize("loss", [None, CUSTOM])
def test_isotropic_gd_map_is_the_simulation(loss):
    """The exact (u, s) GD map against finite-d population GD (jax.grad of the per-sample loss): round-off."""
    p = T.isotropic_problem(40, seed=0)
    traj = simulate.run(p, "gd", 0.002, 400, seeds=2, n_record=20, model=T.Model.coerce(loss))
    sol = I.solve(p, "gd", eta=0.002, steps=400, record_steps=traj.steps, w0=p.w0_batch(2), model=loss)
    np.testing.assert_allclose(sol["u"], traj.u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol["s"], traj.s, rtol=1e-9, atol=1e-12)


def test_isotropic_flow_equals_the_per_mode_flow_on_identity_spectrum():
    """Two derivations of one flow: the closed (u, s) system and the per-mode system with Sigma = I."""
    p = T.isotropic_problem(30, seed=2)
    ts = np.linspace(0, 2.0, 9)
    a = I.solve(p, "gf", ts=ts)
    b = PL.solve(p, "gf", solver="blocks", ts=ts)
    np.testing.assert_allclose(a["u"], b["u"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a["s"], b["s"], rtol=1e-6, atol=1e-8)


def test_powerlaw_solvers_agree_through_one_verb():
    p = T.powerlaw_problem(120, 1.5, seed=1)
    kw = dict(eta=0.01, steps=300, record_steps=np.arange(0, 301, 30))
    modes = PL.solve(p, "gd", solver="modes", **kw)
    blocks = PL.solve(p, "gd", solver="blocks", B=None, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        hier = PL.solve(p, "gd", solver="hierarchy", K=12, **kw)
    np.testing.assert_allclose(blocks["u"], modes["u"], rtol=1e-12, atol=1e-14)
    valid = np.isfinite(hier["u_1"])
    assert valid.sum() >= 3
    np.testing.assert_allclose(hier["u_1"][valid], modes["u"][valid], rtol=1e-8, atol=1e-10)
    assert set(PL.state(p, solver="hierarchy", K=3)) == {f"{x}_{k}" for x in "us" for k in range(4)}


def test_spiked_neuron_equals_the_per_mode_map():
    """The reduced (a, b, c) GD map against the per-mode GD map on the same spiked spectrum."""
    p = T.spiked_problem(12, 3.0, seed=0)
    kw = dict(eta=0.02, steps=200, record_steps=np.arange(0, 201, 20))
    abc = SP.solve(p, "gd", **kw)
    modes = PL.solve(p, "gd", solver="modes", **kw)
    np.testing.assert_allclose(abc["u"], modes["u"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(abc["s"], modes["s"], rtol=1e-10, atol=1e-12)
    st = SP.state(p)
    assert st["a"] == pytest.approx(p.statistics(p.w0)["u"], rel=1e-14)


def test_spiked_two_layer_start_and_custom_loss_refusal():
    p = T.spiked_problem(8, 4.0)
    assert SP.state(p, network="two_layer", init_scale=0.1) == {"a": 0.1, "b": 0.1, "c": 0.1}
    with pytest.raises(ValueError, match="init_scale"):
        SP.state(p, network="two_layer")
    with pytest.raises(ValueError, match="phase-retrieval loss only"):
        SP.system(p, "gd", CUSTOM, network="two_layer")
    assert SP.params(p, "gd", 0.1, network="two_layer") == {"theta": 4.0, "m": 8.0, "d": 8.0, "eta": 0.1}


def test_horizon_must_match_the_kind():
    p = T.isotropic_problem(10)
    with pytest.raises(ValueError, match="is a flow: give t1"):
        I.solve(p, "gf", steps=10)
    with pytest.raises(ValueError, match="exact map.*give steps"):
        I.solve(p, "gd", eta=0.1, t1=1.0)
    with pytest.raises(ValueError, match="kind isotropic"):
        I.solve(T.powerlaw_problem(10, 2.0), "gf", t1=1.0)


def test_predictions_share_their_keys_and_meaning():
    """rho is the Phase-I growth rate of |u| where the start sits: at the saddle (0, s*/3) for the isotropic
    start |w| = 1 (8 s*), at w = 0 for power-law data (top eigenvalue of the linearisation); on Sigma = I the
    latter is 12 s*, the isotropic linearisation at s = 0."""
    iso = T.isotropic_problem(100, seed=0)
    pi, pp = I.predictions(iso), PL.predictions(iso)
    for key in ("rho", "rho_at", "saddle_s", "T1"):
        assert key in pi and key in pp
    assert pi["rho"] == pytest.approx(8 * iso.s_star) and pi["rho_at"] == "saddle"
    assert pp["rho"] == pytest.approx(12 * iso.s_star) and pp["rho_at"] == "origin"
    assert pi["saddle_s"] == pytest.approx(iso.s_star / 3)
    sol = I.solve(iso, "gf", t1=5.0, n_save=2000)
    crossing = sol.t[np.argmax(np.abs(sol["u"]) >= 0.1)]
    assert crossing == pytest.approx(pi["T1"], rel=0.05)  # the linearised escape time against the flow
    sp_ = SP.predictions(T.spiked_problem(8, 3.0))
    assert sp_["threshold"] == 2.0 and sp_["spike_wins"] and sp_["rates"]["b"] == pytest.approx(16.0)
    assert SP.predictions(T.spiked_problem(8, 1.0))["peak_ratio_exponent"] is None
    custom = PL.predictions(T.powerlaw_problem(100, 2.0), CUSTOM)
    assert custom["T2_exponent"] is None and "T2_exponent" in custom["notes"]
