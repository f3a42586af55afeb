"""``phasedyn sweep SYSTEM --grid NAME=START:STOP:N[:log] ... [run options] --out STORE``: any ``run`` experiment
over a product grid of its numeric options, into one labelled xarray Dataset (issue 15 §1).

* **Grid.** Each ``--grid`` names a numeric option of ``phasedyn run SYSTEM`` (``eta``, ``theta``, ``d``, ``a``,
  ...) and ``N`` values from ``START`` to ``STOP``, linear or (``:log``) geometric; integer options are rounded
  (and must stay distinct). Every point's config is resolved and its memory estimated before the first point
  runs: a bad value is exit 2 naming the option and the point.
* **Store.** ``STORE`` ending in ``.nc`` is a netCDF-3 file (SciPy's writer, no extra dependency), anything else
  a zarr store (a folder). Dimensions: the grid options, then ``record`` (the log-spaced record points of each
  run; ``t`` holds their model times, NaN past a run's ``n_records``). Variables: every array of the run's
  ``trajectories.npz`` (``theory_<stat>``, ``sim_<stat>_mean``, ``sim_<stat>_std``, ...) over
  ``(grid..., record)`` and every number of its ``summary.json`` (phase times, finals, gaps, measured rates,
  amplification, ``wall_time_s``; nested keys joined by ``_``, ``null`` as NaN) over the grid; ``done`` marks the
  points computed. Attributes: ``phasedyn_sweep`` (the sweep's options as JSON: system, the run options, the
  grid, the version) and ``version``. Read it with ``xarray.open_dataset(STORE)`` (or ``open_zarr``); figures
  from one line: ``ds.T1_theory.plot()``, ``ds.sim_u_mean.sel(eta=0.02, method="nearest").plot(x="t")``.
* **Resumable.** The store is rewritten (atomically: a temporary sibling renamed into place) after each point,
  so an interrupted sweep loses at most the points in flight; the same command again skips the points marked
  ``done`` and fills the rest. A store of other options is refused (naming what differs) unless ``new=True``
  (``--new``), which replaces it; a path that holds anything but a sweep store is refused.
* **Distributed.** ``scheduler="local:N"`` runs the points on a Dask ``LocalCluster`` of ``N`` single-threaded
  worker processes, any other string is the address of a running Dask scheduler; results are the in-process
  ones bit for bit (each point is one deterministic, seeded run). A worker lost mid-sweep has its point run again
  elsewhere (Dask's retries); the store holds each point once, by its grid index. Needs ``phasedyn[distributed]``;
  the in-process default (``scheduler=None``) imports no Dask.

Each point is the ``phasedyn run`` experiment itself (:data:`~.cli.RUNS`), run into a temporary folder with its
figures skipped: one code path for a run and a sweep (a spiked point leaves out the run's own phase diagram and
amplification table, ``phase_diagram=False``: the sweep takes their place).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from phasedyn.theory.validate import check_int

from . import _cost
from ._folders import check_out
from .flags import flag_fields
from .output import config_json, json_text, package_version, to_json

#: the most grid points one sweep may have
MAX_POINTS = 100_000
_GRID = re.compile(r"^(?P<name>[A-Za-z_][\w-]*)=(?P<start>[^:]+):(?P<stop>[^:]+):(?P<n>[^:]+)(?::(?P<scale>\w+))?$")
_SKIP = ("system", "version", "schema")


@dataclasses.dataclass(frozen=True)
class Axis:
    """One grid dimension: the config field ``name`` and its ``values`` (floats, or ints for an int field)."""

    name: str
    values: tuple


def parse_grid(spec: str, config_cls: type) -> Axis:
    """The :class:`Axis` of ``NAME=START:STOP:N[:log]`` over the numeric flag fields of ``config_cls``
    (``ValueError`` naming ``--grid`` and the allowed form otherwise)."""
    m = _GRID.match(spec.strip())
    where = f"--grid {spec!r}"
    if m is None:
        raise ValueError(f"{where}: expected NAME=START:STOP:N or NAME=START:STOP:N:log")
    name = m["name"].replace("-", "_")
    kinds = {f.name: kind for f, _, kind in flag_fields(config_cls)}
    numeric = sorted(k for k, kind in kinds.items() if kind in (int, float))
    if kinds.get(name) not in (int, float):
        raise ValueError(f"{where}: NAME must be a numeric option of this system, one of {', '.join(numeric)}")
    try:
        start, stop, n = float(m["start"]), float(m["stop"]), int(m["n"])
    except ValueError:
        raise ValueError(f"{where}: START and STOP must be numbers and N an integer") from None
    check_int(f"{where}: N", n, 1, MAX_POINTS)
    scale = m["scale"] or "lin"
    if scale not in ("lin", "log"):
        raise ValueError(f"{where}: the scale must be lin or log, got {scale!r}")
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise ValueError(f"{where}: START and STOP must be finite")
    if scale == "log" and not (start > 0 and stop > 0):
        raise ValueError(f"{where}: a log grid needs START > 0 and STOP > 0")
    values = np.geomspace(start, stop, n) if scale == "log" else np.linspace(start, stop, n)
    if kinds[name] is int:
        ints = tuple(int(round(v)) for v in values)
        if len(set(ints)) < n:
            raise ValueError(f"{where}: {name} is an integer option and {n} points round to {len(set(ints))} distinct "
                             "integers; use fewer points or a wider range")
        return Axis(name, ints)
    return Axis(name, tuple(float(v) for v in values))


@dataclasses.dataclass(frozen=True)
class Sweep:
    """``system``'s experiment (config ``base``, unresolved) over the product of ``axes``."""

    system: str
    base: Any
    axes: tuple[Axis, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    def points(self) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
        """``(grid index, {name: value})`` of every point, in C order."""
        return [(idx, {a.name: a.values[i] for a, i in zip(self.axes, idx)})
                for idx in itertools.product(*(range(n) for n in self.shape))]

    def config(self, values: dict[str, Any]) -> Any:
        """The resolved config at one point (``ValueError`` prefixed with the point)."""
        try:
            return dataclasses.replace(self.base, **values).resolved()
        except ValueError as err:
            at = ", ".join(f"{k}={v:g}" for k, v in values.items())
            raise ValueError(f"at the grid point {at}: {err}") from None

    def options(self) -> dict:
        """What decides the results: the system, the run options (grid options left out), the grid, the version."""
        grid = {a.name for a in self.axes}
        run = {k: v for k, v in config_json(self.system, self.base).items() if k not in grid}
        return to_json({"system": self.system, "run": run, "grid": {a.name: list(a.values) for a in self.axes},
                        "version": package_version()})


def make_sweep(system: str, base: Any, grids: list[str]) -> Sweep:
    """The :class:`Sweep` of ``--grid`` specs over ``base`` (each point validated, before anything runs)."""
    if not grids:
        raise ValueError("--grid: give at least one NAME=START:STOP:N[:log]")
    if getattr(base, "phase_diagram", False):  # spiked: the run's own (theta, eta) scan is what a sweep replaces
        base = dataclasses.replace(base, phase_diagram=False)
    axes = tuple(parse_grid(g, type(base)) for g in grids)
    names = [a.name for a in axes]
    if len(set(names)) < len(names):
        raise ValueError(f"--grid: each option at most once, got {', '.join(names)}")
    sweep = Sweep(system, base, axes)
    if math.prod(sweep.shape) > MAX_POINTS:
        raise ValueError(f"--grid: {math.prod(sweep.shape)} points exceed the limit of {MAX_POINTS}")
    return sweep


def run_point(system: str, fields: dict[str, Any], force: bool = False) -> dict:
    """One grid point: ``phasedyn run SYSTEM`` with the config ``fields`` in a temporary folder, no figures;
    returns ``{"arrays": trajectories.npz, "scalars": the numbers of summary.json}`` (a Dask task)."""
    from .cli import RUNS

    config_cls, runner, _ = RUNS[system]
    with tempfile.TemporaryDirectory(prefix="phasedyn-sweep-") as tmp:
        res = runner(config_cls(**fields), Path(tmp) / "run", progress=False, force=force, figures=False)
        with np.load(Path(tmp) / "run" / "trajectories.npz") as z:
            arrays = {k: np.asarray(z[k]) for k in z.files if z[k].ndim == 1}
    return {"arrays": arrays, "scalars": flatten(res["summary"])}


def flatten(summary: dict) -> dict[str, float]:
    """The numbers of a ``summary.json``: nested keys joined by ``_`` (``phases_T1_theory``), ``null`` as NaN,
    booleans as 0/1; text and lists left out; of ``params`` only ``wall_time_s``."""
    out: dict[str, float] = {}

    def walk(prefix: str, x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}_{k}" if prefix else str(k), v)
        elif x is None or isinstance(x, (bool, int, float)):
            out[prefix] = math.nan if x is None else float(x)

    for k, v in summary.items():
        if k == "params":
            walk("wall_time_s", v.get("wall_time_s"))
        elif k not in _SKIP:
            walk(k, v)
    return out


def dataset(sweep: Sweep, results: dict[tuple[int, ...], dict]) -> Any:
    """The xarray Dataset of the points computed so far (module docstring)."""
    import xarray as xr

    dims = tuple(a.name for a in sweep.axes)
    shape = sweep.shape
    n_rec = max([len(next(iter(r["arrays"].values()), [])) for r in results.values()] + [1])
    arrays = sorted({k for r in results.values() for k in r["arrays"]})
    scalars = sorted({k for r in results.values() for k in r["scalars"]} - set(arrays))
    data = {k: np.full(shape + (n_rec,), np.nan) for k in arrays}
    data.update({k: np.full(shape, np.nan) for k in scalars})
    done, n_records = np.zeros(shape, bool), np.zeros(shape, np.int32)
    for idx, r in results.items():
        done[idx] = True
        for k, v in r["arrays"].items():
            data[k][idx][: len(v)] = v
            n_records[idx] = len(v)
        for k, v in r["scalars"].items():
            data[k][idx] = v
    variables = {k: ((*dims, "record") if v.ndim == len(shape) + 1 else dims, v) for k, v in data.items()}
    variables.update(done=(dims, done), n_records=(dims, n_records))
    coords = {a.name: np.asarray(a.values) for a in sweep.axes}
    return xr.Dataset(variables, coords=coords, attrs={
        "phasedyn_sweep": json_text(sweep.options()), "version": package_version()})


def _engine(store: Path) -> dict:
    return {"engine": "scipy"} if store.suffix == ".nc" else {"engine": "zarr"}


def read_store(store: Path) -> Any:
    """The Dataset of a sweep store, loaded into memory (``ValueError`` when ``store`` is not one)."""
    import xarray as xr

    try:
        with xr.open_dataset(store, **_engine(store)) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001  # any reader failure: this path does not hold a sweep store
        raise ValueError(f"--out {str(store)!r} exists and is not a phasedyn sweep store ({type(err).__name__}); "
                         "choose another path or remove it") from None
    if "phasedyn_sweep" not in ds.attrs:
        raise ValueError(f"--out {str(store)!r} exists and is not a phasedyn sweep store; choose another path")
    return ds


def write_store(ds: Any, store: Path) -> Path:
    """Write ``ds`` to ``store`` atomically: into a temporary sibling, renamed into place."""
    store = Path(store)
    tmp = store.with_name(f".{store.name}.phasedyn-tmp-{os.getpid()}")
    _remove(tmp)
    try:
        if store.suffix == ".nc":
            ds.to_netcdf(tmp, engine="scipy")
        else:
            ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)  # v2: consolidated metadata is in its spec
    except BaseException:
        _remove(tmp)
        raise
    if store.is_dir():  # a zarr folder: set the old one aside, move the new one in, remove the old
        old = store.with_name(f".{store.name}.phasedyn-old-{os.getpid()}")
        _remove(old)
        os.replace(store, old)
        os.replace(tmp, store)
        _remove(old)
    else:  # a file (or nothing yet): one atomic rename
        os.replace(tmp, store)
    return store


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _done(sweep: Sweep, ds: Any) -> dict[tuple[int, ...], dict]:
    """The results of the points ``ds`` marks done, read back from it."""
    dims = [a.name for a in sweep.axes]
    records = [k for k, v in ds.data_vars.items() if "record" in v.dims]
    scalars = [k for k, v in ds.data_vars.items() if tuple(v.dims) == tuple(dims) and k not in ("done", "n_records")]
    out = {}
    for idx in zip(*np.nonzero(ds["done"].transpose(*dims).values)):
        idx = tuple(int(i) for i in idx)
        n = int(ds["n_records"].transpose(*dims).values[idx])
        out[idx] = {"arrays": {k: ds[k].transpose(*dims, "record").values[idx][:n] for k in records},
                    "scalars": {k: float(ds[k].transpose(*dims).values[idx]) for k in scalars}}
    return out


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new)) for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_store(sweep: Sweep, store: Path, new: bool = False) -> dict[tuple[int, ...], dict]:
    """The points an existing ``store`` already holds for this sweep (none when it does not exist or ``new``);
    ``ValueError`` when it holds another sweep (naming the options that differ) and not ``new``, or is not a
    sweep store. Writes nothing."""
    store = Path(store)
    if not store.exists():
        check_out(store)  # a folder above it is a file, or it cannot be created: named, nothing written
        return {}
    ds = read_store(store)
    if new:
        return {}
    old = json.loads(ds.attrs["phasedyn_sweep"])
    diff = _differences(old, sweep.options())
    if diff:
        raise ValueError(f"--out {str(store)!r} holds a sweep of other options (differs in {', '.join(diff)}); "
                         "give --new to replace it, or another --out")
    return _done(sweep, ds)


def run_sweep(sweep: Sweep, store: Path, *, new: bool = False, force: bool = False, scheduler: str | None = None,
              report: Callable[[str], None] | None = None) -> Any:
    """Run every point of ``sweep`` not yet in ``store`` and return the complete Dataset (module docstring).

    Everything is checked first: each point's config (resolved) and estimated memory (``force``: run anyway),
    the store (:func:`check_store`). ``report`` receives one line per point finished.
    """
    store = Path(store)
    points = sweep.points()
    available, costs = _cost.available_memory(), {}
    for idx, values in points:
        costs[idx] = getattr(_cost, sweep.system)(sweep.config(values))
        if costs[idx].memory > available and not force:
            _cost.check(costs[idx], force, available)  # raises: the estimate and the option to change
    results = check_store(sweep, store, new)
    todo = [(idx, values) for idx, values in points if idx not in results]
    say = report or (lambda line: None)
    seconds = sum(costs[idx].seconds for idx, _ in todo)
    peak = max((costs[idx].memory for idx, _ in todo), default=0)
    say(f"sweep {sweep.system}: {len(points)} points ({len(points) - len(todo)} already in {store}); estimated "
        f"~{_cost.duration(seconds)} in all, peak memory {_cost.size(peak)} per point")
    if new and store.exists():
        write_store(dataset(sweep, {}), store)
    fields = lambda values: {f.name: getattr(dataclasses.replace(sweep.base, **values), f.name)  # noqa: E731
                             for f, _, _ in flag_fields(type(sweep.base))}
    start = time.perf_counter()
    for n, (idx, values, res) in enumerate(_execute(sweep.system, todo, fields, force, scheduler), 1):
        results[idx] = res
        write_store(dataset(sweep, results), store)
        at = ", ".join(f"{k}={v:g}" for k, v in values.items())
        say(f"[{n}/{len(todo)}] {at}: {res['scalars'].get('wall_time_s', math.nan):.1f} s "
            f"(sweep {time.perf_counter() - start:.1f} s)")
    if not todo and not store.exists():
        write_store(dataset(sweep, results), store)
    return read_store(store)


def _execute(system: str, todo: list, fields: Callable, force: bool, scheduler: str | None):
    """Yield ``(index, values, result)`` as points finish: in this process, or on Dask (module docstring)."""
    if scheduler is None:
        for idx, values in todo:
            yield idx, values, run_point(system, fields(values), force)
        return
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("--scheduler needs Dask: pip install 'phasedyn[distributed]'") from None
    cluster = None
    if scheduler.startswith("local:"):
        n = check_int("--scheduler local:N", _int(scheduler[6:]), 1, 1024)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        address: Any = cluster
    else:
        address = scheduler
    try:
        with Client(address) as client:
            futures = {client.submit(run_point, system, fields(values), force, pure=False, retries=2): (idx, values)
                       for idx, values in todo}
            for fut in as_completed(futures):
                idx, values = futures[fut]
                yield idx, values, fut.result()
    finally:
        if cluster is not None:
            cluster.close()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--scheduler local:N: N must be an integer, got {text!r}") from None
