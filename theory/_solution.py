r"""What :func:`~phasedyn.theory.solve` and :func:`~phasedyn.theory.iterate` return, and how they fail.

:class:`Solution` holds the saved trajectory and, when a run stopped early (a watch of
:mod:`._watch` or a stop condition fired), where and why; :class:`SolveError` is a run that failed
(diverged, ran out of steps). ``trace_count`` counts compilations per system structure.
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
from typing import Any, Iterator, Mapping

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


@dataclasses.dataclass(frozen=True, repr=False)
class Solution(collections.abc.Mapping):
    r"""Result of :func:`solve` / :func:`iterate`.

    A read-only mapping from every state and observable name to its ``(*batch, n_t)`` array (``keys()``,
    ``items()``, ``values()``, ``in``, ``len``), which prints as a one-paragraph summary and converts to a labelled
    :class:`xarray.Dataset` (:meth:`to_xarray`).

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

    def __iter__(self) -> Iterator[str]:
        """The states' names, then the observables'."""
        return iter(tuple(self.system.state_names) + tuple(self.system.observable_names))

    def __len__(self) -> int:
        return len(self.system.state_names) + len(self.system.observable_names)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Every state and observable by name."""
        return dict(self.items())

    @property
    def batch(self) -> tuple[int, ...]:
        """The batch shape (``()`` for one solve)."""
        return tuple(self.y.shape[:-2])

    def __repr__(self) -> str:
        kind = "map" if self.steps is not None else "flow"
        n_t = self.t.shape[-1]
        span = f"t in [{self.t[0]:.4g}, {self.t[-1]:.4g}]" if n_t else "no save times"
        stopped = ""
        if self.stop_reason is not None:
            reasons = np.asarray(self.stop_reason).ravel()
            hit = reasons[reasons != ""]
            if hit.size:
                counts = collections.Counter(hit.tolist())
                stopped = "; stopped: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
        last = {k: np.asarray(v)[..., -1] for k, v in self.items()} if n_t else {}
        finals = ", ".join(f"{k}={_fmt(v)}" for k, v in last.items())
        return (f"Solution({self.system.name}: {kind}, batch {self.batch}, {n_t} saves, {span}; keys "
                f"{list(self)}; final {finals}; steps {int(np.max(self.num_steps, initial=0))} max{stopped})")

    def to_xarray(self) -> Any:
        """The solution as an :class:`xarray.Dataset`: each state and observable over ``(batch_0, ..., t)`` (the
        map's step indices ``k`` as coordinate ``step`` along ``t``), the inputs as ``y0_<state>`` and
        ``param_<name>`` over the batch, and ``num_steps``, ``stop_time`` and ``stop_reason`` where present."""
        import xarray as xr

        dims = tuple(f"batch_{i}" for i in range(len(self.batch)))
        data: dict[str, Any] = {k: ((*dims, "t"), np.asarray(v)) for k, v in self.items()}
        y0 = self.y0.reshape(self.batch + self.y0.shape[-1:])
        p = self.params.reshape(self.batch + self.params.shape[-1:])
        data.update({f"y0_{n}": (dims, y0[..., i]) for i, n in enumerate(self.system.state_names)})
        data.update({f"param_{n}": (dims, p[..., i]) for i, n in enumerate(self.system.param_names)})
        data["num_steps"] = (dims, np.asarray(self.num_steps).reshape(self.batch))
        for name in ("stop_time", "stop_reason", "stop_step"):
            value = getattr(self, name)
            if value is not None:
                data[name] = (dims, np.asarray(value).reshape(self.batch))
        coords: dict[str, Any] = {"t": np.asarray(self.t)}
        if self.steps is not None:
            coords["step"] = ("t", np.asarray(self.steps))
        return xr.Dataset(data, coords=coords, attrs={"system": self.system.name})


def _fmt(v: np.ndarray) -> str:
    """A final value: the number for one member, ``[min, max]`` over a batch."""
    v = np.asarray(v, dtype=np.float64)
    if v.size == 1:
        return f"{float(v.ravel()[0]):.4g}"
    return f"[{np.nanmin(v):.4g}, {np.nanmax(v):.4g}]" if np.isfinite(v).any() else "nan"


def _broadcast(system: System, y0, params) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    y0 = system.pack_state(y0)
    p = system.pack_params(params)
    batch = np.broadcast_shapes(y0.shape[:-1], p.shape[:-1])
    y0 = np.broadcast_to(y0, batch + y0.shape[-1:]).reshape(-1, y0.shape[-1])
    p = np.broadcast_to(p, batch + p.shape[-1:]).reshape(-1, p.shape[-1])
    return y0, p, batch


def _describe(system: System, i: int, y0: np.ndarray, p: np.ndarray, batch: tuple) -> str:
    where = f"batch member {tuple(int(k) for k in np.unravel_index(i, batch))} " if batch else ""
    return f"{system.name}: {where}(y0: {_named(system.state_names, y0[i])}; params: {_named(system.param_names, p[i])})"


def _named(names: tuple[str, ...], values: np.ndarray, most: int = 8) -> str:
    """``name=value`` pairs, the first ``most`` of a long vector (a per-mode system has thousands) and a count."""
    pairs = [f"{n}={v:.6g}" for n, v in zip(names[:most], values[:most])]
    return ", ".join(pairs) + (f", ... ({len(names)} in all)" if len(names) > most else "")
