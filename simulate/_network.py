r"""The two-layer quadratic network :math:`f_W(x) = |Wx|^2/m` as a model: losses, update rules, statistics, W(0).

docs/theory.md §3C. The training loop is the one driver's (:mod:`phasedyn.simulate._driver`, through
:func:`phasedyn.simulate.run_matrix`); this module states what one step and one record of it are.

Data :math:`x \sim N(0, \Sigma)` in :math:`\Sigma`'s eigenbasis (:math:`\Sigma = \mathrm{diag}(\lambda)`, any
spectrum), target :math:`y = (x\cdot w^*)^2 + \xi`, :math:`W \in \mathbb R^{m\times d}`. Optimisers
(time :math:`t = \eta k`):

* ``"gd"``: population GD, :math:`W \leftarrow W - \eta\nabla_W L`;
* ``"sgd"``: online mini-batch SGD, a fresh batch of ``batch`` samples per step,
  :math:`W \leftarrow W - \eta\nabla_W \frac1B\sum_i (f_W(x_i) - y_i)^2`;
* ``"specgd"``: spectral GD (Muon-like), :math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)` with the polar
  factor by SVD (:func:`polar_svd`), by Newton–Schulz run to convergence (:func:`newton_schulz`), or Muon's
  approximate factor (:func:`muon_quintic`: 5 quintic steps, :math:`U\,p(S/|G|_F)\,V^\top`).

The population loss is this module's own statement (Isserlis for Gaussian quadratic forms,
:func:`population_loss`); gradients are ``jax.grad``; nothing is imported from theory/'s equations.

Recorded statistics (:func:`statistics`), for a unit target direction :math:`\hat w = w^*/|w^*|`, spike
directions :math:`V` (``k`` orthonormal rows, orthogonalised against :math:`\hat w`) and the bulk projector
:math:`P_\perp = I - \hat w\hat w^\top - V^\top V`:

* ``a`` :math:`= |W\hat w| = (\hat w^\top W^\top W\hat w)^{1/2}`;
* ``b`` :math:`= |WV^\top|_F/\sqrt k = (\mathrm{tr}(V^\top V\,W^\top W)/k)^{1/2}` (:math:`= |Wv|` for one spike);
* ``c`` :math:`= |WP_\perp|_F/\sqrt{d - 1 - k} = (\mathrm{tr}(P_\perp W^\top W)/(d - 1 - k))^{1/2}` (rms over the
  bulk directions);
* ``alignment``: :math:`|\hat w\cdot u_1|`, :math:`u_1` the top right singular vector of :math:`W` (the top
  eigenvector of :math:`W^\top W`; arbitrary at exact ties such as :math:`W = c_0 I`);
* ``loss``: :func:`population_loss`;
* ``off``: :math:`|M - \Pi M|_F/|M|_F`, :math:`M = W^\top W`, :math:`\Pi` the orthogonal projection onto
  :math:`\mathrm{span}\{\hat w\hat w^\top, V^\top V, P_\perp\}` (0 on the invariant manifold).

On the manifold :math:`W = Q(aP_{w^*} + bP_v + cP_\perp)` these are exactly :math:`|a|, |b|, |c|` of the
reduced system (:mod:`phasedyn.theory.spiked`). :func:`ratio_and_excess` gives the two per-step
quantities the run tracks beside them: :math:`b/a` and whether :math:`\max(b, c)` exceeds a tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from phasedyn.typing import Basis, Labels, Matrix, PRNGKey, Samples, Scalar, Vector
from phasedyn.theory.problem import Problem
from phasedyn.theory.validate import check_choice, check_int, check_positive

from ._polar import NS_ITERS, NS_TOL, muon_quintic, newton_schulz, orthogonality_residual, polar_svd

OPTIMIZERS = ("gd", "sgd", "specgd")
INITS = ("identity", "orthogonal", "gaussian")
STATISTICS = ("a", "b", "c", "alignment", "loss", "off")


# ---------------------------------------------------------------------------------------------
# Losses


def population_loss(W: Matrix, w_star: Vector, lam: Vector, sigma: float | Scalar = 0.0) -> Scalar:
    r"""Population loss of the two-layer model,

    .. math:: L(W) = \mathbb E[(|Wx|^2/m - (x\cdot w^*)^2 - \xi)^2]
              = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma) + \sigma^2,

    :math:`A = W^\top W/m - w^*w^{*\top}`, :math:`\Sigma = \mathrm{diag}(\lambda)`: for :math:`x \sim N(0,\Sigma)`
    and symmetric :math:`A`, :math:`\mathbb E[(x^\top Ax)^2] = (\mathrm{tr}\,A\Sigma)^2
    + 2\,\mathrm{tr}(A\Sigma A\Sigma)` (Isserlis). Shapes: ``W (m, d)``, ``w_star (d,)``, ``lam (d,)``.
    """
    m = W.shape[0]
    A = W.T @ W / m - jnp.outer(w_star, w_star)
    tr = jnp.sum(jnp.diagonal(A) * lam)
    AS = A * lam[None, :]
    return tr**2 + 2 * jnp.sum(AS * AS.T) + sigma**2


def sample_loss(W: Matrix, x: Samples, y: Labels) -> Scalar:
    r"""Mini-batch loss :math:`\frac1B\sum_i (|Wx_i|^2/m - y_i)^2`."""
    m = W.shape[0]
    pred = jnp.sum((x @ W.T) ** 2, axis=-1) / m
    return jnp.mean((pred - y) ** 2)


_grad_population = jax.grad(population_loss)
_grad_sample = jax.grad(sample_loss)


# ---------------------------------------------------------------------------------------------
# Update rules


def gd_step(W: Matrix, w_star: Vector, lam: Vector, eta: float | Scalar) -> Matrix:
    r"""Population GD: :math:`W \leftarrow W - \eta\nabla_W L(W)` (``jax.grad`` of :func:`population_loss`)."""
    return W - eta * _grad_population(W, w_star, lam)


def sgd_step(W: Matrix, key: PRNGKey, w_star: Vector, lam: Vector, eta: float | Scalar, sigma: float | Scalar,
             batch: int) -> Matrix:
    r"""Online mini-batch SGD on ``batch`` fresh samples :math:`x = \sqrt\lambda\odot z`,
    :math:`y = (x\cdot w^*)^2 + \sigma\xi`."""
    kx, kxi = jax.random.split(key)
    x = jax.random.normal(kx, (batch, W.shape[1]), dtype=W.dtype) * jnp.sqrt(lam)[None, :]
    y = (x @ w_star) ** 2 + sigma * jax.random.normal(kxi, (batch,), dtype=W.dtype)
    return W - eta * _grad_sample(W, x, y)


def specgd_step(W: Matrix, w_star: Vector, lam: Vector, eta: float | Scalar, method: str = "svd",
                iters: int = NS_ITERS, tol: float = NS_TOL, fallback: bool = False) -> tuple[Matrix, Scalar]:
    r"""SpecGD: :math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)`; returns ``(W, residual)``.

    ``method``: ``"svd"``, ``"newton-schulz"`` or ``"muon"`` (:func:`muon_quintic` with Muon's defaults).
    ``residual`` is :math:`|XX^\top - I|_F` of the factor used: Newton–Schulz's at its stop, Muon's (how far its
    factor is from orthogonal; no tolerance applies), 0 for the SVD. With ``fallback`` a Newton–Schulz result
    above ``tol`` is replaced by :func:`polar_svd` (and the residual reported is still NS's).
    """
    G = _grad_population(W, w_star, lam)
    if method == "svd":
        return W - eta * polar_svd(G), jnp.zeros((), W.dtype)
    if method == "muon":
        X = muon_quintic(G)
        return W - eta * X, orthogonality_residual(X)
    X, r, _ = newton_schulz(G, iters, tol)
    if fallback:
        X = jnp.where(r > tol, polar_svd(G), X)
    return W - eta * X, r


# ---------------------------------------------------------------------------------------------
# Statistics


def directions(w_star: np.ndarray, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Unit target :math:`\hat w` and spike basis :math:`V` (``k`` orthonormal rows, orthogonalised against
    :math:`\hat w`)."""
    w_star = np.asarray(w_star, float)
    spikes = np.atleast_2d(np.asarray(spikes, float))
    if spikes.shape[1] != w_star.shape[0]:
        raise ValueError(f"spikes must have shape (k, d) with d = {w_star.shape[0]}, got {spikes.shape}")
    q, r = np.linalg.qr(np.concatenate([w_star[:, None], spikes.T], axis=1))
    if np.any(np.abs(np.diag(r)) < 1e-10 * np.abs(r[0, 0])):
        raise ValueError("spikes must be linearly independent of each other and of w_star")
    q = q * np.sign(np.diag(r))[None, :]
    return q[:, 0], q[:, 1:].T


def statistics(W: Matrix, w_hat: Vector, V: Basis, w_star: Vector, lam: Vector,
               sigma: float | Scalar = 0.0) -> dict[str, Scalar]:
    """The recorded statistics of one ``W`` (module docstring): ``a, b, c, alignment, loss, off``."""
    d, k = W.shape[1], V.shape[0]
    Ww = W @ w_hat
    WV = W @ V.T
    Wperp = W - jnp.outer(Ww, w_hat) - WV @ V
    M = W.T @ W
    P_w = jnp.outer(w_hat, w_hat)
    P_v = V.T @ V
    P_perp = jnp.eye(d, dtype=W.dtype) - P_w - P_v
    proj = (w_hat @ M @ w_hat) * P_w + (jnp.sum(M * P_v) / k) * P_v + (jnp.sum(M * P_perp) / (d - 1 - k)) * P_perp
    _, vecs = jnp.linalg.eigh(M)
    return {
        "a": jnp.sqrt(jnp.sum(Ww * Ww)),
        "b": jnp.sqrt(jnp.sum(WV * WV) / k),
        "c": jnp.sqrt(jnp.sum(Wperp * Wperp) / (d - 1 - k)),
        "alignment": jnp.abs(vecs[:, -1] @ w_hat),
        "loss": population_loss(W, w_star, lam, sigma),
        "off": jnp.sqrt(jnp.sum((M - proj) ** 2) / jnp.sum(M * M)),
    }


def ratio_and_excess(W, w_hat, V, tol_abs):
    """Per step: b/a and whether max(b, c) > tol_abs (cheap: O(m d k))."""
    d, k = W.shape[1], V.shape[0]
    Ww = W @ w_hat
    WV = W @ V.T
    Wperp = W - jnp.outer(Ww, w_hat) - WV @ V
    a = jnp.sqrt(jnp.sum(Ww * Ww))
    b = jnp.sqrt(jnp.sum(WV * WV) / k)
    c = jnp.sqrt(jnp.sum(Wperp * Wperp) / (d - 1 - k))
    return b / a, jnp.maximum(b, c) > tol_abs


# ---------------------------------------------------------------------------------------------
# Initialisation


def init_weights(init: str, m: int, d: int, init_scale: float, seed: int) -> np.ndarray:
    r""":math:`W(0)`, shape ``(m, d)``.

    * ``"identity"``: :math:`c_0 I` (needs :math:`m = d`): on the invariant manifold, :math:`a = b = c = c_0`;
    * ``"orthogonal"``: :math:`c_0 Q`, :math:`Q` Haar-random with orthonormal rows (:math:`m \le d`) or columns
      (:math:`m \ge d`); on the manifold when :math:`m \ge d`;
    * ``"gaussian"``: i.i.d. :math:`N(0, c_0^2/d)` entries (rows of norm :math:`\approx c_0`); off the manifold.
    """
    check_choice("init", init, INITS)
    m, d = check_int("m", m, 1), check_int("d", d, 2)
    c0 = check_positive("init_scale", init_scale)
    if init == "identity":
        if m != d:
            raise ValueError(f"init='identity' needs m = d (W(0) = c0 I), got m = {m}, d = {d}; "
                             "use init='orthogonal' or 'gaussian'")
        return c0 * np.eye(d)
    rng = np.random.default_rng([check_int("seed", seed, 0), 3])
    z = rng.standard_normal((m, d))
    if init == "gaussian":
        return c0 * z / np.sqrt(d)
    q, r = np.linalg.qr(z.T if m <= d else z)
    q = q * np.sign(np.diag(r))[None, :]
    return c0 * (q.T if m <= d else q)


def default_spikes(problem: Problem) -> np.ndarray:
    r"""Spike directions when none are given: :math:`e_1` for a spiked problem, else the top eigen-direction
    of :math:`\Sigma`."""
    v = np.zeros((1, problem.d))
    v[0, 0 if problem.kind == "spiked" else int(np.argmax(problem.lam))] = 1.0
    return v
