r"""Adaptive exponential integrator for the exact per-mode gradient flow (stiff spectra, :math:`\lambda_1/\lambda_d = d^a`).

Per mode, gradient flow reads :math:`\dot w_i = -\lambda_i(\alpha\,w_i + \beta\,w^*_i)` with
:math:`\nabla L = \alpha\Sigma w + \beta\Sigma w^*` from :func:`~phasedyn.theory.derive.derive_loss`
(:math:`\alpha = 12s - 4s^*`, :math:`\beta = -8u` for phase retrieval): each mode is *scalar affine*
given the global fields :math:`(u, s)`. Freezing :math:`(\alpha, \beta)` over a step, every mode is
solved exactly,

.. math:: w_i(t+h) = e^{-\lambda_i\alpha h}\,w_i - \lambda_i h\,\varphi_1(-\lambda_i\alpha h)\,\beta\,w^*_i,
          \qquad \varphi_1(z) = (e^z - 1)/z,

so the stiffness of the fast modes costs nothing and the step is limited only by how fast
:math:`(u(t), s(t))` change (in Phase III the step grows with :math:`t`, so reaching :math:`t \sim d^a`
takes few steps). Scheme: exponential midpoint with the midpoint fields solved *implicitly*,
:math:`g_{1/2} = (u, s)\big(w(t + h/2; g_{1/2})\big)`, by Newton on the 2 fields (an explicit
prediction would leave the feedback fields → fast modes → fields as an explicit, step-limited loop), error by step doubling (one step of h against two of h/2:
:math:`\Delta = (w_{h/2,h/2} - w_h)/3`), result Richardson-extrapolated (order 3), step control on the
RMS of :math:`|\Delta|/(\mathrm{atol} + \mathrm{rtol}\,|w|)` with exponent 1/3; save times hit exactly.
(An exponential-Euler error estimate would control a first-order error: the quasi-static top modes
:math:`w_i \approx -(\beta/\alpha)w^*_i` then pin the step to the slow drift of :math:`\beta/\alpha`.) diffrax offers no exponential integrators; this fills that gap for this one
structure (the general solver stays :func:`~phasedyn.theory.solve.solve`).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import derive as D
from . import symbols as S
from ._validate import check_int, check_positive
from ._shard import BatchSharding, Devices
from .blocks import BlockSystem
from .problem import Problem
from .solve import Solution, SolveError, _TRACES


def _phi1(z):
    """(e^z - 1)/z, stable near 0 and for large |z|."""
    small = jnp.abs(z) < 1e-8
    zs = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 + 0.5 * z, jnp.expm1(zs) / zs)


@lru_cache(maxsize=16)
def _compiled(sample_loss: sp.Expr):
    """The jitted, vmapped integrator for one loss; tolerances and ``max_steps`` are traced (no recompiles)."""
    coef = D.derive_loss(sample_loss)
    f_ab = sp.lambdify((S.u, S.s, S.s_star), [coef.alpha, coef.beta], modules="jax")
    key = ("expint-modes", sp.srepr(sample_loss))

    def fields(w, lam, w_star):
        return jnp.stack([jnp.sum(lam * w * w_star), jnp.sum(lam * w * w)])

    def coefficients(g, s_star):
        a, b = f_ab(g[0], g[1], s_star)
        return a + 0 * g[0], b + 0 * g[0]

    def step(w, h, ab, lam, w_star):
        a, b = ab
        z = -lam * a * h
        return jnp.exp(z) * w - lam * h * _phi1(z) * b * w_star

    def one(w0, lam, w_star, ts, rtol, atol, max_steps):
        _TRACES[(key, "expint")] += 1
        s_star = jnp.sum(lam * w_star * w_star)
        n_t = ts.shape[0]
        out = jnp.zeros((n_t,) + w0.shape, w0.dtype).at[0].set(w0)

        def cond(c):
            t, w, h, i, out, k, ok = c
            return (i < n_t) & (k < max_steps) & ok

        def midpoint(w, h):
            """Exponential midpoint with *implicit* midpoint fields: g = fields(step(w, h/2, g)).

            Freezing the fields explicitly would make the loop fields -> fast modes -> fields an
            explicit scheme with a stability limit on h; 4 Newton iterations on the 2 fields
            (each O(d)) remove it.
            """
            def residual(g):
                return fields(step(w, 0.5 * h, coefficients(g, s_star), lam, w_star), lam, w_star) - g

            g = fields(step(w, 0.5 * h, coefficients(fields(w, lam, w_star), s_star), lam, w_star), lam, w_star)
            for _ in range(4):
                r, J = residual(g), jax.jacfwd(residual)(g)
                g = g - jnp.linalg.solve(J, r)
            return step(w, h, coefficients(g, s_star), lam, w_star)

        def body(c):
            t, w, h, i, out, k, ok = c
            h_try = jnp.minimum(h, ts[i] - t)
            w_full = midpoint(w, h_try)
            w_two = midpoint(midpoint(w, 0.5 * h_try), 0.5 * h_try)
            delta = (w_two - w_full) / 3.0  # step doubling: local error of w_two (order 2)
            w_new = w_two + delta  # Richardson extrapolation: order 3
            scale = atol + rtol * jnp.maximum(jnp.abs(w), jnp.abs(w_new))
            err = jnp.sqrt(jnp.mean((delta / scale) ** 2))
            finite = jnp.all(jnp.isfinite(w_new))
            accept = (err <= 1.0) & finite
            factor = jnp.where(finite, jnp.clip(0.9 * jnp.maximum(err, 1e-12) ** (-1.0 / 3.0), 0.2, 5.0), 0.2)
            hit = accept & (h_try >= ts[i] - t)
            out = jnp.where(hit, out.at[i].set(w_new), out)
            t_new = jnp.where(hit, ts[i], jnp.where(accept, t + h_try, t))
            h_new = h_try * factor
            h_new = jnp.where(hit & (h_try < h), jnp.maximum(h, h_new), h_new)  # a clipped save step keeps h
            return (t_new, jnp.where(accept, w_new, w), h_new, jnp.where(hit, i + 1, i), out, k + 1,
                    finite | ~accept)

        h0 = jnp.minimum(1e-3, ts[1] - ts[0])
        t, w, h, i, out, k, ok = jax.lax.while_loop(cond, body, (ts[0], w0, h0, jnp.asarray(1), out, 0, True))
        return out, i, k, t

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None, None, None)))


@lru_cache(maxsize=16)
def _observables(d: int, sample_loss: sp.Expr):
    """Jitted observables of a batch of per-mode states (rows), cached per (d, loss)."""
    return jax.jit(jax.vmap(BlockSystem(d, "gf", sample_loss).observable_fn, in_axes=(0, None)))


def solve_modes(problem: Problem, ts, w0=None, *, rtol: float = 1e-8, atol: float = 1e-10,
                max_steps: int = 1_000_000, sample_loss: sp.Expr = S.phase_retrieval_loss,
                devices: Devices = None) -> tuple[Solution, np.ndarray]:
    r"""Exact per-mode gradient flow by the exponential integrator (see module doc).

    Returns ``(solution, w)``: a :class:`~phasedyn.theory.solve.Solution` of the per-mode
    :class:`~phasedyn.theory.blocks.BlockSystem` (:math:`B = d`; states
    :math:`m_i = w_iw^*_i`, :math:`q_i = w_i^2`; observables ``u, s, u0, s0, u2, s2, loss, mse``) and the
    weights ``w`` of shape ``(*batch, n_t, d)``. ``w0`` (``(..., d)``) defaults to ``problem.w0``; its
    leading axes are a batch, sharded over ``devices`` (default: all visible; see :mod:`._shard`).
    """
    rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, 1)
    ts = np.asarray(ts, float)
    if ts.ndim != 1 or ts.size < 2 or ts[0] != 0 or np.any(np.diff(ts) <= 0) or not np.all(np.isfinite(ts)):
        raise ValueError("ts must be a finite, strictly increasing 1-D array starting at 0")
    w0 = np.asarray(problem.w0 if w0 is None else w0, float)
    if w0.shape[-1] != problem.d or not np.all(np.isfinite(w0)):
        raise ValueError(f"w0 must be finite with last axis d = {problem.d}, got shape {w0.shape}")
    batch = w0.shape[:-1]
    fn = _compiled(sp.sympify(sample_loss))
    w0f = w0.reshape(-1, problem.d)
    shard = BatchSharding.make(w0f.shape[0], devices)
    rep = lambda x: shard.replicate(np.asarray(x))  # noqa: E731
    out = fn(shard.shard(w0f), rep(problem.lam), rep(problem.w_star), rep(ts), rep(rtol), rep(atol), rep(max_steps))
    W, reached, nsteps, t_end = (shard.unpad(np.asarray(x)) for x in out)
    bad = np.flatnonzero(reached < ts.size)
    if bad.size:
        i = int(bad[0])
        raise SolveError(f"exact per-mode flow (exponential integrator), batch member {i}: stopped at t = "
                         f"{t_end[i]:.6g} of {ts[-1]:.6g} after {nsteps[i]} steps (max_steps = {max_steps}, "
                         "or a non-finite state)")
    system = BlockSystem(problem.d, "gf", sample_loss)
    d = problem.d
    y = np.empty(W.shape[:-1] + (2 * d,))  # per-mode states (m_i, q_i) = (w_i w*_i, w_i^2), filled in place
    np.multiply(W, problem.w_star, out=y[..., :d])
    np.multiply(W, W, out=y[..., d:])
    prm = system.pack_params({"eta": 0.0, "sigma": problem.sigma, "lambda": problem.lam,
                              "p": problem.w_star**2, "n": np.ones(d)})
    obs_fn = _observables(d, sp.sympify(sample_loss))
    rows = y.reshape(-1, 2 * d)
    chunk = max(1, (1 << 24) // (2 * d))  # ~128 MB of float64 states per device transfer
    prm_j = jnp.asarray(prm)
    obs = np.concatenate([np.asarray(obs_fn(jnp.asarray(rows[i:i + chunk]), prm_j))
                          for i in range(0, rows.shape[0], chunk)]).reshape(y.shape[:-1] + (-1,))
    y0 = y[:, 0]
    shape = lambda a: a.reshape(batch + a.shape[1:])  # noqa: E731
    sol = Solution(system, ts, shape(y), shape(obs), shape(y0), np.broadcast_to(prm, batch + prm.shape),
                   nsteps.reshape(batch))
    return sol, shape(W)
