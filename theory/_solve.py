r"""Solving a :class:`~phasedyn.theory.system.System`: diffrax for flows, a compiled loop for maps.

* :func:`solve` integrates :math:`\dot y = f(y; p)` with diffrax (Tsit5 by default; ``"kvaerno5"``
  for stiff systems), PID step-size control at user tolerances, saving on a log-spaced grid or at
  user times. ``y0`` and ``params`` are arrays (or ``{name: value}`` dicts) with optional leading
  batch axes: the batch runs in one ``jax.vmap`` call, and new values never recompile.
  ``stop_when={name: condition}`` (:class:`~phasedyn.theory._watch.Condition`) ends a member's solve,
  without error, at the end of the first solver step where a condition holds (a diffrax event).
* Devices: the (flattened) batch axis is sharded over a 1-D :class:`jax.sharding.Mesh` of the
  visible devices (:mod:`.devices`; padded to a multiple of the device count, padding dropped) and
  ``jax.jit`` propagates the sharding, so each device solves its share of a seed or parameter sweep.
* :func:`iterate` applies an exact map :math:`y_{k+1} = F(y_k; p)` (population GD) in one compiled loop
  that shows every step to its watches (:mod:`._watch`: statistics and stops, divergence built in) and
  records on a log-spaced step grid, time :math:`t = \eta k`.

A failed solve (``max_steps`` reached, a non-finite state, the state beyond ``blowup``) raises
:class:`SolveError` naming the batch member, the reason and the time reached; it never returns
silent garbage. A stop (a watch or condition that fired) is not a failure: the member's saved states
from there on are NaN and :class:`Solution` says where and why.
"""

from __future__ import annotations

from typing import Mapping

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._solution import _TRACES, Solution, SolveError, _broadcast, _describe, trace_count
from ._watch import Condition, Diverged, Watch
from .devices import BatchSharding, Devices
from .grid import step_grid  # noqa: F401  (re-exported: the one step grid, numpy only)
from .validate import check_choice, check_int, check_positive
from .system import AbstractSystem as System

__all__ = ["SOLVERS", "Solution", "SolveError", "iterate", "log_grid", "solve", "step_grid", "trace_count",
           "_TRACES"]

#: solver name → diffrax solver class. Tsit5/Dopri5/Dopri8 are explicit; Kvaerno5 is an implicit
#: (L-stable ESDIRK) method for stiff systems.
SOLVERS: dict[str, type] = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno5": diffrax.Kvaerno5,
}


def log_grid(t1: float, n: int = 200, t_min: float | None = None) -> np.ndarray:
    r"""Save grid :math:`\{0\} \cup` ``geomspace(t_min, t1, n - 1)``; ``t_min`` defaults to ``t1·1e-4``. It always
    ends at ``t1``: ``n = 2`` is :math:`\{0, t_1\}` (``geomspace`` of one point would be ``t_min``)."""
    t1 = check_positive("t1", t1)
    n = check_int("n", n, 2)
    t_min = t1 * 1e-4 if t_min is None else check_positive("t_min", t_min)
    if t_min >= t1:
        raise ValueError(f"t_min must be < t1 = {t1}, got {t_min}")
    if n == 2:
        return np.array([0.0, t1])
    return np.concatenate([[0.0], np.geomspace(t_min, t1, n - 1)])


def _checked_names(what: str, items: Mapping | None, kind: type, reserved: str) -> dict:
    items = dict(items or {})
    for name, item in items.items():
        if not isinstance(item, kind):
            raise ValueError(f"{what}[{name!r}] must be a {kind.__name__}, got {type(item).__name__}")
        if name == reserved:
            raise ValueError(f"{what}: the name {reserved!r} is reserved for the built-in divergence check")
    return items


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

    def one(y0, p, ts, conditions):
        _TRACES[(key, "solve", solver)] += 1
        tests = [lambda t, y, args, **kw: ~jnp.all(jnp.abs(y) < blowup)]
        tests += [lambda t, y, args, c=c, **kw: c(y, args) != 0 for c in conditions]
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
            event=diffrax.Event(tuple(tests)),
            max_steps=max_steps,
            throw=False,
        )
        ys = sol.ys[:-1]
        obs = jax.vmap(obs_fn, in_axes=(0, None))(ys, p)
        # after an event diffrax writes the event time/state into the next save slot and fills the
        # rest with inf: the last finite saved time is how far the solve got
        saved = sol.ts[:-1]
        reached = jnp.max(jnp.where(jnp.isfinite(saved), saved, -jnp.inf))
        y_end = ys[jnp.argmax(saved >= reached)]  # the state where it stopped (the event's slot) or at ts[-1]
        codes = jnp.stack([c(y_end, p) for c in conditions]) if conditions else jnp.zeros((0,), jnp.int64)
        return (ys, obs, sol.result._value, sol.stats["num_steps"], reached, jnp.stack(sol.event_mask), codes)

    return eqx.filter_jit(eqx.filter_vmap(one, in_axes=(0, 0, None, None)))


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
    stop_when: Mapping[str, Condition] | None = None,
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
        stop_when: ``{name: condition}``: a member stops, without error, at the end of the first solver step
            where ``condition(y, p) != 0`` (a diffrax event, tested after every step); its saves from that
            time on are NaN, ``stop_time``/``stop_reason``/``stop_detail`` say when and why, and
            ``watch[name]`` is each condition's code at that state (at ``ts[-1]`` where none fired). A condition that fires first also
            pre-empts a later blow-up.
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
    conditions = _checked_names("stop_when", stop_when, Condition, "diverged")
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
    out = fn(shard.shard(y0f), shard.shard(pf), shard.replicate(ts), tuple(conditions.values()))
    ys, obs, result, nsteps, t_end, mask, codes = (np.array(shard.unpad(np.asarray(x))) for x in out)
    stopped = (result == diffrax.RESULTS.event_occurred._value) & ~mask[:, 0]
    for i in np.flatnonzero((result != diffrax.RESULTS.successful._value) & ~stopped):
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
    after = stopped[:, None] & (ts[None, :] >= t_end[:, None])  # saves at and after a stop
    if not np.all(np.isfinite(ys[~after])):
        bad = int(np.flatnonzero(~np.all(np.isfinite(ys) | after[..., None], axis=(1, 2)))[0])
        raise SolveError(f"{_describe(system, bad, y0f, pf, batch)}: non-finite state in the saved trajectory")
    ys[after], obs[after] = np.nan, np.nan
    names, conds = list(conditions), list(conditions.values())
    fired = np.argmax(mask[:, 1:], axis=-1) if conds else np.zeros(len(stopped), int)
    reason = np.array([names[j] if s else "" for s, j in zip(stopped, fired)], dtype=object)
    detail = np.array([conds[j].describe(int(codes[i, j])) if s else "" for i, (s, j) in enumerate(zip(stopped, fired))],
                      dtype=object)
    shape = lambda x: x.reshape(batch + x.shape[1:])  # noqa: E731
    return Solution(
        system, ts, shape(ys), shape(obs), shape(y0f), shape(pf), shape(nsteps),
        stop_time=shape(np.where(stopped, t_end, np.nan)), stop_reason=shape(reason), stop_detail=shape(detail),
        watch={n: shape(codes[:, j]) for j, n in enumerate(names)},
    )


def _result_message(code: int) -> str:
    for name in ("dt_min_reached", "nonlinear_divergence", "nonlinear_max_steps_reached", "singular"):
        item = getattr(diffrax.RESULTS, name, None)
        if item is not None and item._value == code:
            return name.replace("_", " ")
    return f"diffrax result code {code}"


# ----------------------------------------------------------------------------- maps
def _map_iterator(system: System):
    """The jitted, vmapped map iteration, cached on the system's structure (watches: see :func:`iterate`)."""
    key = (system._key, "iterate")
    if key not in _COMPILED:
        _COMPILED[key] = _build_map_iterator(system)
    return _COMPILED[key]


def _build_map_iterator(system: System):
    key = system._key
    step = system.vector_field
    obs_fn = system.observable_fn

    def one(y0, p, grid, watches):
        _TRACES[(key, "iterate")] += 1

        def fired(carries):
            return jnp.stack([jnp.asarray(w.stop(c), bool) for w, c in zip(watches, carries)])

        def body(k, state):
            y, carries, stop_at, who = state
            y_new = step(0.0, y, p)
            new = tuple(w.update(c, k, y_new, p) for w, c in zip(watches, carries))
            hit = fired(new)
            live = stop_at < 0
            fire, accept = live & jnp.any(hit), live & ~jnp.any(hit)
            carries = tuple(jax.tree_util.tree_map(lambda a, b, keep=accept | (fire & hit[i]): jnp.where(keep, a, b), n, c)
                            for i, (n, c) in enumerate(zip(new, carries)))
            return (jnp.where(accept, y_new, y), carries, jnp.where(fire, k, stop_at),
                    jnp.where(fire, jnp.argmax(hit).astype(who.dtype), who))

        def interval(state, bounds):
            state = jax.lax.fori_loop(bounds[0] + 1, bounds[1] + 1, body, state)
            return state, state[0]

        carries = tuple(w.init(y0, p) for w in watches)
        hit0, neg = fired(carries), -jnp.ones((), grid.dtype)
        init = (y0, carries, jnp.where(jnp.any(hit0), 0, neg), jnp.where(jnp.any(hit0), jnp.argmax(hit0), neg))
        (y_last, carries, stop_at, who), ys = jax.lax.scan(interval, init, jnp.stack([grid[:-1], grid[1:]], axis=-1))
        ys = jnp.concatenate([y0[None], ys], axis=0)
        return ys, jax.vmap(obs_fn, in_axes=(0, None))(ys, p), y_last, carries, stop_at, who

    return eqx.filter_jit(eqx.filter_vmap(one, in_axes=(0, 0, None, None)))


def iterate(
    system: System,
    y0: Mapping[str, object] | object,
    params: Mapping[str, object] | object,
    steps: int,
    *,
    record_steps: object | None = None,
    n_record: int = 200,
    blowup: float = 1e8,
    watches: Mapping[str, Watch] | None = None,
    on_divergence: str = "raise",
    devices: Devices = None,
) -> Solution:
    r"""Apply a map system :math:`y_{k+1} = F(y_k; p)` ``steps`` times, every step shown to ``watches``.

    Args:
        system: a ``kind="map"`` :class:`System` with a parameter ``eta`` (time :math:`t = \eta k`).
        y0, params: as in :func:`solve` (batched by their leading axes).
        steps: number of map steps (ignored when ``record_steps`` is given: its last entry is).
        record_steps: strictly increasing step indices from 0 to record (default :func:`step_grid`
            ``(steps, n_record)``). ``()``: record nothing (only ``watches``, ``y_last`` and the stop
            fields); then batch members may have different ``eta`` (there is no shared time grid).
        blowup: the built-in watch ``"diverged"`` (:class:`~phasedyn.theory._watch.Diverged`) stops a member
            at the first state that is non-finite or has some :math:`|y_j| \ge` ``blowup``, at the exact step.
        watches: ``{name: Watch}`` (:mod:`~phasedyn.theory._watch`), run after ``"diverged"`` on every step
            inside the compiled loop; ``sol.watch[name]`` is each one's final carry through its ``summary``.
            A watch whose ``stop`` fires ends the member there (see ``Solution.stop_*``), without error.
        on_divergence: ``"raise"`` (a :class:`SolveError` naming the member and the exact step) or
            ``"stop"`` (return; ``stop_reason == "diverged"``, ``y_last`` the last finite state).
        devices: as in :func:`solve`.

    One compilation per system structure and watch structure (their classes and static fields); new
    values of ``y0``, ``params``, ``steps`` and of the watches' array fields never recompile.
    """
    if system.kind != "map":
        raise ValueError(f"{system.name} is a flow (kind='flow'): use solve(), not iterate()")
    if "eta" not in system.param_names:
        raise ValueError(f"{system.name}: a map needs the parameter 'eta' to define time t = eta*k")
    blowup = check_positive("blowup", blowup)
    check_choice("on_divergence", on_divergence, ("raise", "stop"))
    watches = _checked_names("watches", watches, Watch, "diverged")
    record = record_steps is None or np.size(record_steps) > 0
    if record_steps is None:
        grid = step_grid(steps, n_record)
    elif not record:
        grid = np.array([0, check_int("steps", steps, 1)], dtype=np.int64)
    else:
        grid = np.asarray(record_steps, dtype=np.int64)
    if grid.ndim != 1 or grid.size < 2 or grid[0] != 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("record_steps must be strictly increasing integers starting at 0 (or () for none)")
    y0f, pf, batch = _broadcast(system, y0, params)
    eta = pf[:, system.param_names.index("eta")]
    if record and np.ptp(eta) > 0:
        raise ValueError("iterate: all batch members must share one eta so that they share a time grid "
                         "(or record nothing: record_steps=())")
    names, every = ("diverged", *watches), (Diverged(blowup), *watches.values())
    shard = BatchSharding.make(y0f.shape[0], devices)
    out = _map_iterator(system)(shard.shard(y0f), shard.shard(pf), shard.replicate(grid), every)
    ys, obs, y_last, carries, stop_at, who = jax.tree_util.tree_map(lambda x: np.array(shard.unpad(np.asarray(x))),
                                                                    out)
    reason = np.array([names[j] if j >= 0 else "" for j in who], dtype=object)
    if on_divergence == "raise" and np.any(reason == "diverged"):
        i = int(np.flatnonzero(reason == "diverged")[0])
        raise SolveError(
            f"{_describe(system, i, y0f, pf, batch)}: the iterated map diverged (non-finite or |y| >= {blowup:g}) "
            f"at step {stop_at[i]} (t = {stop_at[i] * eta[i]:.6g}); decrease eta"
        )
    after = (stop_at[:, None] >= 0) & (grid[None, :] >= stop_at[:, None])
    ys[after], obs[after] = np.nan, np.nan
    detail = np.array([every[j].explain(carries[j], i) if j >= 0 else "" for i, j in enumerate(who)], dtype=object)
    shape = lambda x: np.asarray(x).reshape(batch + np.shape(x)[1:])  # noqa: E731
    summaries = {n: jax.tree_util.tree_map(shape, w.summary(c, int(grid[-1])))
                 for n, w, c in zip(names[1:], every[1:], carries[1:])}
    n_steps = np.full(batch, grid[-1])
    if not record:
        grid, ys, obs = grid[:0], ys[:, :0], obs[:, :0]
    return Solution(
        system, grid * eta[0], shape(ys), shape(obs), shape(y0f), shape(pf), n_steps,
        steps=grid, stop_step=shape(stop_at), stop_time=shape(np.where(stop_at >= 0, stop_at * eta, np.nan)),
        stop_reason=shape(reason), stop_detail=shape(detail), watch=summaries, y_last=shape(y_last),
    )
