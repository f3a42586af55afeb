r"""Exact per-mode gradient flow (stiff spectra, :math:`\lambda_1/\lambda_d = d^a`) by an exponential integrator.

Per mode, gradient flow reads :math:`\dot w_i = -\lambda_i(\alpha\,w_i + \beta\,w^*_i)` with
:math:`\nabla L = \alpha\Sigma w + \beta\Sigma w^*` from :func:`~phasedyn.theory.derive.derive_loss`
(:math:`\alpha = 12s - 4s^*`, :math:`\beta = -8u` for phase retrieval): each mode is *scalar affine*
given the global fields :math:`(u, s)`. Freezing :math:`(\alpha, \beta)` over a step, every mode is
solved exactly,

.. math:: w_i(t+h) = e^{-\lambda_i\alpha h}\,w_i - \lambda_i h\,\varphi_1(-\lambda_i\alpha h)\,\beta\,w^*_i,
          \qquad \varphi_1(z) = (e^z - 1)/z,

so the stiffness of the fast modes costs nothing and the step is limited only by how fast
:math:`(u(t), s(t))` change (in Phase III the step grows with :math:`t`, so reaching :math:`t \sim d^a`
takes few steps). docs/theory.md §3(B).

The scheme is :class:`~phasedyn.theory._etd.ModeETD`, a ``diffrax.AbstractSolver``: exponential
collocation at :math:`t, t + h/2, t + h` (order 4; the nonlinear remainder quadratic in time, the linear
part at the implicitly solved endpoint fields) with an embedded ETD2 error estimate, so diffrax does the
step control (``PIDController``, exponent 1/3), the saving (``SaveAt(ts)``, steps clipped to the save
times by ``ClipStepSizeController``: saved values are step endpoints, not interpolants) and reports
failures through its ``RESULTS``; :class:`~phasedyn.theory._etd.StepBudget` carries ``max_steps`` as a
traced value (new budgets, tolerances and spectra do not recompile). It replaced a hand-written loop (the
implicit-endpoint ETD2 with step doubling and Richardson extrapolation: three implicit solves of four
Newton iterations per step): at the same rtol it takes 1.7x the steps, each cheaper, for errors ~100x
smaller, and is 2-3x faster at equal accuracy (benchmarks/RESULTS.md, "bench_powerlaw_ode: diffrax solver").
diffrax offers no exponential integrators; this fills that gap for this one structure (the general
solver stays :func:`~phasedyn.theory.solve`).
"""

from __future__ import annotations

from functools import lru_cache

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import derive as D
from . import symbols as S
from .model import Model
from .validate import check_int, check_positive
from .devices import BatchSharding, Devices
from .blocks import BlockSystem
from .problem import Problem
from ._etd import ModeETD, StepBudget, mode_rhs, phi1 as _phi1  # noqa: F401  (_phi1: powerlaw.drive_modes)
from ._solve import Solution, SolveError, _TRACES, _result_message


@lru_cache(maxsize=16)
def _compiled(model: Model):
    """The jitted, vmapped solve for one model; tolerances, spectra, ``sigma`` and ``max_steps`` are traced."""
    coef = D.derive_loss(model.expr)
    f_ab = sp.lambdify((S.u, S.s, S.s_star, S.sigma), [coef.alpha, coef.beta], modules="jax")
    key = ("expint-modes", model.loss)

    def coefficients(g, s_star, sigma):
        a, b = f_ab(g[0], g[1], s_star, sigma)
        return a + 0 * g[0], b + 0 * g[0]

    term = dfx.ODETerm(lambda t, w, args: mode_rhs(coefficients, w, args))

    def one(w0, lam, w_star, sigma, ts, rtol, atol, max_steps):
        _TRACES[(key, "expint")] += 1
        s_star = jnp.sum(lam * w_star * w_star)
        pid = dfx.PIDController(rtol=rtol, atol=atol, safety=0.9, factormin=0.2, factormax=5.0)
        controller = StepBudget(dfx.ClipStepSizeController(pid, step_ts=ts), max_steps)
        saveat = dfx.SaveAt(subs=[dfx.SubSaveAt(ts=ts), dfx.SubSaveAt(t1=True, fn=lambda t, y, args: t)])
        sol = dfx.diffeqsolve(term, ModeETD(coefficients, rtol, atol), ts[0], ts[-1], jnp.minimum(1e-3, ts[1] - ts[0]),
                              w0, (lam, w_star, s_star, sigma), saveat=saveat, stepsize_controller=controller,
                              max_steps=None, throw=False)
        W, t_end = sol.ys
        return W, sol.result._value, sol.stats["num_steps"], t_end[0]

    return jax.jit(jax.vmap(one, in_axes=(0,) + (None,) * 7))


@lru_cache(maxsize=16)
def _observables(d: int, model: Model):
    """Jitted observables of a batch of per-mode states (rows), cached per (d, model)."""
    return jax.jit(jax.vmap(BlockSystem(d, "gf", model).observable_fn, in_axes=(0, None)))


def solve_modes(problem: Problem, ts, w0=None, *, rtol: float = 1e-8, atol: float = 1e-10,
                max_steps: int = 1_000_000, model: Model | str | sp.Expr | None = None,
                devices: Devices = None) -> tuple[Solution, np.ndarray]:
    r"""Exact per-mode gradient flow by the exponential integrator (see module doc).

    Returns ``(solution, w)``: a :class:`~phasedyn.theory.Solution` of the per-mode
    :class:`~phasedyn.theory.blocks.BlockSystem` (:math:`B = d`; states
    :math:`m_i = w_iw^*_i`, :math:`q_i = w_i^2`; observables ``u, s, u0, s0, u2, s2, loss, mse``) and the
    weights ``w`` of shape ``(*batch, n_t, d)``. ``w0`` (``(..., d)``) defaults to ``problem.w0``; its
    leading axes are a batch, sharded over ``devices`` (default: all visible; see :mod:`.devices`).
    ``model``: the per-sample loss the flow is derived from (default phase retrieval).
    """
    model = Model.coerce(model)
    rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, 1)
    ts = np.asarray(ts, float)
    if ts.ndim != 1 or ts.size < 2 or ts[0] != 0 or np.any(np.diff(ts) <= 0) or not np.all(np.isfinite(ts)):
        raise ValueError("ts must be a finite, strictly increasing 1-D array starting at 0")
    w0 = np.asarray(problem.w0 if w0 is None else w0, float)
    if w0.shape[-1] != problem.d or not np.all(np.isfinite(w0)):
        raise ValueError(f"w0 must be finite with last axis d = {problem.d}, got shape {w0.shape}")
    batch = w0.shape[:-1]
    fn = _compiled(model)
    w0f = w0.reshape(-1, problem.d)
    shard = BatchSharding.make(w0f.shape[0], devices)
    rep = lambda x: shard.replicate(np.asarray(x))  # noqa: E731
    out = fn(shard.shard(w0f), rep(problem.lam), rep(problem.w_star), rep(float(problem.sigma)), rep(ts), rep(rtol),
             rep(atol), rep(max_steps))
    W, result, nsteps, t_end = (shard.unpad(np.asarray(x)) for x in out)
    bad = np.flatnonzero(result != dfx.RESULTS.successful._value)
    if bad.size:
        i, code = int(bad[0]), int(result[bad[0]])
        why = (f"max_steps = {max_steps} reached" if code == dfx.RESULTS.max_steps_reached._value else
               f"{_result_message(code)} (the state or the Newton solve of the fields stayed non-finite)")
        raise SolveError(f"exact per-mode flow (exponential integrator), batch member {i}: {why}; stopped at t = "
                         f"{t_end[i]:.6g} of {ts[-1]:.6g} after {nsteps[i]} steps")
    system = BlockSystem(problem.d, "gf", model)
    d = problem.d
    y = np.empty(W.shape[:-1] + (2 * d,))  # per-mode states (m_i, q_i) = (w_i w*_i, w_i^2), filled in place
    np.multiply(W, problem.w_star, out=y[..., :d])
    np.multiply(W, W, out=y[..., d:])
    prm = system.pack_params({"eta": 0.0, "sigma": problem.sigma, "lambda": problem.lam,
                              "p": problem.w_star**2, "n": np.ones(d)})
    obs_fn = _observables(d, model)
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
