r"""Per-step watches of :func:`~phasedyn.theory.iterate`: statistics read off every step, and stops.

A map :math:`y_{k+1} = F(y_k; p)` is iterated inside one compiled loop; a :class:`Watch` sees every state
there (not only the recorded ones). The protocol (an :class:`equinox.Module`; array fields are traced, so
new values never recompile, other fields are part of the compiled structure):

* ``init(y0, p) -> carry``: the carry at step 0 (any pytree of arrays);
* ``update(carry, k, y, p) -> carry``: fold in the state :math:`y = y_k` of step ``k`` (``k = 1..steps``);
* ``stop(carry) -> bool``: ``True`` rejects that state and freezes the run from that step on (the loop
  keeps its static length: the state and every carry stay as they were, ``jnp.where``; the watch that
  stopped it keeps the carry that fired, so that it can say why);
* ``summary(carry, steps)`` (host side, numpy, leading batch axis): what ``Solution.watch[name]`` holds;
* ``explain(carry, i) -> str``: why member ``i`` was stopped (``Solution.stop_detail``).

Built in: :class:`Diverged` (non-finite or :math:`|y| >` blowup; :func:`iterate` always runs it first).
:class:`StopWhen` turns a :class:`Condition` of the state alone (``condition(y, p) -> code``, 0 = fine)
into a stopping watch; the same condition stops a flow in :func:`~phasedyn.theory.solve` (``stop_when=``,
a diffrax event). :class:`PeakRatio` reads the spiked system's :math:`|b|/|a|` statistics
(docs/theory.md §3C) off every step.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .system import AbstractSystem as System

#: relative margin by which a ratio must exceed the running maximum to count as a new peak (:class:`PeakRatio`)
PEAK_RTOL = 1e-12


def _array(x) -> jax.Array:
    return jnp.asarray(x, dtype=jnp.float64)


class Watch(eqx.Module):
    """A per-step watch (see the module doc for the protocol). Subclasses define ``init`` and ``update``."""

    def init(self, y0, p):
        raise NotImplementedError

    def update(self, carry, k, y, p):
        raise NotImplementedError

    def stop(self, carry) -> jax.Array:
        return jnp.zeros((), bool)

    def summary(self, carry, steps: int):
        return carry

    def explain(self, carry, i: int) -> str:
        return ""


class Diverged(Watch):
    r"""Stops at the first state that is non-finite or has some :math:`|y_j| \ge` ``blowup``."""

    blowup: jax.Array = eqx.field(converter=_array)

    def _out(self, y):
        return ~jnp.all(jnp.isfinite(y) & (jnp.abs(y) < self.blowup))

    def init(self, y0, p):
        return self._out(y0)

    def update(self, carry, k, y, p):
        return self._out(y)

    def stop(self, carry):
        return carry

    def explain(self, carry, i: int) -> str:
        return f"non-finite state or some |y| >= blowup = {float(self.blowup):g}"


class Condition(eqx.Module):
    """A condition on one state: ``condition(y, p)`` returns an integer code, 0 where the state is fine.

    ``describe(code)`` says in words what a non-zero code means. Used by :class:`StopWhen` (maps) and by
    ``solve(..., stop_when=...)`` (flows).
    """

    def __call__(self, y, p) -> jax.Array:
        raise NotImplementedError

    def describe(self, code: int) -> str:
        return f"condition code {code}"


class StopWhen(Watch):
    """Stops a map at the first state where ``condition`` returns a non-zero code; the carry is that code."""

    condition: Condition

    def init(self, y0, p):
        return self.condition(y0, p)

    def update(self, carry, k, y, p):
        return self.condition(y, p)

    def stop(self, carry):
        return carry != 0

    def explain(self, carry, i: int) -> str:
        return self.condition.describe(int(np.asarray(carry)[i]))


class PeakRatio(Watch):
    r"""The spiked system's alignment statistics, every step seen (docs/theory.md §3C; states ``a, b, c``).

    Carry ``(ratio0, peak_ratio, peak_step, last_above)``: :math:`r_0 = |b_0|/|a_0|`; the running maximum of
    :math:`|b_k|/|a_k|` (a new maximum must beat the old by the relative margin :data:`PEAK_RTOL`, so that
    round-off does not move the peak) and the first step reaching it; the last step with
    :math:`\max(|b_k|, |c_k|) >` ``tol`` :math:`\cdot\sqrt m` (:math:`\sqrt m = 1` without a parameter ``m``;
    ``-1``: none). ``summary`` adds ``amplification = peak_ratio / ratio0`` and ``steps_to_tol``, the first
    step from which every later state up to ``steps`` is within tolerance (``-1``: still above at the end).
    Build it with :meth:`of`.
    """

    ia: int = eqx.field(static=True)
    ib: int = eqx.field(static=True)
    ic: int = eqx.field(static=True)
    im: int | None = eqx.field(static=True)
    tol: jax.Array = eqx.field(converter=_array)

    @classmethod
    def of(cls, system: System, tol: float = 0.05) -> "PeakRatio":
        """The watch for a spiked system (states ``a, b, c``; optional parameter ``m``)."""
        ia, ib, ic = (system.state_names.index(n) for n in ("a", "b", "c"))
        im = system.param_names.index("m") if "m" in system.param_names else None
        return cls(ia, ib, ic, im, tol)

    def _ratio(self, y):
        return jnp.abs(y[self.ib]) / jnp.abs(y[self.ia])

    def _above(self, y, p):
        scale = jnp.sqrt(p[self.im]) if self.im is not None else jnp.ones((), y.dtype)
        return jnp.maximum(jnp.abs(y[self.ib]), jnp.abs(y[self.ic])) > self.tol * scale

    def init(self, y0, p):
        r0 = self._ratio(y0)
        zero = jnp.zeros((), jnp.int64)
        return r0, r0, zero, jnp.where(self._above(y0, p), zero, zero - 1)

    def update(self, carry, k, y, p):
        r0, best, kbest, last_above = carry
        r = self._ratio(y)
        better = r > best * (1 + PEAK_RTOL)
        return (r0, jnp.where(better, r, best), jnp.where(better, k, kbest),
                jnp.where(self._above(y, p), k, last_above))

    def summary(self, carry, steps: int) -> dict[str, np.ndarray]:
        r0, best, kbest, last_above = (np.asarray(x) for x in carry)
        with np.errstate(divide="ignore", invalid="ignore"):
            amp = best / r0
        return {"ratio0": r0, "peak_ratio": best, "peak_step": kbest, "amplification": amp,
                "steps_to_tol": np.where(last_above >= steps, -1, last_above + 1)}
