r"""The finite-d problem: covariance spectrum, target :math:`w^*`, initialisation (docs/theory.md §1).

Everything is written in the eigenbasis of :math:`\Sigma = \mathrm{diag}(\lambda_1,\dots,\lambda_d)`.

* Isotropic: :math:`\lambda_i = 1`.
* Power law: :math:`\lambda_i = i^{-a}/H_{d,a}`, :math:`H_{d,a}=\sum_{j\le d} j^{-a}`, so
  :math:`\mathrm{tr}\,\Sigma = 1`.
* Spiked: :math:`\Sigma = I + \theta\, v v^\top` with :math:`v = e_1` (the spike is the first
  eigen-direction) and :math:`w^* \perp v`.

Target (default ``"s_star"``): :math:`w^* = z/|\Sigma^{1/2} z|`, :math:`z\sim N(0, I_d)`, so
:math:`s^* = w^{*\top}\Sigma w^* = 1`; ``"norm_d"`` gives :math:`|w^*|^2 = d`; ``"unit"`` gives
:math:`|w^*| = 1`. Initialisation: :math:`w(0)` uniform on the sphere of radius ``init_scale``.

simulate/ builds its runs from :class:`Problem`; it never imports the equations.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Literal

import numpy as np

from .validate import (
    check_choice,
    check_finite,
    check_greater,
    check_int,
    check_nonnegative,
    check_positive,
    check_spectrum,
    check_vector,
)

TargetNorm = Literal["s_star", "norm_d", "unit"]


def isotropic_spectrum(d: int) -> np.ndarray:
    r""":math:`\lambda_i = 1` for :math:`i = 1..d`."""
    d = check_int("d", d, 2)
    return np.ones(d)


def harmonic(d: int, a: float) -> float:
    r"""Generalised harmonic number :math:`H_{d,a} = \sum_{j=1}^d j^{-a}`."""
    return float(np.sum(np.arange(1, d + 1, dtype=np.float64) ** (-a)))


def powerlaw_spectrum(d: int, a: float) -> np.ndarray:
    r"""Power-law spectrum :math:`\lambda_i = i^{-a}/H_{d,a}` (so :math:`\mathrm{tr}\,\Sigma = 1`).

    ``a`` must be > 0. For ``a <= 1`` the spectrum is valid and runs, but the asymptotics of
    [P1] (arXiv:2511.18661) assume ``a > 1``: a ``UserWarning`` says so.
    """
    d = check_int("d", d, 2)
    a = check_positive("a", a)
    if a <= 1:
        warnings.warn(
            f"power-law exponent a = {a} <= 1: the spectrum is valid, but [P1]'s asymptotic "
            "predictions (phases, exponents) assume a > 1 and do not apply",
            UserWarning,
            stacklevel=2,
        )
    i = np.arange(1, d + 1, dtype=np.float64)
    return i ** (-a) / np.sum(i ** (-a))


def spiked_spectrum(d: int, theta: float) -> np.ndarray:
    r"""Spectrum of :math:`\Sigma = I + \theta e_1 e_1^\top`: :math:`(1+\theta, 1, \dots, 1)`; ``theta > -1``."""
    d = check_int("d", d, 2)
    theta = check_greater("theta", theta, -1.0)
    lam = np.ones(d)
    lam[0] = 1.0 + theta
    return lam


def make_w_star(
    lam: np.ndarray,
    seed: int = 0,
    norm: TargetNorm = "s_star",
    orthogonal_to: np.ndarray | None = None,
) -> np.ndarray:
    r"""Random target :math:`w^* \propto z`, :math:`z \sim N(0, I_d)`, normalised by ``norm``.

    ``"s_star"``: :math:`w^{*\top}\Sigma w^* = 1`; ``"norm_d"``: :math:`|w^*|^2 = d`;
    ``"unit"``: :math:`|w^*| = 1`. With ``orthogonal_to`` the direction is projected out first.
    """
    lam = check_spectrum(lam)
    check_choice("norm", norm, ("s_star", "norm_d", "unit"))
    rng = np.random.default_rng([check_int("seed", seed, 0), 1])
    z = rng.standard_normal(lam.shape[0])
    if orthogonal_to is not None:
        v = check_vector("orthogonal_to", orthogonal_to, lam.shape[0])
        v = v / np.linalg.norm(v)
        z = z - (z @ v) * v
    if norm == "s_star":
        return z / np.sqrt(np.sum(lam * z**2))
    if norm == "norm_d":
        return z * np.sqrt(lam.shape[0]) / np.linalg.norm(z)
    return z / np.linalg.norm(z)


def make_w0(d: int, seed: int = 0, init_scale: float = 1.0) -> np.ndarray:
    """:math:`w(0)` uniform on the sphere of radius ``init_scale`` (so :math:`u(0) \\sim d^{-1/2}`)."""
    d = check_int("d", d, 2)
    init_scale = check_positive("init_scale", init_scale)
    rng = np.random.default_rng([check_int("seed", seed, 0), 2])
    z = rng.standard_normal(d)
    return init_scale * z / np.linalg.norm(z)


@dataclasses.dataclass(frozen=True)
class Problem:
    r"""A finite-d phase-retrieval problem in the eigenbasis of :math:`\Sigma`.

    Attributes:
        lam: eigenvalues :math:`\lambda_i` of :math:`\Sigma`, shape ``(d,)``.
        w_star: target :math:`w^*`, shape ``(d,)``.
        w0: initial weights :math:`w(0)`, shape ``(d,)`` (one seed; see :meth:`w0_batch`).
        sigma: label-noise standard deviation :math:`\sigma` (:math:`y = (x\cdot w^*)^2 + \xi`).
        kind: ``"isotropic"``, ``"powerlaw"``, ``"spiked"`` or ``"custom"``.
        meta: the parameters that built it (``a``, ``theta``, seeds, ...), JSON-serialisable.
    """

    lam: np.ndarray
    w_star: np.ndarray
    w0: np.ndarray
    sigma: float = 0.0
    kind: str = "custom"
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        lam = check_spectrum(self.lam)
        d = lam.shape[0]
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "w_star", check_vector("w_star", self.w_star, d))
        object.__setattr__(self, "w0", check_vector("w0", self.w0, d))
        object.__setattr__(self, "sigma", check_nonnegative("sigma", self.sigma))

    @property
    def d(self) -> int:
        """Dimension :math:`d`."""
        return int(self.lam.shape[0])

    @property
    def s_star(self) -> float:
        r""":math:`s^* = w^{*\top}\Sigma w^*`."""
        return float(np.sum(self.lam * self.w_star**2))

    def w0_batch(self, seeds: int | list[int]) -> np.ndarray:
        """Initial weights for several seeds, shape ``(n_seeds, d)``; seed ``meta['init_seed'] + j``.

        ``seeds`` is a count or an explicit list of seeds. The row of seed ``meta['init_seed']``
        (default 0) is this problem's own :attr:`w0` (so a custom ``w0`` is honoured); every other
        row is uniform on the sphere of radius ``meta['init_scale']`` (default 1).
        """
        init_seed = int(self.meta.get("init_seed", 0))
        if isinstance(seeds, (int, np.integer)):
            seeds = [init_seed + j for j in range(check_int("seeds", seeds, 1))]
        scale = float(self.meta.get("init_scale", 1.0))
        return np.stack([self.w0 if s == init_seed else make_w0(self.d, s, scale) for s in seeds])

    def statistics(self, w: np.ndarray, k: int = 1) -> dict[str, float | np.ndarray]:
        r"""Statistics :math:`u^{(k)} = w^\top\Sigma^k w^*`, :math:`s^{(k)} = w^\top\Sigma^k w` of ``w``
        (docs/theory.md §1): floats for one ``w`` of shape ``(d,)``, arrays of shape ``batch`` for ``(*batch, d)``."""
        w, lk = np.asarray(w, float), self.lam**k
        u, s = np.sum(lk * w * self.w_star, axis=-1), np.sum(lk * w * w, axis=-1)
        return {"u": float(u), "s": float(s)} if w.ndim == 1 else {"u": u, "s": s}


def isotropic_problem(
    d: int, seed: int = 0, init_seed: int | None = None, sigma: float = 0.0, norm: TargetNorm = "s_star",
    init_scale: float = 1.0,
) -> Problem:
    r""":math:`\Sigma = I_d` problem; ``seed`` draws :math:`w^*`, ``init_seed`` (default ``seed``) draws :math:`w(0)`."""
    lam = isotropic_spectrum(d)
    init_seed = seed if init_seed is None else init_seed
    return Problem(
        lam, make_w_star(lam, seed, norm), make_w0(d, init_seed, init_scale), sigma, "isotropic",
        {"d": int(d), "seed": int(seed), "init_seed": int(init_seed), "norm": norm, "init_scale": float(init_scale)},
    )


def powerlaw_problem(
    d: int, a: float, seed: int = 0, init_seed: int | None = None, sigma: float = 0.0,
    norm: TargetNorm = "s_star", init_scale: float = 1.0,
) -> Problem:
    r"""Power-law problem, :math:`\lambda_i = i^{-a}/H_{d,a}` (see :func:`powerlaw_spectrum`)."""
    lam = powerlaw_spectrum(d, a)
    init_seed = seed if init_seed is None else init_seed
    return Problem(
        lam, make_w_star(lam, seed, norm), make_w0(d, init_seed, init_scale), sigma, "powerlaw",
        {"d": int(d), "a": float(a), "seed": int(seed), "init_seed": int(init_seed), "norm": norm,
         "init_scale": float(init_scale)},
    )


def spiked_problem(
    d: int, theta: float, seed: int = 0, init_seed: int | None = None, sigma: float = 0.0,
    init_scale: float = 1.0,
) -> Problem:
    r"""Spiked problem :math:`\Sigma = I + \theta e_1e_1^\top`, :math:`|w^*| = 1`, :math:`w^* \perp e_1`."""
    lam = spiked_spectrum(d, theta)
    v = np.zeros(lam.shape[0])
    v[0] = 1.0
    init_seed = seed if init_seed is None else init_seed
    return Problem(
        lam, make_w_star(lam, seed, "unit", orthogonal_to=v), make_w0(d, init_seed, init_scale), sigma, "spiked",
        {"d": int(d), "theta": float(theta), "seed": int(seed), "init_seed": int(init_seed),
         "init_scale": float(init_scale)},
    )


def custom_problem(
    lam: np.ndarray, w_star: np.ndarray, w0: np.ndarray, sigma: float = 0.0, **meta: object
) -> Problem:
    """A problem from explicit arrays (validated: finite, positive spectrum, matching lengths)."""
    return Problem(np.asarray(lam, float), np.asarray(w_star, float), np.asarray(w0, float), sigma, "custom", dict(meta))
