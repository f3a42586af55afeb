"""Tests of phasedyn.theory.problem: spectra, target, initialisation and input validation.

Independent routes: the Hurwitz zeta function (mpmath) for H_{d,a}; direct numpy sums for s*, |w*|,
|w0|; the uniform-on-the-sphere property E[(w0.v)^2] = |v|^2/d over many seeds (4 standard errors).
"""

from __future__ import annotations

import json
import warnings

import mpmath
import numpy as np
import pytest

from phasedyn.theory import (
    Problem,
    custom_problem,
    harmonic,
    isotropic_params,
    isotropic_problem,
    isotropic_spectrum,
    make_w0,
    make_w_star,
    powerlaw_problem,
    powerlaw_spectrum,
    spiked_problem,
    spiked_spectrum,
)


# ----------------------------------------------------------------------------- spectra
@pytest.mark.parametrize("d,a", [(2, 2.0), (100, 1.5), (1000, 2.0), (5000, 3.0), (300, 1.2)])
def test_powerlaw_spectrum(d, a):
    lam = powerlaw_spectrum(d, a)
    assert lam.shape == (d,)
    assert np.sum(lam) == pytest.approx(1.0, rel=1e-14)
    assert lam[0] / lam[-1] == pytest.approx(d**a, rel=1e-12)
    assert np.all(np.diff(lam) < 0)
    i = np.arange(1, d + 1)
    np.testing.assert_allclose(lam * i**a, lam[0], rtol=1e-12)  # lambda_i proportional to i^-a


@pytest.mark.parametrize("d,a", [(10, 2.0), (1000, 1.5), (1000, 0.5), (77, 3.3)])
def test_harmonic_against_hurwitz_zeta(d, a):
    # H_{d,a} = zeta(a, 1) - zeta(a, d + 1) (Hurwitz zeta; valid for every a != 1 by continuation)
    with mpmath.workdps(30):
        exact = float(mpmath.zeta(a, 1) - mpmath.zeta(a, d + 1))
    assert harmonic(d, a) == pytest.approx(exact, rel=1e-13)
    # and the spectrum's normaliser is that number
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert powerlaw_spectrum(d, a)[0] == pytest.approx(1.0 / exact, rel=1e-13)


def test_isotropic_and_spiked_spectra():
    np.testing.assert_array_equal(isotropic_spectrum(5), np.ones(5))
    np.testing.assert_array_equal(spiked_spectrum(4, 3.0), [4.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(spiked_spectrum(3, -0.5), [0.5, 1.0, 1.0])


@pytest.mark.parametrize("a", [0.5, 1.0])
def test_small_exponent_warns_but_runs(a):
    with pytest.warns(UserWarning, match="a > 1"):
        lam = powerlaw_spectrum(200, a)
    assert np.sum(lam) == pytest.approx(1.0, rel=1e-14)
    with pytest.warns(UserWarning):
        p = powerlaw_problem(200, a, seed=3)
    assert p.s_star == pytest.approx(1.0, rel=1e-13)


def test_large_exponent_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        powerlaw_spectrum(200, 1.01)
        powerlaw_problem(200, 2.0)


# ----------------------------------------------------------------------------- target and init
@pytest.mark.parametrize(
    "build",
    [lambda: powerlaw_problem(500, 2.0, seed=4), lambda: isotropic_problem(300, seed=2),
     lambda: powerlaw_problem(50, 1.5, seed=9)],
)
def test_default_target_has_unit_s_star(build):
    p = build()
    assert np.sum(p.lam * p.w_star**2) == pytest.approx(1.0, rel=1e-13)
    assert p.s_star == pytest.approx(1.0, rel=1e-13)
    assert np.linalg.norm(p.w0) == pytest.approx(1.0, rel=1e-14)


def test_target_normalisations():
    d = 400
    p = powerlaw_problem(d, 2.0, seed=5, norm="norm_d")
    assert np.sum(p.w_star**2) == pytest.approx(d, rel=1e-13)
    q = powerlaw_problem(d, 2.0, seed=5, norm="unit")
    assert np.linalg.norm(q.w_star) == pytest.approx(1.0, rel=1e-14)
    r = powerlaw_problem(d, 2.0, seed=5)
    # same seed, same direction, different normalisation
    for x in (p.w_star, q.w_star):
        np.testing.assert_allclose(x / np.linalg.norm(x), r.w_star / np.linalg.norm(r.w_star), rtol=1e-12)


def test_spiked_problem_target():
    p = spiked_problem(200, 3.0, seed=1)
    assert p.lam[0] == 4.0 and np.all(p.lam[1:] == 1.0)
    assert abs(p.w_star[0]) < 1e-15  # w* orthogonal to the spike direction e_1
    assert np.linalg.norm(p.w_star) == pytest.approx(1.0, rel=1e-14)
    assert p.s_star == pytest.approx(1.0, rel=1e-14)  # lambda = 1 on w*'s support
    v = np.random.default_rng(0).standard_normal(200)
    w = make_w_star(np.ones(200), seed=1, norm="unit", orthogonal_to=v)
    assert abs(w @ v) < 1e-12 * np.linalg.norm(v)


def test_init_scale():
    p = isotropic_problem(100, seed=0, init_scale=2.5)
    assert np.linalg.norm(p.w0) == pytest.approx(2.5, rel=1e-14)
    assert np.linalg.norm(make_w0(30, seed=1, init_scale=0.1)) == pytest.approx(0.1, rel=1e-14)
    np.testing.assert_allclose(np.linalg.norm(p.w0_batch(4), axis=1), 2.5, rtol=1e-14)


def test_seeds_reproducible_and_distinct():
    a1, a2 = powerlaw_problem(300, 2.0, seed=7), powerlaw_problem(300, 2.0, seed=7)
    np.testing.assert_array_equal(a1.w_star, a2.w_star)
    np.testing.assert_array_equal(a1.w0, a2.w0)
    b = powerlaw_problem(300, 2.0, seed=8)
    assert not np.allclose(a1.w_star, b.w_star) and not np.allclose(a1.w0, b.w0)
    c = powerlaw_problem(300, 2.0, seed=7, init_seed=8)
    np.testing.assert_array_equal(c.w_star, a1.w_star)  # init_seed only changes w0
    assert not np.allclose(c.w0, a1.w0)
    # w* and w0 come from different streams even for the same seed
    z_star, z0 = a1.w_star / np.linalg.norm(a1.w_star), a1.w0
    assert abs(z_star @ z0) < 0.5
    batch = a1.w0_batch(3)
    np.testing.assert_array_equal(batch[0], a1.w0)
    assert batch.shape == (3, 300) and not np.allclose(batch[1], batch[2])
    np.testing.assert_array_equal(a1.w0_batch([7, 9])[1], make_w0(300, 9))


def test_w0_is_uniform_on_the_sphere():
    """E[(w0.v)^2] = |v|^2/d and E[w0] = 0 for w0 uniform on the unit sphere: over 4000 seeds, 4 SE."""
    d = 40
    W0 = np.stack([make_w0(d, seed) for seed in range(4000)])
    v = np.random.default_rng(1).standard_normal(d)
    proj2 = (W0 @ v) ** 2
    se = proj2.std(ddof=1) / np.sqrt(proj2.size)
    assert abs(proj2.mean() - v @ v / d) <= 4 * se
    mean_se = W0.std(axis=0, ddof=1) / np.sqrt(W0.shape[0])
    assert np.all(np.abs(W0.mean(axis=0)) <= 4.5 * mean_se)  # 40 coordinates: 4.5 SE keeps the family-wise rate ~3e-4


def test_statistics_and_meta():
    p = powerlaw_problem(50, 2.0, seed=1)
    st = p.statistics(p.w0)
    assert st["u"] == pytest.approx(float(np.dot(p.lam * p.w0, p.w_star)), rel=1e-13)
    assert st["s"] == pytest.approx(float(np.dot(p.lam * p.w0, p.w0)), rel=1e-13)
    st0 = p.statistics(p.w0, k=0)
    assert st0["s"] == pytest.approx(1.0, rel=1e-14)
    assert p.d == 50 and p.kind == "powerlaw"
    meta = json.loads(json.dumps(p.meta))
    assert meta["a"] == 2.0 and meta["d"] == 50 and meta["seed"] == 1


def test_custom_problem_roundtrip():
    lam = np.array([3.0, 1.0, 0.5])
    p = custom_problem(lam, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], sigma=0.2, label="x")
    assert isinstance(p, Problem) and p.kind == "custom" and p.meta == {"label": "x"}
    assert p.s_star == 3.0 and p.sigma == 0.2


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: powerlaw_problem(1, 2.0), "d"),
        (lambda: powerlaw_problem(0, 2.0), "d"),
        (lambda: powerlaw_problem(2.5, 2.0), "d"),
        (lambda: isotropic_problem(1), "d"),
        (lambda: spiked_problem(-3, 1.0), "d"),
        (lambda: powerlaw_spectrum(1, 2.0), "d"),
        (lambda: powerlaw_problem(100, 0.0), "a"),
        (lambda: powerlaw_problem(100, -1.0), "a"),
        (lambda: powerlaw_problem(100, float("nan")), "a"),
        (lambda: powerlaw_problem(100, float("inf")), "a"),
        (lambda: spiked_problem(100, -1.0), "theta"),
        (lambda: spiked_problem(100, -2.0), "theta"),
        (lambda: spiked_problem(100, float("nan")), "theta"),
        (lambda: powerlaw_problem(100, 2.0, seed=-1), "seed"),
        (lambda: powerlaw_problem(100, 2.0, seed=1.5), "seed"),
        (lambda: powerlaw_problem(100, 2.0, init_scale=0.0), "init_scale"),
        (lambda: powerlaw_problem(100, 2.0, norm="l2"), "norm"),
        (lambda: powerlaw_problem(100, 2.0, sigma=-0.1), "sigma"),
        (lambda: custom_problem([1.0, 0.0, 2.0], np.ones(3), np.ones(3)), "spectrum"),
        (lambda: custom_problem([1.0, -1.0, 2.0], np.ones(3), np.ones(3)), "spectrum"),
        (lambda: custom_problem([1.0, np.nan, 2.0], np.ones(3), np.ones(3)), "spectrum"),
        (lambda: custom_problem([1.0, np.inf, 2.0], np.ones(3), np.ones(3)), "spectrum"),
        (lambda: custom_problem([1.0], np.ones(1), np.ones(1)), "spectrum"),
        (lambda: custom_problem(np.ones((2, 2)), np.ones(2), np.ones(2)), "spectrum"),
        (lambda: custom_problem(np.ones(3), np.ones(3), [0.0, np.nan, 1.0]), "w0"),
        (lambda: custom_problem(np.ones(3), np.ones(4), np.ones(3)), "w_star"),
        (lambda: make_w_star(np.ones(3), orthogonal_to=np.ones(4)), "orthogonal_to"),
        (lambda: isotropic_params("sgd", eta=0.0), "eta"),
        (lambda: isotropic_params("sgd", eta=-1e-3), "eta"),
        (lambda: isotropic_params("sgd", eta=float("nan")), "eta"),
        (lambda: isotropic_params("gd", eta=float("inf")), "eta"),
        (lambda: isotropic_params("sgd"), "eta"),
    ],
)
def test_invalid_input_raises_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"(^|\W){name}(\W|$)"):
        call()


def test_spectrum_of_wrong_length():
    """A spectrum whose length does not match w*/w0 is rejected, with a message about the length."""
    with pytest.raises(ValueError, match="length") as err:
        custom_problem(np.ones(4), np.ones(5), np.ones(5))
    assert any(n in str(err.value) for n in ("spectrum", "lam", "w_star"))
