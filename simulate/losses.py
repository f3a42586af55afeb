r"""The model's losses for one weight vector, in the eigenbasis of :math:`\Sigma`, evaluated numerically.

The per-sample loss :math:`\ell(g, h, \xi)` comes from the :class:`~phasedyn.theory.model.Model`
(:meth:`~phasedyn.theory.model.Model.jax_loss`; default phase retrieval :math:`(g^2 - h^2 - \xi)^2`),
with :math:`g = x\cdot w`, :math:`h = x\cdot w^*`, :math:`x \sim N(0, \Sigma)`, :math:`\Sigma =
\mathrm{diag}(\lambda)`, :math:`\xi \sim N(0, \sigma^2)` (docs/theory.md §1).

The population loss :math:`L(w) = \mathbb E\,\ell` is computed here by numerical integration, not by
theory/'s symbolic moments, so a simulation built on it is an independent route to the numbers theory/
derives. Write :math:`g = (u/s^*)\,h + r` with :math:`r \sim N(0, v)` independent of :math:`h`,
:math:`v = s - u^2/s^*`. For a polynomial loss of degree :math:`p` the :math:`r`-expectation is the
terminating heat-kernel series

.. math:: \mathbb E_r\,P(r) = \sum_{k \le p/2} \frac{v^k}{2^k k!}\,P^{(2k)}(0)

(derivatives by ``jax.grad``), smooth in :math:`w` even where :math:`w \parallel w^*` (:math:`v = 0`,
no square root), and the :math:`h`- and :math:`\xi`-expectations are Gauss–Hermite rules with
:math:`\lfloor p/2\rfloor + 1` nodes, exact for degree :math:`p`. So :math:`L` and its ``jax.grad`` are
exact to round-off for every polynomial loss.

A non-polynomial loss (a single-index link such as ReLU or tanh, docs/theory.md §5) has no terminating
series: :math:`\mathbb E_{g,h}` is then the two-dimensional Gauss rule of :mod:`phasedyn.theory._quadrature`
(split at the loss's kink lines through the origin, exact on each sector for piecewise polynomials,
spectral for smooth links) and :math:`\mathbb E_\xi` a Gauss–Hermite rule exact for the loss's degree in
:math:`\xi`. Its ``jax.grad`` is the population gradient; nothing here uses theory/'s derived coefficients.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from phasedyn.typing import Scalar, Vector
from phasedyn.theory.model import Model


def _model(model: Model | None) -> Model:
    return Model() if model is None else model


@lru_cache(maxsize=64)
def _expected_loss(model: Model):
    """``Lbar(s, u, s_star, sigma)``: :math:`\\mathbb E\\,\\ell` for local-field covariance ``[[s, u], [u, s_star]]``."""
    ell = model.jax_loss()
    if not model.is_polynomial:
        return _expected_loss_quadrature(model)
    p = model.degree
    x, wt = np.polynomial.hermite_e.hermegauss(p // 2 + 1)
    wt = wt / math.sqrt(2 * math.pi)
    zh, zx = (a.ravel() for a in np.meshgrid(x, x, indexing="ij"))
    wgt = np.outer(wt, wt).ravel()

    def taylor(k):
        # the 2k-th derivative in r of r -> ell(c h + r, h, xi), at r = 0
        f = lambda r, c, h, xi: jnp.asarray(ell(c * h + r, h, xi), dtype=jnp.result_type(r))  # noqa: E731
        for _ in range(2 * k):
            f = jax.grad(f, argnums=0)
        return f

    terms = [(taylor(k), 1.0 / (2**k * math.factorial(k))) for k in range(p // 2 + 1)]

    def lbar(s, u, s_star, sigma):
        dt = jnp.result_type(s)
        v = s - u * u / s_star
        c = u / s_star
        h = jnp.sqrt(s_star) * jnp.asarray(zh, dt)
        xi = sigma * jnp.asarray(zx, dt)
        zero = jnp.zeros_like(h)
        weights = jnp.asarray(wgt, dt)
        total = jnp.zeros((), dt)
        for k, (f, coef) in enumerate(terms):
            vals = jax.vmap(f, in_axes=(0, None, 0, 0))(zero, c, h, xi)
            total = total + coef * v**k * jnp.sum(weights * vals)
        return total

    return lbar


def _expected_loss_quadrature(model: Model):
    from phasedyn.theory import gauss_quadrature as expect
    from phasedyn.theory import kink_lines

    ell = model.jax_loss()
    kinks = kink_lines(model.expr)
    x, wt = np.polynomial.hermite_e.hermegauss(model.xi_degree // 2 + 1)
    wt = wt / math.sqrt(2 * math.pi)

    def lbar(s, u, s_star, sigma):
        def over_xi(g, h, z1, z2):
            return sum(float(w) * ell(g, h, sigma * float(z)) * jnp.ones_like(g) for z, w in zip(x, wt))

        if kinks is None:
            return expect(over_xi, s, u, s_star, gh=512)
        return expect(over_xi, s, u, s_star, kinks)

    return lbar


def population_loss(
    w: Vector, w_star: Vector, lam: Vector, sigma: float | Scalar = 0.0, model: Model | None = None
) -> Scalar:
    r"""Population loss :math:`L(w) = \mathbb E[\ell(x\cdot w, x\cdot w^*, \xi)]`, exact for polynomial losses.

    Depends on :math:`w` through :math:`s = w^\top\Sigma w`, :math:`u = w^\top\Sigma w^*` only (the
    local fields are jointly Gaussian); evaluated by the quadrature of the module docstring. For phase
    retrieval it equals :math:`3s^2 + 3{s^*}^2 - 4u^2 - 2ss^* + \sigma^2` (Isserlis; L. Isserlis,
    Biometrika 12 (1918) 134–139), which the tests check.

    Args:
        w: weights, shape ``(d,)``.
        w_star: target :math:`w^*`, shape ``(d,)``.
        lam: eigenvalues :math:`\lambda` of :math:`\Sigma`, shape ``(d,)``.
        sigma: label-noise standard deviation :math:`\sigma`.
        model: the per-sample loss (default: phase retrieval).
    """
    s = jnp.sum(lam * w * w)
    u = jnp.sum(lam * w * w_star)
    s_star = jnp.sum(lam * w_star * w_star)
    return _expected_loss(_model(model))(s, u, s_star, jnp.asarray(sigma, dtype=s.dtype))


def sample_loss(w: Vector, x: Vector, w_star: Vector, xi: float | Scalar = 0.0, model: Model | None = None) -> Scalar:
    r"""Per-sample loss :math:`\ell(x\cdot w, x\cdot w^*, \xi)` of the model (phase retrieval: :math:`((x\cdot w)^2 - (x\cdot w^*)^2 - \xi)^2`)."""
    ell = _model(model).jax_loss()
    g = jnp.dot(x, w)
    return jnp.asarray(ell(g, jnp.dot(x, w_star), jnp.asarray(xi, dtype=g.dtype)), dtype=g.dtype)


def statistics(
    w: Vector, w_star: Vector, lam: Vector, sigma: float | Scalar = 0.0, model: Model | None = None
) -> dict[str, Scalar]:
    r"""Summary statistics of one weight vector, in the theory's names (docs/theory.md §1, §3(B)).

    Returns a dict of JAX scalars, keys :data:`STATISTICS`:

    * ``u``, ``s``: :math:`u = u^{(1)} = w^\top\Sigma w^*`, :math:`s = s^{(1)} = w^\top\Sigma w` (the isotropic
      and block systems' ``u``, ``s``);
    * ``u_0``, ``s_0``, ``u_2``, ``s_2``: the other moments :math:`u^{(k)} = w^\top\Sigma^k w^*`,
      :math:`s^{(k)} = w^\top\Sigma^k w` of order :math:`k = 0, 2` (the hierarchy's states ``u_k``, ``s_k``;
      ``u_0`` is :math:`w\cdot w^*`, ``s_0`` is :math:`|w|^2`);
    * ``loss``: :func:`population_loss` (label noise :math:`\sigma` included);
    * ``mse``: :math:`\frac1d\min(|w - w^*|^2, |w + w^*|^2) = (s^{(0)} + s^{*(0)} - 2|u^{(0)}|)/d`,
      :math:`s^{*(0)} = |w^*|^2`.
    """
    d = w.shape[-1]
    lam2 = lam * lam
    ww = w * w
    wws = w * w_star
    u_0, u, u_2 = jnp.sum(wws), jnp.sum(lam * wws), jnp.sum(lam2 * wws)
    s_0, s, s_2 = jnp.sum(ww), jnp.sum(lam * ww), jnp.sum(lam2 * ww)
    s_star_0 = jnp.sum(w_star * w_star)
    return {
        "u": u,
        "s": s,
        "u_0": u_0,
        "s_0": s_0,
        "u_2": u_2,
        "s_2": s_2,
        "loss": population_loss(w, w_star, lam, sigma, model),
        "mse": (s_0 + s_star_0 - 2 * jnp.abs(u_0)) / d,
    }


STATISTICS: tuple[str, ...] = ("u", "s", "u_0", "s_0", "u_2", "s_2", "loss", "mse")
"""Names returned by :func:`statistics`, in order: the theory's own (the block system's observables; the
hierarchy's ``u_k``, ``s_k`` for :math:`k \ne 1`), so no consumer renames them."""
