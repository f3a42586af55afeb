r"""Polar factors :math:`\mathrm{polar}(G) = UV^\top` of :math:`G = USV^\top`, for SpecGD (docs/theory.md §3C).

* :func:`polar_svd`: by the thin SVD, rank-revealing (singular values below ``rcond`` map to 0);
* :func:`newton_schulz`: by the cubic Newton–Schulz iteration run to a stated accuracy, with its residual;
* :func:`muon_quintic`: Muon's approximate polar factor, 5 steps of its tuned Newton–Schulz quintic, exactly as
  Muon runs it (in the working precision): :math:`U\,p(S/|G|_F)\,V^\top`, not :math:`UV^\top`;
* :func:`polar`: one matrix, eagerly, raising :class:`PolarError` where Newton–Schulz does not converge.

Used by :func:`phasedyn.simulate.run_matrix` (``specgd``); public through :mod:`phasedyn.simulate.matrix`. Nothing
here comes from theory/ (the reduced map of Muon's factor, :func:`phasedyn.theory.spiked.muon_block_polar`, is
derived there independently).
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import numpy as np
from jax import lax

from phasedyn.typing import IntScalar, Matrix, Scalar
from phasedyn.theory.validate import check_choice, check_int, check_nonnegative, check_positive

POLARS = ("svd", "newton-schulz", "muon")
"""Methods of :func:`polar` (and ``run_matrix(polar=...)``)."""

MUON_COEFFS = (3.4445, -4.7750, 2.0315)
r"""Muon's quintic coefficients :math:`(a, b, c)` of :math:`X \leftarrow aX + b(XX^\top)X + c(XX^\top)^2X`."""
MUON_STEPS = 5
"""Muon's number of quintic iterations."""
MUON_EPS = 1e-7
r"""Muon's guard added to :math:`|G|_F` before dividing."""

NS_ITERS = 100
"""Newton–Schulz iteration budget (the loop stops earlier once the residual is below ``ns_tol``)."""
NS_TOL = 1e-10
"""Newton–Schulz stopping and acceptance tolerance on :math:`|XX^\\top - I|_F` (see :func:`newton_schulz`)."""


class PolarError(RuntimeError):
    """Newton–Schulz did not produce an orthogonal polar factor (singular or too ill-conditioned gradient)."""


def polar_svd(G: Matrix, rcond: float | None = None) -> Matrix:
    r"""Polar factor :math:`U\,\mathrm{sign}(S)\,V^\top` of the thin SVD :math:`G = USV^\top`.

    For :math:`G` of full rank :math:`\min(m, d)` this is :math:`UV^\top`. Singular values
    :math:`\le` ``rcond`` :math:`\cdot\sigma_{max}` count as zero and map to 0 (their singular vectors are
    not determined), the convention under which :math:`\mathrm{polar}(\sum_X g_XP_X) = \sum_X\mathrm{sign}(g_X)P_X`.
    ``rcond`` defaults to :math:`\max(m, d)\,\epsilon` (numpy's rank tolerance).
    """
    U, s, Vt = jnp.linalg.svd(G, full_matrices=False)
    if rcond is None:
        rcond = max(G.shape) * float(jnp.finfo(G.dtype).eps)
    keep = (s > rcond * s[0]).astype(G.dtype)
    return (U * keep[None, :]) @ Vt


def _orth_residual(X: Matrix) -> Scalar:
    m, d = X.shape
    gram = X @ X.T if m <= d else X.T @ X
    return jnp.sqrt(jnp.sum((gram - jnp.eye(gram.shape[0], dtype=X.dtype)) ** 2))


def newton_schulz(G: Matrix, iters: int = NS_ITERS, tol: float = NS_TOL) -> tuple[Matrix, Scalar, IntScalar]:
    r"""Polar factor by the cubic Newton–Schulz iteration :math:`X \leftarrow \tfrac32X - \tfrac12XX^\top X`.

    Start :math:`X_0 = G/|G|_F` (singular values in :math:`(0, 1]`); every singular value converges to 1
    (quadratically once near 1, by a factor 1.5 per step while small) and the singular vectors are those of
    :math:`G`. Muon uses the same idea (an odd matrix polynomial instead of an SVD) with a tuned quintic that
    stops short of convergence; here the iteration runs to ``tol``, so it is a polar factor with a stated
    accuracy: stopping at :math:`r = |XX^\top - I|_F \le` ``tol`` (:math:`X^\top X` when :math:`m > d`) gives

    .. math:: |X - UV^\top|_F \le r,

    since each singular value :math:`x \in (0, 1]` of :math:`X` has :math:`|x - 1| \le |x^2 - 1|` (plus
    round-off growing with :math:`\kappa(G)`). A singular :math:`G` (or one with
    :math:`\sigma_{min}/|G|_F \lesssim 1.5^{-\text{iters}}`) never reaches ``tol``: the returned residual
    says so (:func:`polar` raises :class:`PolarError`; :func:`~phasedyn.simulate.run_matrix` raises or falls back
    to the SVD).

    Returns ``(X, residual, iterations)``.
    """
    norm = jnp.sqrt(jnp.sum(G * G))
    X0 = G / jnp.where(norm > 0, norm, 1.0)
    wide = G.shape[0] <= G.shape[1]

    def body(carry):
        X, _, k = carry
        X = 1.5 * X - 0.5 * ((X @ X.T) @ X if wide else X @ (X.T @ X))
        return X, _orth_residual(X), k + 1

    def cond(carry):
        _, r, k = carry
        return (r > tol) & (k < iters)

    k0 = jnp.zeros((), jnp.int32)
    X, r, k = lax.while_loop(cond, body, (X0, _orth_residual(X0), k0))
    return X, r, k


def muon_quintic(G: Matrix, steps: int = MUON_STEPS, coeffs: tuple[float, float, float] = MUON_COEFFS,
                 eps: float = MUON_EPS) -> Matrix:
    r"""Muon's orthogonalisation (Keller Jordan's ``zeropower_via_newtonschulz5``), step for step, in ``G``'s dtype.

    A tall ``G`` is transposed first (so that :math:`A = XX^\top` is the smaller Gram matrix) and back at the end;
    :math:`X_0 = G/(|G|_F + \epsilon)`, then ``steps`` times :math:`A = XX^\top`, :math:`B = bA + cA^2`,
    :math:`X \leftarrow aX + BX`. For :math:`G = USV^\top` this is :math:`U\,p(S/(|G|_F + \epsilon))\,V^\top`, with
    :math:`p` the ``steps``-fold composition of :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`: with Muon's
    coefficients :math:`p \in [0.68, 1.14]` on :math:`[0.01, 1]`, about :math:`3.4445^5\sigma` for
    :math:`\sigma \ll 10^{-3}` (tiny singular values are *not* sent to 1). Muon itself runs this in bfloat16 and
    scales the update by :math:`\max(1, m/d)^{1/2}` outside this function (1 for :math:`m \le d`); neither is
    applied here.
    """
    steps = check_int("steps", steps, 1)
    if len(coeffs) != 3:
        raise ValueError(f"coeffs must be three numbers (a, b, c), got {coeffs!r}")
    qa, qb, qc = (float(x) for x in coeffs)
    eps = check_nonnegative("eps", eps)
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / (jnp.sqrt(jnp.sum(X * X)) + eps)
    for _ in range(steps):
        A = X @ X.T
        B = qb * A + qc * A @ A
        X = qa * X + B @ X
    return X.T if tall else X


def orthogonality_residual(X: Matrix) -> Scalar:
    r""":math:`|XX^\top - I|_F` (:math:`X^\top X` when :math:`m > d`): 0 for an exact polar factor of full rank."""
    return _orth_residual(X)


def polar(G, method: Literal["svd", "newton-schulz", "muon"] = "svd", *, iters: int = NS_ITERS, tol: float = NS_TOL,
          rcond: float | None = None) -> np.ndarray:
    """Polar factor of one matrix (eager): ``"svd"`` (:func:`polar_svd`), ``"newton-schulz"`` or ``"muon"``
    (:func:`muon_quintic`, Muon's approximate factor; ``iters``, ``tol``, ``rcond`` do not apply).

    Raises :class:`PolarError` when Newton–Schulz does not reach ``tol`` within ``iters`` iterations.
    """
    check_choice("method", method, POLARS)
    G = jnp.asarray(G)
    if G.ndim != 2:
        raise ValueError(f"G must be a matrix, got shape {G.shape}")
    if method == "svd":
        return np.asarray(polar_svd(G, rcond))
    if method == "muon":
        return np.asarray(muon_quintic(G))
    X, r, k = newton_schulz(G, check_int("iters", iters, 1), check_positive("tol", tol))
    if not float(r) <= tol:
        raise PolarError(
            f"Newton–Schulz did not converge: |XX^T - I|_F = {float(r):.3g} > tol = {tol:g} after {int(k)} "
            "iterations; "
            "G is singular or too ill-conditioned (sigma_min/|G|_F below ~1.5^-iters); use method='svd'"
        )
    return np.asarray(X)
