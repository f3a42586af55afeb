r"""The exponential integrator of the per-mode gradient flow, as a diffrax solver (docs/theory.md §3(B)).

Per mode, :math:`\dot w_i = -\lambda_i\big(\alpha(g)\,w_i + \beta(g)\,w^*_i\big)` with the global fields
:math:`g = (u, s) = (\sum_i\lambda_iw_iw^*_i, \sum_i\lambda_iw_i^2)` and :math:`(\alpha, \beta)` derived from the
model (:func:`~phasedyn.theory.derive.derive_loss`). Each mode is scalar affine given :math:`g`, so the stiff
linear part is integrated exactly by :math:`\varphi`-functions,
:math:`\varphi_0(z) = e^z`, :math:`\varphi_{k+1}(z) = (\varphi_k(z) - 1/k!)/z`.

Scheme (:class:`ModeETD`, one step :math:`t_0 \to t_0 + h`; exponential collocation at :math:`0, h/2, h`).
The linear part is frozen at a reference :math:`\bar\alpha = \alpha(\hat g_1)`, the coefficient at the
*predicted* endpoint fields :math:`\hat g_1` (below), fixed over the step: :math:`\dot w_i = -\lambda_i\bar\alpha
w_i + N_i(t)`, :math:`N_i = -\lambda_i\big((\alpha(t) - \bar\alpha)w_i + \beta(t)w^*_i\big)`, and :math:`N` is
interpolated by the quadratic through :math:`N_0`, :math:`N_m = N(t_0 + h/2)` and :math:`N_1 = N(t_0 + h)`:
:math:`N(t_0 + \tau) = N_0 + c_1\tau/h + c_2(\tau/h)^2`, :math:`c_1 = -3N_0 + 4N_m - N_1`,
:math:`c_2 = 2(N_0 - 2N_m + N_1)`. Variation of constants, :math:`z = -\lambda_i\bar\alpha h`:

.. math:: w_i(t_0 + \theta h) = e^{\theta z}w_i + \theta h\big[\varphi_1(\theta z)N_0 + \theta\varphi_2(\theta z)c_1
          + 2\theta^2\varphi_3(\theta z)c_2\big],

at :math:`\theta = 1` the step (order 4 for smooth :math:`N`, Simpson-like), at :math:`\theta = 1/2` the
midpoint. With :math:`N_m = -\lambda_i((\alpha_m - \bar\alpha)w_m + \beta_mw^*_i)` and :math:`N_1 =
-\lambda_i((\alpha_1 - \bar\alpha)w_1 + \beta_1w^*_i)` the two collocation equations are, per mode, a 2x2
*linear* system in :math:`(w_m, w_1)` whose coefficients are the step's constants (the :math:`\varphi`-functions
of :math:`z` and :math:`z/2`, computed once per step from one ``expm1`` per mode) and the four numbers
:math:`p = (\alpha_m, \beta_m, \alpha_1, \beta_1)`; it is solved in closed form. The unknowns are the four
numbers :math:`x = (g_m, g_1)`, :math:`g_m = g(w_m)`, :math:`g_1 = g(w_1)`, :math:`p = p(x)`, found by Newton on
:math:`F(x) - x`. Its start :math:`x_0 = (\hat g_m, \hat g_1)` is the quadratic through the previous accepted
step's :math:`g(t_0 - h_p)`, :math:`g_m` and :math:`g(t_0)`, extrapolated to :math:`t_0 + h/2` and
:math:`t_0 + h` (carried as the solver state; :math:`g_0` on the first step or where :math:`h/h_p > 5`). One
pass over the modes gives :math:`F` and its Jacobian :math:`\partial F/\partial p` (forward-mode tangents of the
per-mode rational map: no derivative of a :math:`\varphi`-function, since :math:`\bar\alpha` is fixed) and the
reductions are one matrix product; the iteration stops when the residual is below :math:`10^{-3}(\mathrm{atol} +
\mathrm{rtol}\,|g|)` (measured: one update per step, i.e. two passes, at d = 400, a = 2, t to :math:`d^2`, rtol
1e-8). With :math:`\bar\alpha = \alpha_1` this is the scheme that linearised at the converged endpoint (its
former form here, whose Newton differentiated the :math:`\varphi`-functions in :math:`\alpha_1` at each step:
3.5-4x the time per step at d = 400-2000 for the same steps and errors, benchmarks/RESULTS.md); the difference
:math:`\alpha_1 - \bar\alpha` is the predictor's error, and it enters implicitly. A run that does not converge
returns an infinite error, and the controller retries with a smaller step (as diffrax's implicit solvers do). The
embedded order-2 solution is ETD2 (:math:`N` linear from :math:`N_0` to :math:`N_1`), so the error estimate is
:math:`h(2\varphi_3(z) - \varphi_2(z))\,c_2` (local order 3: step sizes :math:`\propto \mathrm{rtol}^{1/3}`, with
the order-4 solution propagated), which diffrax's ``PIDController`` turns into the step size. Only fields of
computed states enter (no derivative at :math:`t_0`: an explicit :math:`\dot g(t_0)`, tried first, is dominated in
Phase III by the fast transient of the rtol-sized off-manifold error of the stiff modes and capped the step at
:math:`h \approx 15` at d = 2000, whatever the rtol). The implicit fields keep the loop fields → fast modes →
fields free of an explicit stability limit; in the stiff limit :math:`z \to -\infty`, :math:`\varphi_k \approx
-1/((k-1)!\,z)`, the 2x2 system puts a mode on its quasi-static value :math:`-(\beta/\alpha)w^*_i` of the fields at
:math:`t_0 + h/2` and :math:`t_0 + h`, and the error estimate vanishes there (:math:`2\varphi_3 - \varphi_2 =
O(z^{-2})`): the step is set by how fast :math:`g` changes.

:class:`StepBudget` wraps a step-size controller with a *traced* step budget (diffrax's ``max_steps`` is a
compile-time constant; here new budgets must not recompile) and a floor on rejected steps
(:math:`h \le 10^{-13}\max(|t|, 1)`: a state that stays non-finite), reporting diffrax's own
``RESULTS.max_steps_reached`` / ``RESULTS.dt_min_reached``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp

_SERIES = 0.5  # |z| below which phi_k is summed as its Taylor series (cancellation in the recursion)
_TERMS = 13  # series terms: truncation 0.5^13 / 16! ~ 6e-18 of phi_3(0)
_EXTRAPOLATE = 5.0  # largest h / h_prev at which the predictor extrapolates (else it starts from g(t0))


def _series3(z):
    r""":math:`\varphi_3(z) = \sum_j z^j/(j + 3)!`, :math:`j < 13` (Horner; truncation :math:`0.5^{13}/16! \approx
    6\cdot10^{-18}` of :math:`\varphi_3(0) = 1/6` for :math:`|z| < 1/2`)."""
    acc = jnp.full_like(z, 1.0 / math.factorial(_TERMS + 2))
    for j in range(_TERMS - 2, -1, -1):
        acc = acc * z + 1.0 / math.factorial(j + 3)
    return acc


def _phis_em1(z, em1):
    r"""(:math:`e^z, \varphi_1, \varphi_2, \varphi_3`) given :math:`e^z - 1`: forward recursion
    :math:`\varphi_{k+1} = (\varphi_k - 1/k!)/z` for :math:`|z| \ge 1/2`; below, one series for :math:`\varphi_3`
    and the backward recursion :math:`\varphi_k = 1/k! + z\varphi_{k+1}` (multiplications by :math:`|z| < 1/2`:
    stable), so one Horner series per call instead of one per :math:`\varphi_k`."""
    small = jnp.abs(z) < _SERIES
    zs = jnp.where(small, 1.0, z)
    s3 = _series3(jnp.where(small, z, 0.0))
    s2 = 0.5 + z * s3
    s1 = 1.0 + z * s2
    p1 = jnp.where(small, s1, em1 / zs)
    p2 = jnp.where(small, s2, (p1 - 1.0) / zs)
    p3 = jnp.where(small, s3, (p2 - 0.5) / zs)
    return 1.0 + em1, p1, p2, p3


def phis(z):
    r"""(:math:`e^z`, :math:`\varphi_1`, :math:`\varphi_2`, :math:`\varphi_3`) at ``z`` from one ``expm1``.

    :math:`\varphi_{k+1}(z) = (\varphi_k(z) - 1/k!)/z` for :math:`|z| \ge 1/2`, the Taylor series of
    :math:`\varphi_3` and :math:`\varphi_k = 1/k! + z\varphi_{k+1}` below (docs/theory.md §3(B)); stable for large
    :math:`|z|` of either sign (overflow to inf for :math:`z \gtrsim 709`).
    """
    return _phis_em1(z, jnp.expm1(z))


def phis_from_half(z, em1_half):
    r"""(:math:`e^z, \varphi_1, \varphi_2, \varphi_3`) at ``z`` given :math:`e^{z/2} - 1`:
    :math:`e^z - 1 = (e^{z/2} - 1)(e^{z/2} + 1)` (no second ``expm1``); otherwise as :func:`phis`."""
    return _phis_em1(z, em1_half * (em1_half + 2.0))


def phi1(z):
    r""":math:`\varphi_1(z) = (e^z - 1)/z`, stable near 0 and for large :math:`|z|` (see :func:`phis`)."""
    return phis(z)[1]


Coefficients = Callable  # (g = (u, s), s_star, sigma) -> (alpha, beta), scalars


def mode_fields(w, lam, w_star):
    r""":math:`g = (u, s) = (\sum_i\lambda_iw_iw^*_i, \sum_i\lambda_iw_i^2)`."""
    return jnp.stack([jnp.sum(lam * w * w_star), jnp.sum(lam * w * w)])


def mode_rhs(coefficients: Coefficients, w, args):
    r""":math:`\dot w_i = -\lambda_i(\alpha(g)w_i + \beta(g)w^*_i)`; ``args = (lam, w_star, s_star, sigma)``."""
    lam, w_star, s_star, sigma = args
    a, b = coefficients(mode_fields(w, lam, w_star), s_star, sigma)
    return -lam * (a * w + b * w_star)


class ModeETD(dfx.AbstractAdaptiveSolver):
    r"""Exponential integrator of order 3 with an embedded order-2 error estimate (module doc).

    The term must be ``ODETerm(lambda t, w, args: mode_rhs(coefficients, w, args))`` with the same
    ``coefficients`` (diffrax wraps terms, so the solver carries the structure it exploits); ``args =
    (lam, w_star, s_star, sigma)``. ``rtol``/``atol`` set the Newton tolerance (use the controller's).
    """

    coefficients: Coefficients = eqx.field(static=True)
    rtol: jax.Array | float
    atol: jax.Array | float
    max_newton: int = eqx.field(static=True, default=8)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.LocalLinearInterpolation

    def order(self, terms):
        return 3

    def error_order(self, terms):
        return 3

    def init(self, terms, t0, t1, y0, args):
        g = jnp.zeros(2, jnp.result_type(y0))
        return jnp.zeros((), jnp.result_type(y0)), g, g  # (h_prev, g(t_prev), g(t_prev + h_prev/2)); h_prev = 0: none

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        lam, w_star, s_star, sigma = args
        coef = lambda g: jnp.stack(self.coefficients(g, s_star, sigma))  # noqa: E731
        h = t1 - t0
        w = y0
        lws = lam * w_star
        g0 = jnp.stack([lws @ w, (lam * w) @ w])
        a0, b0 = coef(g0)
        hp, g_a, g_b = solver_state
        r = jnp.where(hp > 0, h / jnp.where(hp > 0, hp, 1.0), 0.0)
        r = jnp.stack([0.5 * r, r])[:, None]
        pred = 2 * r * (r + 0.5) * g_a - 4 * r * (r + 1) * g_b + 2 * (r + 1) * (r + 0.5) * g0
        use = (hp > 0) & (r[1, 0] <= _EXTRAPOLATE) & jnp.all(jnp.isfinite(pred))
        x0 = jnp.where(use, pred, g0).reshape(-1)
        # the step's constants: the linear part at alpha of the predicted endpoint (module doc), its phi-functions
        ar = coef(x0[2:])[0]
        z = -lam * ar * h
        e_m, q1, q2, q3 = phis(0.5 * z)
        e, p1, p2, p3 = phis_from_half(z, e_m - 1.0)
        n0 = -lam * (a0 - ar) * w - lws * b0
        Am = e_m * w + 0.5 * h * (q1 - 1.5 * q2 + q3) * n0
        A1 = e * w + h * (p1 - 3.0 * p2 + 4.0 * p3) * n0
        Bmm, Bm1 = h * (q2 - q3), h * (0.5 * q3 - 0.25 * q2)
        B1m, B11 = h * (4.0 * p2 - 8.0 * p3), h * (4.0 * p3 - p2)
        # collocation: w_m = Am + Bmm N_m + Bm1 N_1, w_1 = A1 + B1m N_m + B11 N_1, N_m and N_1 affine in w_m, w_1

        def modes(p):
            """(w_m, w_1) per mode for p = (a_m, b_m, a_1, b_1): the 2x2 collocation system in closed form."""
            am, bm, a1, b1 = p[0], p[1], p[2], p[3]
            km, k1 = lam * (am - ar), lam * (a1 - ar)
            rm = Am - lws * (Bmm * bm + Bm1 * b1)
            r1 = A1 - lws * (B1m * bm + B11 * b1)
            m11, m12, m21, m22 = 1.0 + Bmm * km, Bm1 * k1, B1m * km, 1.0 + B11 * k1
            inv = 1.0 / (m11 * m22 - m12 * m21)
            return jnp.stack([(m22 * rm - m12 * r1) * inv, (m11 * r1 - m21 * rm) * inv])

        def coefficients(x):
            return jnp.concatenate([coef(x[:2]), coef(x[2:])])

        def evaluate(x):
            """Residual F(x) - x, its Jacobian, (w_m, w_1) and p: one pass over the modes (primal and the four
            tangents d(w_m, w_1)/dp_k, fused) and one matrix product for all twenty sums."""
            p = coefficients(x)
            V = modes(p)
            T = [jax.jvp(modes, (p,), (jnp.zeros(4, p.dtype).at[k].set(1.0),))[1] for k in range(4)]
            M = jnp.concatenate([V] + T)  # rows: wm, w1, (dwm_k, dw1_k) for k = 0..3
            W = jnp.stack([lws, lam * V[0], lam * V[1]], axis=1)
            G = M @ W  # (10, 3)
            F = jnp.stack([G[0, 0], G[0, 1], G[1, 0], G[1, 2]])
            JF = jnp.stack([jnp.stack([G[2 + 2 * k, 0], 2 * G[2 + 2 * k, 1], G[3 + 2 * k, 0], 2 * G[3 + 2 * k, 2]])
                            for k in range(4)], axis=1)
            J = JF @ jax.jacfwd(coefficients)(x) - jnp.eye(4, dtype=x.dtype)
            return F - x, J, V, p

        def converged(x, r):
            return jnp.all(jnp.abs(r) <= 1e-3 * (self.atol + self.rtol * jnp.abs(x)))

        def cond(c):
            k, x, r, *_ = c
            return (k == 0) | ((k <= self.max_newton) & ~converged(x, r) & jnp.all(jnp.isfinite(r)))

        def body(c):
            # iteration 0 evaluates the predictor; then Newton updates (residual and Jacobian traced once)
            k, x, r, J, V, p = c
            x = jnp.where(k > 0, x - jnp.linalg.solve(J, r), x)
            r, J, V, p = evaluate(x)
            return k + 1, x, r, J, V, p

        zero = jnp.zeros_like(x0)
        init = (0, x0, zero, jnp.eye(4, dtype=x0.dtype), jnp.zeros((2,) + w.shape, w.dtype), jnp.zeros(4, w.dtype))
        _, x, r, _, V, p = jax.lax.while_loop(cond, body, init)
        wm, w1 = V[0], V[1]
        nm = -lam * (p[0] - ar) * wm - lws * p[1]
        n1 = -lam * (p[2] - ar) * w1 - lws * p[3]
        err = h * (2.0 * p3 - p2) * (2.0 * n0 - 4.0 * nm + 2.0 * n1)
        ok = converged(x, r) & jnp.all(jnp.isfinite(r))
        err = jnp.where(ok & jnp.isfinite(w1), err, jnp.inf)  # elementwise: no extra pass over the modes
        return w1, err, dict(y0=y0, y1=w1), (h, g0, x[:2]), dfx.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


class StepBudget(dfx.AbstractAdaptiveStepSizeController):
    """An adaptive controller with a traced budget of step attempts and a floor on rejected steps (module doc)."""

    controller: dfx.AbstractAdaptiveStepSizeController
    max_steps: jax.Array | int

    @property
    def rtol(self):
        return self.controller.rtol

    @property
    def atol(self):
        return self.controller.atol

    @property
    def norm(self):
        return self.controller.norm

    def wrap(self, direction):
        return eqx.tree_at(lambda s: s.controller, self, self.controller.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        tnext, inner = self.controller.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return tnext, (inner, jnp.asarray(0), jnp.asarray(t1))

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        inner, n, t_end = controller_state
        keep, next_t0, next_t1, jump, inner, result = self.controller.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner)
        n = n + 1
        done = keep & (t1 >= t_end)
        ok = dfx.RESULTS.successful == result
        out_of_steps = ok & ~done & (n >= self.max_steps)
        result = dfx.RESULTS.where(out_of_steps, dfx.RESULTS.max_steps_reached, result)
        stuck = ok & ~keep & ((next_t1 - next_t0) <= 1e-13 * jnp.maximum(jnp.abs(next_t0), 1.0))
        result = dfx.RESULTS.where(stuck & ~out_of_steps, dfx.RESULTS.dt_min_reached, result)
        return keep, next_t0, next_t1, jump, (inner, n, t_end), result
