r"""What :func:`~phasedyn.theory.solve` and :func:`~phasedyn.theory.iterate` return, and how they fail.

:class:`Solution` holds the saved trajectory and, when a run stopped early (a watch of
:mod:`._watch` or a stop condition fired), where and why; :class:`SolveError` is a run that failed
(diverged, ran out of steps). ``trace_count`` counts compilations per system structure.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Mapping

import numpy as np

from .system import AbstractSystem as System

#: (system structure, kind of run, ...) -> number of traces (compilations)
_TRACES: collections.Counter = collections.Counter()


class SolveError(RuntimeError):
    """A solve that did not reach its final time (or left the finite range)."""


def trace_count(system: System | None = None) -> int:
    """Number of times a solve/iterate function was traced (compiled), for ``system`` or in total.

    Counted per system *structure* (its equations), so two spellings of one system share a count.
    """
    if system is None:
        return sum(_TRACES.values())
    return sum(v for (key, *_), v in _TRACES.items() if key == system._key)


@dataclasses.dataclass(frozen=True)
class Solution:
    r"""Result of :func:`solve` / :func:`iterate`.

    Attributes:
        system: the solved system.
        t: save times, shape ``(n_t,)`` (for maps :math:`t = \eta k`).
        y: states, shape ``(*batch, n_t, n_states)``; NaN at and after a member's stop.
        obs: observables, shape ``(*batch, n_t, n_observables)``; NaN where ``y`` is.
        y0, params: the packed inputs, shapes ``(*batch, n_states)``, ``(*batch, n_params)``.
        num_steps: solver steps taken per batch member (``(*batch,)``); for maps the map steps.
        steps: for maps, the recorded step indices ``k`` (``None`` for flows).
        stop_step: for maps, ``(*batch,)``: the first step whose state a watch rejected (``-1``: none).
        stop_time: ``(*batch,)``: the time of that step (maps, :math:`\eta k`) or the end of the solver step
            on which a stop condition first held (flows); NaN where the run did not stop.
        stop_reason: ``(*batch,)`` strings: the name of the watch or condition that stopped the member
            (``"diverged"`` for the built-in divergence watch of :func:`iterate`), ``""`` where none did.
        stop_detail: ``(*batch,)`` strings: that watch's own account of why (``""`` where none).
        watch: ``{name: final carry}`` of :func:`iterate`'s watches (through their ``summary``) or, for
            flows, ``{name: code}`` of each stop condition at the state where the member stopped.
        y_last: for maps, ``(*batch, n_states)``: the last accepted state (after ``steps`` steps, or the
            one before ``stop_step``).
    """

    system: System
    t: np.ndarray
    y: np.ndarray
    obs: np.ndarray
    y0: np.ndarray
    params: np.ndarray
    num_steps: np.ndarray
    steps: np.ndarray | None = None
    stop_step: np.ndarray | None = None
    stop_time: np.ndarray | None = None
    stop_reason: np.ndarray | None = None
    stop_detail: np.ndarray | None = None
    watch: Mapping[str, object] = dataclasses.field(default_factory=dict)
    y_last: np.ndarray | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        """A state or observable by name, shape ``(*batch, n_t)``."""
        if name in self.system.state_names:
            return self.y[..., self.system.state_names.index(name)]
        if name in self.system.observable_names:
            return self.obs[..., self.system.observable_names.index(name)]
        raise KeyError(f"{name!r} is neither a state {self.system.state_names} "
                       f"nor an observable {self.system.observable_names}")

    def as_dict(self) -> dict[str, np.ndarray]:
        """Every state and observable by name."""
        names = self.system.state_names + self.system.observable_names
        return {n: self[n] for n in names}


def _broadcast(system: System, y0, params) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    y0 = system.pack_state(y0)
    p = system.pack_params(params)
    batch = np.broadcast_shapes(y0.shape[:-1], p.shape[:-1])
    y0 = np.broadcast_to(y0, batch + y0.shape[-1:]).reshape(-1, y0.shape[-1])
    p = np.broadcast_to(p, batch + p.shape[-1:]).reshape(-1, p.shape[-1])
    return y0, p, batch


def _describe(system: System, i: int, y0: np.ndarray, p: np.ndarray, batch: tuple) -> str:
    where = f"batch member {np.unravel_index(i, batch) if batch else ()} " if batch else ""
    y0s = ", ".join(f"{n}={v:.6g}" for n, v in zip(system.state_names, y0[i]))
    ps = ", ".join(f"{n}={v:.6g}" for n, v in zip(system.param_names, p[i]))
    return f"{system.name}: {where}(y0: {y0s}; params: {ps})"
