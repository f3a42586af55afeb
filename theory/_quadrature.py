r"""Gaussian quadrature over the local fields, compiled to JAX: the numeric rule behind non-polynomial models.

For :math:`(g, h) \sim N(0, C)`, :math:`C = \begin{pmatrix} s & u \\ u & s^*\end{pmatrix}`, write
:math:`g = \sqrt s\,\zeta_1`, :math:`h = (u/\sqrt s)\,\zeta_1 + c\,\zeta_2`, :math:`c = \sqrt{s^* - u^2/s}`
(the Cholesky factor of :math:`C`), :math:`\zeta \sim N(0, I_2)`. Two rules, both differentiable and
vmappable in :math:`(s, u, s^*)`:

* **smooth integrands**: the :math:`n \times n` Gauss–Hermite product rule in :math:`\zeta` (spectral:
  a polynomial of degree :math:`< 2n` is exact);
* **integrands with kinks or jumps on lines through the origin** (ReLU :math:`\max(0, g)`, :math:`|h|`,
  their derivatives :math:`\mathrm{Heaviside}`, :math:`\mathrm{sign}`): polar coordinates
  :math:`\zeta = r(\cos\theta, \sin\theta)`,

  .. math:: \mathbb E f = \frac1{2\pi}\int_0^{2\pi}\!\!d\theta\int_0^\infty f(r\cos\theta, r\sin\theta)\,r e^{-r^2/2}\,dr,

  the circle split at the angles of the kink lines :math:`\alpha g + \beta h = 0` (computed from
  :math:`C` at run time), Gauss–Legendre on each arc and the Gauss rule of the weight :math:`r e^{-r^2/2}`
  on :math:`[0, \infty)` in :math:`r`. On each sector a piecewise polynomial is a polynomial, so the rule
  is exact for it (up to its degree); smooth pieces converge spectrally. Plain Gauss–Hermite across a
  kink converges only like :math:`1/n` (measured in tests/test_expect.py), which is why the split exists.

The radial rule comes from the recurrence of the weight :math:`r e^{-r^2/2}` computed by the (orthonormal)
Stieltjes procedure on a 600-point Gauss–Legendre discretisation of :math:`[0, 16]` (the tail beyond is
:math:`e^{-128}`), then Golub–Welsch; its moments :math:`\int_0^\infty r^{k+1}e^{-r^2/2}dr = 2^{k/2}\Gamma(k/2+1)`
are reproduced to 1e-13 up to degree 30 (measured; higher moments lose digits to cancellation in float64,
which bounded integrands do not feel), checked in the tests.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from scipy.linalg import eigh_tridiagonal
from scipy.special import roots_hermite, roots_legendre

#: default node counts: Gauss–Hermite per axis (smooth) and (radial, per arc) for the split polar rule
GH_NODES = 192
POLAR_NODES = (48, 48)


@lru_cache(maxsize=16)
def hermite_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of :math:`N(0, 1)` (``n`` points; SciPy's asymptotic nodes, stable to any ``n``)."""
    x, w = roots_hermite(n)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


@lru_cache(maxsize=16)
def radial_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Gauss rule for :math:`\int_0^\infty F(r)\,r e^{-r^2/2}\,dr` (``n`` nodes; exact for degree :math:`< 2n` up to the float64 limits of the module docstring)."""
    x, w = roots_legendre(600)
    r = 8.0 * (x + 1.0)
    wt = 8.0 * w * r * np.exp(-r * r / 2)
    # Stieltjes on the discrete measure, orthonormal: sqrt(b_{k+1}) q_{k+1} = (r - a_k) q_k - sqrt(b_k) q_{k-1}
    a, sb = np.zeros(n), np.zeros(n)
    q_prev, q = np.zeros_like(r), np.full_like(r, 1.0 / np.sqrt(np.sum(wt)))
    for k in range(n):
        a[k] = np.sum(wt * r * q * q)
        nxt = (r - a[k]) * q - (sb[k] * q_prev if k else 0.0)
        nxt -= np.sum(wt * nxt * q) * q  # one re-orthogonalisation step against q_k (Lanczos' safeguard)
        if k + 1 < n:
            sb[k + 1] = np.sqrt(np.sum(wt * nxt * nxt))
            q_prev, q = q, nxt / sb[k + 1]
    nodes, vecs = eigh_tridiagonal(a, sb[1:])
    return nodes, np.sum(wt) * vecs[0] ** 2


@lru_cache(maxsize=16)
def _legendre01(m: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = roots_legendre(m)
    return (x + 1.0) / 2.0, w / 2.0


def whiten(s, u, s_star):
    """:math:`(\\sqrt s, u/\\sqrt s, c)` of the Cholesky factor, :math:`c = \\sqrt{\\max(s^* - u^2/s, 0)}` (kept
    away from 0 by a relative 1e-300 so that derivatives stay finite)."""
    rs = jnp.sqrt(s)
    c2 = jnp.maximum(s_star - u * u / s, 1e-300 * s_star)
    return rs, u / rs, jnp.sqrt(c2)


def gauss_quadrature(fn: Callable, s, u, s_star, kinks: Sequence[tuple[float, float]] = (), *,
           gh: int = GH_NODES, polar: tuple[int, int] = POLAR_NODES):
    r""":math:`\mathbb E[fn(g, h, \zeta_1, \zeta_2)]` for :math:`(g, h) \sim N(0, C)` (module docstring).

    ``fn`` is JAX-traceable and elementwise; ``kinks`` lists the lines :math:`\alpha g + \beta h = 0` where it
    is not smooth (empty: the Gauss–Hermite product rule; else the split polar rule). Scalars ``s, u,
    s_star`` (vmap for batches).
    """
    rs, k, c = whiten(s, u, s_star)
    if not kinks:
        z, w = hermite_rule(gh)
        z1, z2 = (jnp.asarray(a.ravel()) for a in np.meshgrid(z, z, indexing="ij"))
        wt = jnp.asarray(np.outer(w, w).ravel())
    else:
        rr, wr = radial_rule(polar[0])
        x, wx = _legendre01(polar[1])
        # kink angles in zeta: alpha g + beta h = (alpha rs + beta k) z1 + beta c z2 = 0
        angles = []
        for alpha, beta in kinks:
            n1, n2 = alpha * rs + beta * k, beta * c
            th = jnp.arctan2(-n1, n2) % jnp.pi
            angles += [th, th + jnp.pi]
        edges = jnp.sort(jnp.stack(angles))
        edges = jnp.concatenate([edges, edges[:1] + 2 * jnp.pi])
        lo, width = edges[:-1], jnp.diff(edges)
        theta = (lo[:, None] + width[:, None] * jnp.asarray(x)[None, :]).ravel()
        wth = (width[:, None] * jnp.asarray(wx)[None, :]).ravel() / (2 * jnp.pi)
        r = jnp.asarray(rr)
        z1 = (r[:, None] * jnp.cos(theta)[None, :]).ravel()
        z2 = (r[:, None] * jnp.sin(theta)[None, :]).ravel()
        wt = (jnp.asarray(wr)[:, None] * wth[None, :]).ravel()
    g = rs * z1
    h = k * z1 + c * z2
    return jnp.sum(wt * fn(g, h, z1, z2))
