r"""Losses and summary statistics of one weight vector, in the eigenbasis of :math:`\Sigma`.

Model :math:`\hat y = (x\cdot w)^2`, target :math:`y = (x\cdot w^*)^2 + \xi`,
:math:`x \sim N(0, \Sigma)`, :math:`\Sigma = \mathrm{diag}(\lambda)`, :math:`\xi \sim N(0, \sigma^2)`
(docs/theory.md §1). Every function here is O(d) and works for any floating dtype of its inputs.

This module is simulate/'s own statement of the loss: it does not import theory/'s equations, so
that a simulation built on it is an independent route to the numbers theory/ derives.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

Scalar = Float[Array, ""]
Vector = Float[Array, " d"]


def population_loss(
    w: Vector, w_star: Vector, lam: Vector, sigma: float | Scalar = 0.0
) -> Scalar:
    r"""Population loss :math:`L(w) = \mathbb E[((x\cdot w)^2 - y)^2]` in closed form.

    With :math:`g = x\cdot w`, :math:`h = x\cdot w^*` jointly Gaussian
    (:math:`\mathrm{Var}\,g = s`, :math:`\mathrm{Var}\,h = s^*`, :math:`\mathrm{Cov}(g, h) = u`),
    Isserlis' (Wick's) theorem gives :math:`\mathbb E g^4 = 3s^2`, :math:`\mathbb E h^4 = 3{s^*}^2`,
    :math:`\mathbb E g^2h^2 = s s^* + 2u^2`; the independent zero-mean noise adds only
    :math:`\mathbb E\xi^2 = \sigma^2`:

    .. math::
        L(w) = 3s^2 + 3{s^*}^2 - 4u^2 - 2 s s^* + \sigma^2,

    :math:`s = w^\top\Sigma w`, :math:`u = w^\top\Sigma w^*`, :math:`s^* = w^{*\top}\Sigma w^*`.

    Reference: L. Isserlis, Biometrika 12 (1918) 134–139.

    Args:
        w: weights, shape ``(d,)``.
        w_star: target :math:`w^*`, shape ``(d,)``.
        lam: eigenvalues :math:`\lambda` of :math:`\Sigma`, shape ``(d,)``.
        sigma: label-noise standard deviation :math:`\sigma`.
    """
    s = jnp.sum(lam * w * w)
    u = jnp.sum(lam * w * w_star)
    s_star = jnp.sum(lam * w_star * w_star)
    return 3 * s**2 + 3 * s_star**2 - 4 * u**2 - 2 * s * s_star + sigma**2


def sample_loss(w: Vector, x: Vector, y: float | Scalar) -> Scalar:
    r"""Per-sample loss :math:`\ell(w; x, y) = ((x\cdot w)^2 - y)^2` (no prefactor)."""
    return (jnp.dot(x, w) ** 2 - y) ** 2


def statistics(
    w: Vector, w_star: Vector, lam: Vector, sigma: float | Scalar = 0.0
) -> dict[str, Scalar]:
    r"""Summary statistics of one weight vector (docs/theory.md §1).

    Returns a dict of JAX scalars:

    * ``u0, u1, u2``: :math:`u^{(k)} = w^\top\Sigma^k w^*` (``u1`` is :math:`u`, ``u0`` is :math:`w\cdot w^*`);
    * ``s0, s1, s2``: :math:`s^{(k)} = w^\top\Sigma^k w` (``s1`` is :math:`s`, ``s0`` is :math:`|w|^2`);
    * ``loss``: :func:`population_loss` (label noise :math:`\sigma` included);
    * ``mse``: :math:`\frac1d\min(|w - w^*|^2, |w + w^*|^2) = (s^{(0)} + s^{*(0)} - 2|u^{(0)}|)/d`,
      :math:`s^{*(0)} = |w^*|^2`.
    """
    d = w.shape[-1]
    lam2 = lam * lam
    ww = w * w
    wws = w * w_star
    u0, u1, u2 = jnp.sum(wws), jnp.sum(lam * wws), jnp.sum(lam2 * wws)
    s0, s1, s2 = jnp.sum(ww), jnp.sum(lam * ww), jnp.sum(lam2 * ww)
    s_star0 = jnp.sum(w_star * w_star)
    return {
        "u0": u0,
        "u1": u1,
        "u2": u2,
        "s0": s0,
        "s1": s1,
        "s2": s2,
        "loss": population_loss(w, w_star, lam, sigma),
        "mse": (s0 + s_star0 - 2 * jnp.abs(u0)) / d,
    }


STATISTICS: tuple[str, ...] = ("u0", "u1", "u2", "s0", "s1", "s2", "loss", "mse")
"""Names returned by :func:`statistics`, in order."""
