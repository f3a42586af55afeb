r"""Where a truncated moment hierarchy stops being valid, from its state alone (docs/theory.md §3B).

The hierarchy's states are :math:`u_k = \sum_i\lambda_i^k w_iw^*_i` and :math:`s_k = \sum_i\lambda_i^k w_i^2`,
:math:`k = 0..K` (:mod:`.hierarchy`). Whatever :math:`w` is, :math:`(s_k)` is the moment sequence of the positive
measure :math:`\mu = \sum_i w_i^2\delta_{\lambda_i}` on :math:`[0, \lambda_{\max}]`, so these hold *exactly*
(for online SGD with :math:`w_i^2 \to \mathbb E w_i^2`, :math:`w_i \to \mathbb E w_i`, by Jensen):

1. :math:`s_k \ge 0`;
2. :math:`s_{k+1} \le \lambda_{\max}s_k` (:math:`\lambda_i \le \lambda_{\max}` under :math:`\mu`);
3. log-convexity :math:`s_k^2 \le s_{k-1}s_{k+1}` (Cauchy–Schwarz on :math:`\lambda^{(k\mp1)/2}w`);
4. Cauchy–Schwarz with the target, :math:`u_k^2 \le s_k\,s^*_k`, :math:`s^*_k = \sum_i\lambda_i^kw^{*2}_i`.

(3) with (1)-(2) says the ratios :math:`s_{k+1}/s_k` are non-decreasing and at most :math:`\lambda_{\max}`. The full
Hankel conditions (:math:`[s_{j+l}]` and its localising matrices positive semi-definite) are sharper, but moment
Hankel matrices are exponentially ill-conditioned, so in float64 the exact system's own matrices come out
indefinite (d = 300, a = 2, exact flow to t = 2e4: the 9x9 :math:`[s_{j+l}]` has condition number 9e21 at t = 0
and a negative eigenvalue at 175 of 201 saved times): they would raise false alarms, these do not. Each condition is tested as a relative excess

.. math:: e = (\mathrm{lhs} - \mathrm{rhs})/|\mathrm{rhs}| > \mathrm{rtol}
          \qquad(\text{for (1)}: e = -s_k/(\lambda_{\max}^k s_0)),

with ``rtol`` (default :data:`RTOL` = 1e-6) far above the round-off of the exact moments (tests: the exact per-mode
moments keep every excess :math:`\le 10^{-12}` over Phases I-III) and far below what a closure error produces
once it has spread. Below 1e-6 the top orders show transients early in Phase I (measured up to 1e-8 at k = 9-13,
d = 400, a = 2, K = 12, gradient flow; 1e-10 for GD at d = 2000, a = 1.5, K = 16) that recede while u, s agree
with the exact system to 1e-13; the systematic loss grows by orders of magnitude within a short time, so the
detected time hardly depends on ``rtol`` in [1e-9, 1e-6] otherwise (GD, d = 2000: step 1100 at 1e-9, 1116 at 1e-6). a violation means the state is no moment sequence of any weights, so the truncated
hierarchy no longer describes *any* :math:`w` and its continuation is not to be trusted (in practice it blows up
in finite time some steps later). :class:`MomentValidity` is a :class:`~phasedyn.theory._watch.Condition`: a
:class:`~phasedyn.theory._watch.StopWhen` watch for maps (GD) and a ``stop_when`` diffrax event for flows.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._watch import Condition
from .system import AbstractSystem as System

#: default relative tolerance of :class:`MomentValidity` (see the module doc)
RTOL = 1e-6

#: the conditions, in the order of their codes
CONDITIONS = (
    "positivity s_k >= 0",
    "support s_(k+1) <= lambda_max s_k",
    "log-convexity s_k^2 <= s_(k-1) s_(k+1)",
    "Cauchy-Schwarz u_k^2 <= s_k s*_k",
)


def _excess(lhs, rhs):
    """(lhs - rhs)/|rhs|, +inf where rhs = 0 < lhs and -inf where rhs = 0 >= lhs."""
    den = jnp.abs(rhs)
    safe = jnp.where(den > 0, den, 1.0)
    return jnp.where(den > 0, (lhs - rhs) / safe, jnp.where(lhs > rhs, jnp.inf, -jnp.inf))


class MomentValidity(Condition):
    r"""The four moment conditions of the module doc on a hierarchy state (code 0: all hold).

    A non-zero code is ``1 + family·(K+1) + k`` for the first failing condition (families in the order of
    :data:`CONDITIONS`, then the lowest ``k``). Build it with :meth:`of`.
    """

    iu: tuple[int, ...] = eqx.field(static=True)
    i_s: tuple[int, ...] = eqx.field(static=True)
    i_star: tuple[int, ...] = eqx.field(static=True)
    lam_max: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, jnp.float64))
    rtol: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, jnp.float64))

    @classmethod
    def of(cls, system: System, lam_max: float, rtol: float = RTOL) -> "MomentValidity":
        """For a :func:`~phasedyn.theory.hierarchy_system` (states ``u_k, s_k``, parameters ``s_star_k``)."""
        K = sum(n.startswith("u_") for n in system.state_names) - 1
        idx = lambda names, fmt: tuple(names.index(fmt.format(k)) for k in range(K + 1))  # noqa: E731
        return cls(idx(system.state_names, "u_{}"), idx(system.state_names, "s_{}"),
                   idx(system.param_names, "s_star_{}"), lam_max, rtol)

    @property
    def K(self) -> int:
        return len(self.iu) - 1

    def excess(self, y, p) -> jax.Array:
        """Relative excess of each condition, ``(4, K+1)`` (``-inf`` where a condition has no order ``k``)."""
        u, s, s_star = y[jnp.array(self.iu)], y[jnp.array(self.i_s)], p[jnp.array(self.i_star)]
        lam_k = self.lam_max ** jnp.arange(self.K + 1, dtype=s.dtype)
        none = jnp.full((1,), -jnp.inf, s.dtype)
        positivity = -s / (lam_k * jnp.abs(s[0]))
        support = jnp.concatenate([_excess(s[1:], self.lam_max * s[:-1]), none])
        logconv = jnp.concatenate([none, _excess(s[1:-1] ** 2, s[:-2] * s[2:]), none]) if self.K > 1 else \
            jnp.full((self.K + 1,), -jnp.inf, s.dtype)
        cauchy = _excess(u**2, s * s_star)
        return jnp.stack([positivity, support, logconv, cauchy])

    def __call__(self, y, p) -> jax.Array:
        bad = (self.excess(y, p) > self.rtol).ravel()
        return jnp.where(jnp.any(bad), jnp.argmax(bad) + 1, 0).astype(jnp.int64)

    def describe(self, code: int) -> str:
        if code <= 0:
            return ""
        family, k = divmod(int(code) - 1, self.K + 1)
        return f"{CONDITIONS[family]} fails at k = {k} (relative tolerance {float(self.rtol):g})"
