r"""The shape every system shares (docs/theory.md §6): the verbs ``system``, ``params``, ``state``, ``solve``,
``predictions`` of :mod:`~phasedyn.theory.isotropic`, :mod:`~phasedyn.theory.powerlaw` and
:mod:`~phasedyn.theory.spiked`, and the one dispatch they solve through (:func:`evolve`).

A flow (:math:`\dot y = f(y; p)`: gradient flow, the online-SGD mean field) is integrated by
:func:`~phasedyn.theory.solve` (diffrax) at times ``ts`` or on a log grid up to ``t1``; an exact map
(:math:`y_{k+1} = F(y_k; p)`: population GD, SpecGD) is applied ``steps`` times by
:func:`~phasedyn.theory.iterate`, recording at ``record_steps`` (time :math:`t = \eta k`). The caller names
the horizon the way its optimizer counts it and gets one :class:`~phasedyn.theory.Solution` either way.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._solve import Solution, iterate, solve
from .problem import Problem
from .system import AbstractSystem


def evolve(system: AbstractSystem, y0, params, *, t1: float | None = None, ts=None, steps: int | None = None,
           record_steps=None, watches=None, stop_when=None, **opts) -> Solution:
    r"""Solve a flow or iterate a map, by ``system.kind``: the one verb for both (docs/theory.md §6).

    Flows take ``t1`` (log-spaced save grid) or ``ts`` and ``stop_when`` (diffrax events); maps take
    ``steps`` (and ``record_steps``, default a log grid) and ``watches``. Giving a map a time horizon, or a
    flow a step count, is a ``ValueError`` naming what the system needs. Other options go to
    :func:`~phasedyn.theory.solve` / :func:`~phasedyn.theory.iterate` unchanged.
    """
    if system.kind == "map":
        if steps is None or t1 is not None or ts is not None:
            raise ValueError(f"{system.name} is an exact map (population GD / SpecGD): give steps (an integer >= 1), "
                             "not t1 or ts")
        if stop_when is not None:
            raise ValueError(f"{system.name} is an exact map: stops are watches (watches=), not stop_when")
        return iterate(system, y0, params, steps, record_steps=record_steps, watches=watches, **opts)
    if steps is not None or record_steps is not None:
        raise ValueError(f"{system.name} is a flow: give t1 (final time > 0) or ts (save times), not steps")
    if watches is not None:
        raise ValueError(f"{system.name} is a flow: stops are conditions (stop_when=), not watches")
    return solve(system, y0, params, t1, ts=ts, stop_when=stop_when, **opts)


def check_kind(problem: Problem | None, kinds: Sequence[str], namespace: str) -> None:
    """Require a :class:`~phasedyn.theory.Problem` whose ``kind`` is one of ``kinds`` (``"custom"`` is allowed
    wherever its spectrum fits; the builders check the spectrum itself)."""
    if not isinstance(problem, Problem):
        raise ValueError(f"phasedyn.theory.{namespace} needs a Problem (e.g. phasedyn.theory.{namespace}_problem), "
                         f"got {type(problem).__name__}")
    if problem.kind not in (*kinds, "custom"):
        raise ValueError(f"phasedyn.theory.{namespace} needs a problem of kind {' or '.join(kinds)} (or custom), "
                         f"got kind {problem.kind!r}")


def weights(problem: Problem, w0=None) -> np.ndarray:
    """The start ``w0`` (``(..., d)``; leading axes a batch) or the problem's own ``w0``, as a float array."""
    w = np.asarray(problem.w0 if w0 is None else w0, float)
    if w.shape[-1:] != (problem.d,):
        raise ValueError(f"w0 must have last axis of length d = {problem.d}, got shape {w.shape}")
    return w
