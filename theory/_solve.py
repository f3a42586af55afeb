r"""Solving a :class:`~phasedyn.theory.system.System`: diffrax for flows, a compiled loop for maps.

* :func:`solve` integrates :math:`\dot y = f(y; p)` with diffrax (Tsit5 by default; ``"kvaerno5"``
  for stiff systems), PID step-size control at user tolerances, saving on a log-spaced grid or at
  user times. ``y0`` and ``params`` are arrays (or ``{name: value}`` dicts) with optional leading
  batch axes: the batch runs in one ``jax.vmap`` call, and new values never recompile.
* Devices: the (flattened) batch axis is sharded over a 1-D :class:`jax.sharding.Mesh` of the
  visible devices (:mod:`.devices`; padded to a multiple of the device count, padding dropped) and
  ``jax.jit`` propagates the sharding, so each device solves its share of a seed or parameter sweep.
* :func:`iterate` applies an exact map :math:`y_{k+1} = F(y_k; p)` (population GD) and records on
  a log-spaced step grid, time :math:`t = \eta k`.

A failed solve (``max_steps`` reached, a non-finite state, the state beyond ``blowup``) raises
:class:`SolveError` naming the batch member, the reason and the time reached; it never returns
silent garbage.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Mapping

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .devices import BatchSharding, Devices
from .validate import check_choice, check_int, check_positive
from .system import AbstractSystem as System

#: solver name → diffrax solver class. Tsit5/Dopri5/Dopri8 are explicit; Kvaerno5 is an implicit
#: (L-stable ESDIRK) method for stiff systems.
SOLVERS: dict[str, type] = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno5": diffrax.Kvaerno5,
}

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


def log_grid(t1: float, n: int = 200, t_min: float | None = None) -> np.ndarray:
    r"""Save grid :math:`\{0\} \cup` ``geomspace(t_min, t1, n - 1)``; ``t_min`` defaults to ``t1·1e-4``."""
    t1 = check_positive("t1", t1)
    n = check_int("n", n, 2)
    t_min = t1 * 1e-4 if t_min is None else check_positive("t_min", t_min)
    if t_min >= t1:
        raise ValueError(f"t_min must be < t1 = {t1}, got {t_min}")
    return np.concatenate([[0.0], np.geomspace(t_min, t1, n - 1)])


@dataclasses.dataclass(frozen=True)
class Solution:
    r"""Result of :func:`solve` / :func:`iterate`.

    Attributes:
        system: the solved system.
        t: save times, shape ``(n_t,)`` (for maps :math:`t = \eta k`).
        y: states, shape ``(*batch, n_t, n_states)``.
        obs: observables, shape ``(*batch, n_t, n_observables)``.
        y0, params: the packed inputs, shapes ``(*batch, n_states)``, ``(*batch, n_params)``.
        num_steps: solver steps taken per batch member (``(*batch,)``); for maps the map steps.
        steps: for maps, the recorded step indices ``k`` (``None`` for flows).
    """

    system: System
    t: np.ndarray
    y: np.ndarray
    obs: np.ndarray
    y0: np.ndarray
    params: np.ndarray
    num_steps: np.ndarray
    steps: np.ndarray | None = None

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


# ----------------------------------------------------------------------------- flows
#: compiled solve/iterate functions keyed by (system structure, static options): two System objects
#: with the same equations share one compilation, however they were built
_COMPILED: dict[tuple, object] = {}


def _flow_solver(system: System, solver: str, rtol: float, atol: float, max_steps: int, blowup: float):
    """The jitted, vmapped solve, cached on the system's *structure* and the static options."""
    key = (system._key, "solve", solver, rtol, atol, max_steps, blowup)
    if key not in _COMPILED:
        _COMPILED[key] = _build_flow_solver(system, solver, rtol, atol, max_steps, blowup)
    return _COMPILED[key]


def _build_flow_solver(system: System, solver: str, rtol: float, atol: float, max_steps: int, blowup: float):
    key = system._key
    field = system.vector_field
    obs_fn = system.observable_fn

    def one(y0, p, ts):
        _TRACES[(key, "solve", solver)] += 1
        event = diffrax.Event(lambda t, y, args, **kw: ~jnp.all(jnp.abs(y) < blowup))
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            SOLVERS[solver](),
            t0=ts[0],
            t1=ts[-1],
            dt0=None,
            y0=y0,
            args=p,
            saveat=diffrax.SaveAt(ts=ts, t1=True),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            event=event,
            max_steps=max_steps,
            throw=False,
        )
        ys = sol.ys[:-1]
        obs = jax.vmap(obs_fn, in_axes=(0, None))(ys, p)
        # after an event diffrax writes the event time/state into the next save slot and fills the
        # rest with inf: the last finite saved time is how far the solve got
        saved = sol.ts[:-1]
        reached = jnp.max(jnp.where(jnp.isfinite(saved), saved, -jnp.inf))
        return ys, obs, sol.result._value, sol.stats["num_steps"], reached

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def solve(
    system: System,
    y0: Mapping[str, object] | object,
    params: Mapping[str, object] | object,
    t1: float | None = None,
    *,
    ts: object | None = None,
    n_save: int = 200,
    solver: str = "tsit5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    blowup: float = 1e8,
    devices: Devices = None,
) -> Solution:
    r"""Integrate a flow system :math:`\dot y = f(y; p)` from :math:`t = 0`.

    Args:
        system: a ``kind="flow"`` :class:`System`.
        y0: initial state(s), ``(*batch, n_states)`` array or ``{name: value}``.
        params: parameters, ``(*batch, n_params)`` array or ``{name: value}``; broadcast against ``y0``.
        t1: final time; saves on :func:`log_grid` ``(t1, n_save)`` unless ``ts`` is given.
        ts: explicit increasing save times starting at 0 (overrides ``t1``/``n_save``).
        solver: one of :data:`SOLVERS` (``"kvaerno5"`` for stiff systems).
        rtol, atol: PID controller tolerances.
        max_steps: diffrax's step budget; exceeding it raises :class:`SolveError`.
        blowup: the solve stops and raises when any :math:`|y_i|` exceeds this.
        devices: where the batch runs: ``None`` or ``"all"`` (default: every visible device), one
            :class:`jax.Device`, or a sequence of them; the batch is sharded over (at most
            ``batch size`` of) them. Results do not depend on it.

    Batching: leading axes of ``y0``/``params`` run in one vmapped call (each member adapts its own
    steps, the batch runs as long as its slowest member).
    """
    if system.kind != "flow":
        raise ValueError(f"{system.name} is a map (kind='map'): use iterate(), not solve()")
    check_choice("solver", solver, tuple(SOLVERS))
    rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, 1)
    blowup = check_positive("blowup", blowup)
    if ts is None:
        if t1 is None:
            raise ValueError("give t1 (final time) or ts (save times)")
        ts = log_grid(t1, n_save)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be a finite, strictly increasing 1-D array of >= 2 save times")
    if ts[0] != 0:
        raise ValueError(f"ts must start at 0 (y0 is the state at t = 0), got ts[0] = {ts[0]:g}")
    y0f, pf, batch = _broadcast(system, y0, params)
    fn = _flow_solver(system, solver, rtol, atol, max_steps, blowup)
    shard = BatchSharding.make(y0f.shape[0], devices)
    out = fn(shard.shard(y0f), shard.shard(pf), shard.replicate(ts))
    ys, obs, result, nsteps, t_end = (np.array(shard.unpad(np.asarray(x))) for x in out)
    for i in np.flatnonzero(result != diffrax.RESULTS.successful._value):
        who = _describe(system, i, y0f, pf, batch)
        if not np.isfinite(t_end[i]):
            t_end[i] = ts[0]
        code = int(result[i])
        if code == diffrax.RESULTS.event_occurred._value:
            reason = f"the state blew up (some |y| > blowup = {blowup:g}, or non-finite) near t = {t_end[i]:.6g}"
        elif code == diffrax.RESULTS.max_steps_reached._value:
            finite = ys[i][np.all(np.isfinite(ys[i]), axis=-1)]
            y_max = float(np.max(np.abs(finite))) if finite.size else float("nan")
            y_in = float(np.max(np.abs(y0f[i])))
            hint = (f"; the largest |y| reached is {y_max:.3g} against {y_in:.3g} at t = 0: the solution may blow "
                    "up in finite time" if y_max > 100 * max(y_in, 1e-300) else "")
            reason = (f"max_steps = {max_steps} reached before t = {t_end[i]:.6g} of t1 = {ts[-1]:.6g}{hint}; raise "
                      "max_steps, loosen rtol/atol, or use solver='kvaerno5' if the system is stiff")
        else:
            reason = f"diffrax stopped at t = {t_end[i]:.6g} of t1 = {ts[-1]:.6g}: {_result_message(code)}"
        raise SolveError(f"{who}: {reason}")
    if not np.all(np.isfinite(ys)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(ys), axis=(1, 2)))[0])
        raise SolveError(f"{_describe(system, bad, y0f, pf, batch)}: non-finite state in the saved trajectory")
    return Solution(
        system, ts, ys.reshape(batch + ys.shape[1:]), obs.reshape(batch + obs.shape[1:]),
        y0f.reshape(batch + y0f.shape[-1:]), pf.reshape(batch + pf.shape[-1:]), nsteps.reshape(batch),
    )


def _result_message(code: int) -> str:
    for name in ("dt_min_reached", "nonlinear_divergence", "nonlinear_max_steps_reached", "singular"):
        item = getattr(diffrax.RESULTS, name, None)
        if item is not None and item._value == code:
            return name.replace("_", " ")
    return f"diffrax result code {code}"


# ----------------------------------------------------------------------------- maps
def _map_iterator(system: System):
    """The jitted, vmapped map iteration, cached on the system's structure."""
    key = (system._key, "iterate")
    if key not in _COMPILED:
        _COMPILED[key] = _build_map_iterator(system)
    return _COMPILED[key]


def _build_map_iterator(system: System):
    key = system._key
    step = system.vector_field
    obs_fn = system.observable_fn

    def one(y0, p, deltas):
        _TRACES[(key, "iterate")] += 1

        def interval(y, n):
            y = jax.lax.fori_loop(0, n, lambda k, yk: step(0.0, yk, p), y)
            return y, y

        _, ys = jax.lax.scan(interval, y0, deltas)
        ys = jnp.concatenate([y0[None], ys], axis=0)
        return ys, jax.vmap(obs_fn, in_axes=(0, None))(ys, p)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def step_grid(steps: int, n: int = 200) -> np.ndarray:
    """Log-spaced integer step grid containing 0, 1 and ``steps`` (sorted, unique)."""
    steps = check_int("steps", steps, 1)
    n = check_int("n", n, 2)
    grid = np.unique(np.concatenate([[0, 1, steps], np.round(np.geomspace(1, steps, n - 1))]).astype(np.int64))
    return grid


def iterate(
    system: System,
    y0: Mapping[str, object] | object,
    params: Mapping[str, object] | object,
    steps: int,
    *,
    record_steps: object | None = None,
    n_record: int = 200,
    blowup: float = 1e8,
    devices: Devices = None,
) -> Solution:
    r"""Apply a map system :math:`y_{k+1} = F(y_k; p)` ``steps`` times; record at ``record_steps``.

    Time is :math:`t = \eta k` (``params`` must contain ``eta``). Batching as in :func:`solve`. A
    state that leaves the finite range or exceeds ``blowup`` raises :class:`SolveError` with the
    first recorded step where it did. ``devices``: as in :func:`solve`.
    """
    if system.kind != "map":
        raise ValueError(f"{system.name} is a flow (kind='flow'): use solve(), not iterate()")
    if "eta" not in system.param_names:
        raise ValueError(f"{system.name}: a map needs the parameter 'eta' to define time t = eta*k")
    blowup = check_positive("blowup", blowup)
    grid = step_grid(steps, n_record) if record_steps is None else np.asarray(record_steps, dtype=np.int64)
    if grid.ndim != 1 or grid[0] != 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("record_steps must be strictly increasing integers starting at 0")
    y0f, pf, batch = _broadcast(system, y0, params)
    shard = BatchSharding.make(y0f.shape[0], devices)
    out = _map_iterator(system)(shard.shard(y0f), shard.shard(pf), shard.replicate(np.diff(grid)))
    ys, obs = (shard.unpad(np.asarray(x)) for x in out)
    bad = ~np.all(np.isfinite(ys) & (np.abs(ys) < blowup), axis=-1)
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise SolveError(
            f"{_describe(system, i, y0f, pf, batch)}: the iterated map diverged (non-finite or |y| > {blowup:g}) "
            f"by step {grid[j]} (t = {grid[j] * pf[i, system.param_names.index('eta')]:.6g}); decrease eta"
        )
    eta = pf[:, system.param_names.index("eta")]
    if np.ptp(eta) > 0:
        raise ValueError("iterate: all batch members must share one eta so that they share a time grid")
    return Solution(
        system, grid * eta[0], ys.reshape(batch + ys.shape[1:]), obs.reshape(batch + obs.shape[1:]),
        y0f.reshape(batch + y0f.shape[-1:]), pf.reshape(batch + pf.shape[-1:]),
        np.full(batch, grid[-1]), steps=grid,
    )
