r"""Polar factors :math:`\mathrm{polar}(G) = UV^\top` of :math:`G = USV^\top`, for SpecGD (docs/theory.md §3C).

* :func:`polar_svd`: by the thin SVD, rank-revealing (singular values below ``rcond`` map to 0);
* :func:`newton_schulz`: by the cubic Newton–Schulz iteration run to a stated accuracy, with its residual;
* :func:`polar`: one matrix, eagerly, raising :class:`PolarError` where Newton–Schulz does not converge.

Used by :func:`phasedyn.simulate.run_matrix` (``specgd``); public through :mod:`phasedyn.simulate.matrix`.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import numpy as np
from jax import lax

from phasedyn.typing import IntScalar, Matrix, Scalar
from phasedyn.theory.validate import check_choice, check_int, check_positive

POLARS = ("svd", "newton-schulz")
"""Methods of :func:`polar` (and ``run_matrix(polar=...)``)."""

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


def polar(G, method: Literal["svd", "newton-schulz"] = "svd", *, iters: int = NS_ITERS, tol: float = NS_TOL,
          rcond: float | None = None) -> np.ndarray:
    """Polar factor of one matrix (eager): ``"svd"`` (:func:`polar_svd`) or ``"newton-schulz"``.

    Raises :class:`PolarError` when Newton–Schulz does not reach ``tol`` within ``iters`` iterations.
    """
    check_choice("method", method, POLARS)
    G = jnp.asarray(G)
    if G.ndim != 2:
        raise ValueError(f"G must be a matrix, got shape {G.shape}")
    if method == "svd":
        return np.asarray(polar_svd(G, rcond))
    X, r, k = newton_schulz(G, check_int("iters", iters, 1), check_positive("tol", tol))
    if not float(r) <= tol:
        raise PolarError(
            f"Newton–Schulz did not converge: |XX^T - I|_F = {float(r):.3g} > tol = {tol:g} after {int(k)} "
            "iterations; "
            "G is singular or too ill-conditioned (sigma_min/|G|_F below ~1.5^-iters); use method='svd'"
        )
    return np.asarray(X)
