r"""Full-matrix training of the two-layer quadratic network :math:`f_W(x) = |Wx|^2/m` (docs/theory.md §3C).

Data :math:`x \sim N(0, \Sigma)` in :math:`\Sigma`'s eigenbasis (:math:`\Sigma = \mathrm{diag}(\lambda)`, any
spectrum), target :math:`y = (x\cdot w^*)^2 + \xi`, :math:`W \in \mathbb R^{m\times d}`. Optimisers
(time :math:`t = \eta k`):

* ``"gd"``: population GD, :math:`W \leftarrow W - \eta\nabla_W L`;
* ``"sgd"``: online mini-batch SGD, a fresh batch of ``batch`` samples per step,
  :math:`W \leftarrow W - \eta\nabla_W \frac1B\sum_i (f_W(x_i) - y_i)^2`;
* ``"specgd"``: spectral GD (Muon-like), :math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)` with the polar
  factor by SVD (:func:`polar_svd`) or by Newton–Schulz (:func:`newton_schulz`).

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
reduced system (:mod:`phasedyn.theory.spiked`). Every step also updates, per seed, the running maximum of
:math:`b/a` and its step, and the last step at which :math:`\max(b, c) >` ``tol`` :math:`\sqrt m`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import Any, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float
from tqdm import tqdm

from phasedyn.theory import Problem
from phasedyn.theory.devices import BatchSharding, Devices
from phasedyn.theory.validate import check_choice, check_int, check_positive

from .errors import DivergenceError
from .run import _check_seeds, _scalar, check_prng, log_step_grid, seed_keys

Matrix = Float[Array, "m d"]
Vector = Float[Array, " d"]
Scalar = Float[Array, ""]

OPTIMIZERS = ("gd", "sgd", "specgd")
INITS = ("identity", "orthogonal", "gaussian")
POLARS = ("svd", "newton-schulz")
STATISTICS = ("a", "b", "c", "alignment", "loss", "off")

NS_ITERS = 100
"""Newton–Schulz iteration budget (the loop stops earlier once the residual is below ``ns_tol``)."""
NS_TOL = 1e-10
"""Newton–Schulz stopping and acceptance tolerance on :math:`|XX^\\top - I|_F` (see :func:`newton_schulz`)."""

PEAK_RTOL = 1e-12
"""A new maximum of :math:`b/a` must beat the running one by this relative margin (round-off does not move the peak)."""

_TRACES: collections.Counter = collections.Counter()


class PolarError(RuntimeError):
    """Newton–Schulz did not produce an orthogonal polar factor (singular or too ill-conditioned gradient)."""


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


def sample_loss(W: Matrix, x: Float[Array, "B d"], y: Float[Array, " B"]) -> Scalar:
    r"""Mini-batch loss :math:`\frac1B\sum_i (|Wx_i|^2/m - y_i)^2`."""
    m = W.shape[0]
    pred = jnp.sum((x @ W.T) ** 2, axis=-1) / m
    return jnp.mean((pred - y) ** 2)


_grad_population = jax.grad(population_loss)
_grad_sample = jax.grad(sample_loss)


# ---------------------------------------------------------------------------------------------
# Polar factor


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


def newton_schulz(G: Matrix, iters: int = NS_ITERS, tol: float = NS_TOL) -> tuple[Matrix, Scalar, Array]:
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
    says so (:func:`polar` raises :class:`PolarError`; :func:`run_matrix` raises or falls back to the SVD).

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


# ---------------------------------------------------------------------------------------------
# Update rules


def gd_step(W: Matrix, w_star: Vector, lam: Vector, eta: float | Scalar) -> Matrix:
    r"""Population GD: :math:`W \leftarrow W - \eta\nabla_W L(W)` (``jax.grad`` of :func:`population_loss`)."""
    return W - eta * _grad_population(W, w_star, lam)


def sgd_step(W: Matrix, key, w_star: Vector, lam: Vector, eta: float | Scalar, sigma: float | Scalar,
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

    ``residual`` is Newton–Schulz's :math:`|XX^\top - I|_F` (0 for the SVD). With ``fallback`` a
    Newton–Schulz result above ``tol`` is replaced by :func:`polar_svd` (and the residual reported is still NS's).
    """
    G = _grad_population(W, w_star, lam)
    if method == "svd":
        return W - eta * polar_svd(G), jnp.zeros((), W.dtype)
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


def statistics(W: Matrix, w_hat: Vector, V: Float[Array, "k d"], w_star: Vector, lam: Vector,
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


def _ratio_and_excess(W, w_hat, V, tol_abs):
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


# ---------------------------------------------------------------------------------------------
# The jitted kernel


@dataclasses.dataclass(frozen=True)
class MatrixTrajectory:
    r"""A recorded full-matrix run.

    Attributes:
        steps: record steps :math:`k`, ``(n_rec,)``; ``t``: :math:`\eta k`.
        stats: name → ``(n_seeds, n_rec)`` for :data:`STATISTICS`.
        seeds: one per row.
        ratio0, peak_ratio, peak_step: :math:`b/a` at step 0, its maximum over **every** step and the first
            step reaching it, ``(n_seeds,)``.
        steps_to_tol: first step from which :math:`\max(b, c) \le` ``tol`` :math:`\sqrt m` for the rest of the
            run (``-1``: above at the end), ``(n_seeds,)``.
        polar_residual: the largest Newton–Schulz residual met, per seed (0 for SVD / GD / SGD).
        W_final: ``(n_seeds, m, d)``.
        config: JSON-serialisable description of the run.
    """

    steps: np.ndarray
    t: np.ndarray
    stats: dict[str, np.ndarray]
    seeds: list[int]
    ratio0: np.ndarray
    peak_ratio: np.ndarray
    peak_step: np.ndarray
    steps_to_tol: np.ndarray
    polar_residual: np.ndarray
    W_final: np.ndarray
    config: dict[str, Any]

    @property
    def amplification(self) -> np.ndarray:
        """``peak_ratio / ratio0`` per seed."""
        return self.peak_ratio / self.ratio0


def _advance(optimizer, polar_method, ns_iters, fallback, batch, W, key, carry, step0, n, prm):
    """Advance one seed by ``n`` steps from global step ``step0`` (frozen at the first bad step)."""
    w_hat, V, w_star, lam, eta, sigma, bound, tol_abs, ns_tol = prm

    def body(i, state):
        W, (bad, best, kbest, last_above, res_max, res_bad) = state
        k = step0 + i
        res = jnp.zeros((), W.dtype)
        if optimizer == "gd":
            W_new = gd_step(W, w_star, lam, eta)
        elif optimizer == "sgd":
            W_new = sgd_step(W, jax.random.fold_in(key, k), w_star, lam, eta, sigma, batch)
        else:
            W_new, res = specgd_step(W, w_star, lam, eta, polar_method, ns_iters, ns_tol, fallback)
        norm2 = jnp.sum(W_new * W_new)
        out = ~jnp.isfinite(norm2) | (norm2 > bound)
        ok = bad < 0
        live = ok & ~out
        W = jnp.where(live, W_new, W)
        bad = jnp.where(ok & out, k + 1, bad)
        r, excess = _ratio_and_excess(W, w_hat, V, tol_abs)
        better = live & (r > best * (1 + PEAK_RTOL))
        best = jnp.where(better, r, best)
        kbest = jnp.where(better, k + 1, kbest)
        last_above = jnp.where(live & excess, k + 1, last_above)
        res_max = jnp.maximum(res_max, jnp.where(live, res, 0.0))
        if not fallback:
            res_bad = jnp.where((res_bad < 0) & live & (res > ns_tol), k + 1, res_bad)
        return W, (bad, best, kbest, last_above, res_max, res_bad)

    return lax.fori_loop(jnp.zeros_like(n), n, body, (W, carry))


@functools.lru_cache(maxsize=None)
def _chunk_fn(optimizer: str, polar_method: str, ns_iters: int, fallback: bool, batch: int, dtype: str, chunk: int):
    """Jitted: advance all seeds across ``chunk`` record intervals, recording the statistics.

    Cached on static options only; everything else (weights, directions, spectrum, eta, ...) is traced."""
    advance = jax.vmap(
        functools.partial(_advance, optimizer, polar_method, ns_iters, fallback, batch),
        in_axes=(0, 0, 0, None, None, None),
    )
    stats_of = jax.vmap(statistics, in_axes=(0, None, None, None, None, None))

    def fn(W, keys, carry, step, lengths, prm):
        _TRACES[(optimizer, polar_method, ns_iters, fallback, batch, dtype, chunk)] += 1
        w_hat, V, w_star, lam, eta, sigma, *_ = prm

        def body(state, n):
            W, carry, step = state
            W, carry = advance(W, keys, carry, step, n, prm)
            return (W, carry, step + n), stats_of(W, w_hat, V, w_star, lam, sigma)

        (W, carry, step), stats = lax.scan(body, (W, carry, step), lengths)
        return W, carry, step, stats

    return jax.jit(fn)


# ---------------------------------------------------------------------------------------------
# The driver


def default_spikes(problem: Problem) -> np.ndarray:
    r"""Spike directions when none are given: :math:`e_1` for a spiked problem, else the top eigen-direction
    of :math:`\Sigma`."""
    v = np.zeros((1, problem.d))
    v[0, 0 if problem.kind == "spiked" else int(np.argmax(problem.lam))] = 1.0
    return v


def run_matrix(
    problem: Problem,
    optimizer: Literal["gd", "sgd", "specgd"],
    eta: float,
    steps: int,
    m: int,
    init: Literal["identity", "orthogonal", "gaussian"] = "identity",
    init_scale: float = 0.1,
    seeds: int | Sequence[int] = 1,
    spikes: np.ndarray | None = None,
    polar: Literal["svd", "newton-schulz"] = "svd",
    batch: int = 1,
    tol: float = 0.05,
    n_record: int = 200,
    record_steps: Sequence[int] | np.ndarray | None = None,
    W0: np.ndarray | None = None,
    ns_iters: int = NS_ITERS,
    ns_tol: float = NS_TOL,
    ns_fallback: bool = False,
    divergence_bound: float = 1e8,
    progress: bool | None = None,
    dtype: Any = jnp.float64,
    chunk_size: int = 32,
    devices: Devices = None,
    prng: str | None = None,
) -> MatrixTrajectory:
    r"""Train :math:`W \in \mathbb R^{m\times d}` on ``problem`` (its spectrum, :math:`w^*`, :math:`\sigma`) and
    record statistics.

    Args:
        problem: a :class:`~phasedyn.theory.Problem` (any spectrum; ``spiked_problem`` for §3C).
        optimizer: ``"gd"``, ``"sgd"`` (mini-batch of ``batch`` fresh samples) or ``"specgd"``.
        eta: step size :math:`> 0` (:math:`t = \eta k`).
        steps: number of steps :math:`\ge 1`.
        m: width :math:`\ge 1`.
        init, init_scale: :func:`init_weights` (seed :math:`j` draws its own :math:`W(0)` for the random inits).
        seeds: count (``init_seed + j``, ``init_seed`` from ``problem.meta``, default 0) or list of seeds;
            each seed has its own :math:`W(0)` and SGD stream ``fold_in(key(seed), k)``.
        spikes: spike directions ``(k, d)`` or ``(d,)`` for ``b``; default :func:`default_spikes`.
        polar: ``"svd"`` or ``"newton-schulz"`` (SpecGD only).
        tol: tolerance for ``steps_to_tol``, relative to the target scale :math:`\sqrt m`.
        n_record, record_steps: log-spaced record grid (or explicit steps in ``[0, steps]``).
        W0: explicit initial weights ``(n_seeds, m, d)`` instead of ``init``.
        ns_iters, ns_tol: Newton–Schulz budget and acceptance tolerance; ``ns_fallback``: use the SVD
            wherever NS does not reach ``ns_tol`` (else :class:`PolarError` is raised).
        divergence_bound: :class:`DivergenceError` once :math:`|W|_F^2` exceeds it or :math:`W` is non-finite.
        progress: progress bar (``None``: when ``n_seeds m d steps > 2e8``).
        dtype: ``jnp.float64`` (default) or ``jnp.float32``.
        chunk_size: record intervals per jitted call (speed only).
        devices: where the seeds run (as in :func:`~phasedyn.simulate.run`): ``None``/``"all"``, one device
            or a sequence; the seed axis is sharded over them (padded, padding dropped); results do not
            depend on it.
        prng: JAX generator of the SGD samples (:data:`~phasedyn.simulate.run.PRNG_IMPLS`; ``None``: JAX's
            default); recorded in ``config["prng"]``.

    Raises:
        ValueError: invalid argument (named, with its allowed range).
        DivergenceError: a seed diverged (seed and exact step in the message).
        PolarError: Newton–Schulz failed and ``ns_fallback`` is off (seed and step in the message).
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a phasedyn.theory.Problem, got {type(problem).__name__}")
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("polar", polar, POLARS)
    eta = check_positive("eta", _scalar(eta))
    steps = check_int("steps", _scalar(steps), 1)
    m = check_int("m", _scalar(m), 1)
    batch = check_int("batch", batch, 1)
    tol = check_positive("tol", tol)
    n_record = check_int("n_record", n_record, 2)
    ns_iters = check_int("ns_iters", ns_iters, 1)
    ns_tol = check_positive("ns_tol", ns_tol)
    divergence_bound = check_positive("divergence_bound", _scalar(divergence_bound))
    chunk_size = check_int("chunk_size", chunk_size, 1)
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    dt = jnp.dtype(dtype)
    check_choice("dtype", dt.name, ("float32", "float64"))
    d = problem.d
    seed_list = _check_seeds(seeds, problem)
    prng = check_prng(prng)
    n_seeds = len(seed_list)
    w_hat, V = directions(problem.w_star, default_spikes(problem) if spikes is None else spikes)
    if d - 1 - V.shape[0] < 1:
        raise ValueError(f"d = {d} leaves no bulk direction besides w* and {V.shape[0]} spike(s) (need d >= k + 2)")
    explicit_w0 = W0 is not None
    if W0 is None:
        W0 = np.stack([init_weights(init, m, d, init_scale, s) for s in seed_list])
    else:
        W0 = np.asarray(W0, dtype=np.float64)
        if W0.shape != (n_seeds, m, d):
            raise ValueError(f"W0 must have shape (n_seeds, m, d) = ({n_seeds}, {m}, {d}), got {W0.shape}")
        if not np.all(np.isfinite(W0)):
            raise ValueError("W0 must be finite (no NaN or inf)")
    if np.any(np.sum(W0**2, axis=(1, 2)) > divergence_bound):
        raise ValueError(f"divergence_bound = {divergence_bound} must exceed |W0|_F^2 (allowed range (|W0|_F^2, inf))")

    if record_steps is None:
        grid = log_step_grid(steps, n_record)
    else:
        grid = np.asarray(record_steps)
        if grid.ndim != 1 or grid.size == 0 or grid[0] < 0 or grid[-1] > steps or np.any(np.diff(grid) <= 0):
            raise ValueError(f"record_steps must be strictly increasing integers in [0, steps] = [0, {steps}]")
        grid = grid.astype(np.int64)
    targets = grid if grid[-1] == steps else np.append(grid, steps)
    lengths = np.diff(targets, prepend=0)
    n_int = lengths.shape[0]
    n_chunks = -(-n_int // chunk_size)
    lengths = np.concatenate([lengths, np.zeros(n_chunks * chunk_size - n_int, np.int64)])

    int_t = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    polar_key = polar if optimizer == "specgd" else "none"
    fn = _chunk_fn(optimizer, polar_key, ns_iters if polar_key == "newton-schulz" else 0,
                   bool(ns_fallback) and polar_key == "newton-schulz", batch if optimizer == "sgd" else 0, dt.name,
                   chunk_size)
    # seeds (W, keys, carry) sharded over the mesh's batch axis, shared inputs replicated (as in run())
    shard = BatchSharding.make(n_seeds, devices)
    W = shard.shard(np.asarray(W0, dtype=dt))
    keys = seed_keys(seed_list, prng, shard)
    prm = tuple(shard.replicate(np.asarray(x, dtype=dt)) for x in (
        w_hat, V, problem.w_star, problem.lam, eta, problem.sigma, divergence_bound, tol * math.sqrt(m), ns_tol))
    r0, exc0 = jax.vmap(_ratio_and_excess, in_axes=(0, None, None, None))(W, prm[0], prm[1], prm[7])
    neg = shard.shard(np.full((n_seeds,), -1, dtype=int_t))
    carry = (neg, r0, shard.shard(np.zeros((n_seeds,), int_t)), jnp.where(exc0, 0, -1).astype(int_t),
             shard.shard(np.zeros((n_seeds,), dt)), neg)
    step = shard.replicate(np.zeros((), dtype=int_t))
    show = n_seeds * m * d * steps > 2e8 if progress is None else progress

    recorded: list[dict[str, np.ndarray]] = []
    with tqdm(total=steps, disable=not show, unit="step", desc=f"{optimizer} eta={eta:g}") as bar:
        for ci in range(n_chunks):
            block = lengths[ci * chunk_size:(ci + 1) * chunk_size]
            W, carry, step, stats = fn(W, keys, carry, step, shard.replicate(np.asarray(block, dtype=int_t)), prm)
            recorded.append({k: shard.unpad(np.asarray(v), axis=1) for k, v in stats.items()})
            _check(tuple(shard.unpad(np.asarray(x)) for x in carry), optimizer, polar, eta, seed_list,
                   divergence_bound, ns_tol)
            bar.update(int(block.sum()))

    # interval j ends at targets[j] (the first, of length 0 when the grid starts at 0, records W(0))
    keep = np.isin(targets, grid)
    stats_out = {k: np.concatenate([r[k] for r in recorded])[:n_int][keep].T.copy() for k in STATISTICS}
    bad, best, kbest, last_above, res_max, _ = (shard.unpad(np.asarray(x)) for x in carry)
    to_tol = np.where(last_above >= steps, -1, last_above + 1)
    config = {
        "optimizer": optimizer, "eta": eta, "steps": steps, "m": m, "d": d, "init": "explicit" if explicit_w0 else init,
        "init_scale": float(init_scale), "polar": polar if optimizer == "specgd" else None,
        "batch": batch if optimizer == "sgd" else None, "tol": tol, "seeds": list(seed_list), "dtype": dt.name,
        "ns_iters": ns_iters, "ns_tol": ns_tol, "ns_fallback": bool(ns_fallback), "sigma": float(problem.sigma),
        "kind": problem.kind, "meta": dict(problem.meta), "n_spikes": int(V.shape[0]),
        "prng": prng,
    }
    return MatrixTrajectory(
        steps=grid.astype(np.int64), t=eta * grid.astype(np.float64), stats=stats_out, seeds=list(seed_list),
        ratio0=shard.unpad(np.asarray(r0)), peak_ratio=best, peak_step=kbest, steps_to_tol=to_tol, polar_residual=res_max,
        W_final=shard.unpad(np.asarray(W)), config=config,
    )


def _check(carry, optimizer, polar, eta, seeds, bound, ns_tol) -> None:
    bad, _, _, _, res_max, res_bad = (np.asarray(x) for x in carry)
    if np.any(bad >= 0):
        j = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(bad.dtype).max)))
        k = int(bad[j])
        raise DivergenceError(
            f"{optimizer} with eta = {eta:g} diverged: seed {seeds[j]} at step {k} (t = {eta * k:.6g}), W became "
            f"non-finite or |W|_F^2 exceeded divergence_bound = {bound:g}; try a smaller step size (e.g. eta = "
            f"{eta / 10:.3g})",
            optimizer=optimizer, eta=eta, seed=seeds[j], step=k,
        )
    if np.any(res_bad >= 0):
        j = int(np.argmin(np.where(res_bad >= 0, res_bad, np.iinfo(res_bad.dtype).max)))
        raise PolarError(
            f"specgd with polar = {polar!r}: Newton–Schulz did not converge for seed {seeds[j]} at step "
            f"{int(res_bad[j])} (|XX^T - I|_F = {res_max[j]:.3g} > ns_tol = {ns_tol:g}): the gradient is singular or "
            "too ill-conditioned; use polar='svd', raise ns_iters, or pass ns_fallback=True"
        )
