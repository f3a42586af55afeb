r"""Checkpoints of a simulation: the driver's whole state in one ``.npz`` beside a JSON copy of its header.

A checkpoint is a **directory** (the ``checkpoint=`` / ``resume=`` path of
:func:`~phasedyn.simulate.run` and :func:`~phasedyn.simulate.run_matrix`) holding two files:

* ``state.npz`` — the state, written with :func:`numpy.savez` (no pickle; read with ``allow_pickle=False``):

  ====================  =====================================================================
  ``x``                 every seed's weights :math:`w_k` or :math:`W_k`, ``(n_seeds, ...)``, the run's dtype
  ``keys``              the seeds' PRNG keys as ``jax.random.key_data`` (``uint32``), ``(n_seeds, ...)``
  ``bad``               per seed, -1 or the step at which it diverged, ``(n_seeds,)``
  ``extra_0``...        the model's per-step bookkeeping leaves (matrix: running peak of :math:`b/a`, ...)
  ``step``              :math:`k`, the steps done (0-d ``int64``)
  ``next_target``       index of the next record interval end (0-d ``int64``)
  ``grid``              the record grid (``int64``)
  ``rec_<name>``        statistic ``name`` at every record step reached, ``(n_reached, n_seeds)``
  ``header``            the header (below) as a 0-d unicode string: the authoritative copy
  ====================  =====================================================================

* ``checkpoint.json`` — the same header, indented, for people and tools (``jq``): ``format``
  (``"phasedyn-checkpoint"``), ``version`` (1), ``step``, ``steps``, ``complete``, ``interrupted``,
  ``inputs_sha256`` (of the model's parameters and the start :math:`x_0`) and ``config`` (the run's
  ``config``, strict JSON: non-finite numbers as ``null``).

The optimisers (GD, online SGD, SpecGD; docs/theory.md §1, §3C) keep no state besides the weights and the
PRNG keys, so ``x`` and ``keys`` are the whole optimiser state.

**Why npz + JSON**: numpy's own format, stable since numpy 1.0, readable with nothing but numpy, exact for
every dtype (float32/float64/int/uint32 bits round-trip), one file so one atomic ``os.replace``; the JSON
header says what run it is without loading arrays. An orbax pytree checkpoint would add a dependency and
a directory of files whose commit is not a single rename, for a state that is a handful of arrays.

Writes are atomic: ``state.npz`` is written to a temporary file in the same directory, ``fsync``'d and
renamed over the old one; the header is read back from the npz, never from the sidecar, so a crash between
the two renames cannot pair a state with another state's header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import tempfile
from typing import Any

import numpy as np

FORMAT = "phasedyn-checkpoint"
VERSION = 1
STATE = "state.npz"
SIDECAR = "checkpoint.json"

PathLike = str | os.PathLike


@dataclasses.dataclass(frozen=True)
class State:
    """What a checkpoint holds (numpy, padding dropped); see the module docstring for each field."""

    x: np.ndarray
    keys: np.ndarray
    bad: np.ndarray
    extra: list[np.ndarray]
    step: int
    next_target: int
    grid: np.ndarray
    records: dict[str, np.ndarray]
    header: dict[str, Any]


def strict(value: Any) -> Any:
    """``value`` made strict-JSON-able: non-finite floats → ``None``, tuples → lists, numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if isinstance(value, np.generic):
        return strict(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def inputs_sha256(params: dict[str, Any], x0: np.ndarray) -> str:
    """SHA-256 of the model's parameters (name, dtype, shape, bytes, in name order) and of the start ``x0``."""
    h = hashlib.sha256()
    for name, value in sorted(params.items()) + [("x0", x0)]:
        a = np.ascontiguousarray(np.asarray(value))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def prepare(path: PathLike) -> pathlib.Path:
    """The checkpoint directory ``path``, created if missing (before the run starts, so that a bad path is
    refused before any work).

    Raises:
        ValueError: ``path`` is a file, lies under one, or cannot be created (the message names ``checkpoint``).
    """
    folder = pathlib.Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # FileExistsError, NotADirectoryError, PermissionError, ...
        raise ValueError(f"checkpoint = {str(path)!r} must be a directory that can be written: {exc}") from exc
    if not os.access(folder, os.W_OK):
        raise ValueError(f"checkpoint = {str(path)!r} must be a directory that can be written")
    return folder


def save(path: PathLike, state: State) -> None:
    """Write ``state`` into the directory ``path`` (created if missing), atomically (module docstring)."""
    folder = prepare(path)
    text = json.dumps(strict(state.header), allow_nan=False, sort_keys=True)
    arrays: dict[str, np.ndarray] = {
        "x": state.x, "keys": state.keys, "bad": state.bad, "step": np.int64(state.step),
        "next_target": np.int64(state.next_target), "grid": state.grid.astype(np.int64), "header": np.array(text),
    }
    arrays.update({f"extra_{i}": np.asarray(leaf) for i, leaf in enumerate(state.extra)})
    arrays.update({f"rec_{name}": np.asarray(v) for name, v in state.records.items()})
    _atomic(folder / STATE, lambda f: np.savez(f, **arrays))
    pretty = json.dumps(json.loads(text), allow_nan=False, indent=1, sort_keys=True) + "\n"
    _atomic(folder / SIDECAR, lambda f: f.write(pretty.encode()))


def _atomic(target: pathlib.Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load(path: PathLike) -> State:
    """Read the checkpoint in directory ``path``.

    Raises:
        ValueError: ``path`` holds no checkpoint, or one of another format/version (message names ``resume``).
    """
    file = pathlib.Path(path) / STATE
    if not file.is_file():
        raise ValueError(f"resume = {str(path)!r} must be a checkpoint directory holding {STATE}; none found")
    try:
        with np.load(file, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        header = json.loads(str(data["header"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"resume = {str(path)!r}: {STATE} is not a readable checkpoint ({exc})") from exc
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"resume = {str(path)!r}: not a {FORMAT} version {VERSION} checkpoint "
                         f"(format {header.get('format')!r}, version {header.get('version')!r})")
    n_extra = sum(k.startswith("extra_") for k in data)
    return State(
        x=data["x"], keys=data["keys"], bad=data["bad"], extra=[data[f"extra_{i}"] for i in range(n_extra)],
        step=int(data["step"]), next_target=int(data["next_target"]), grid=data["grid"],
        records={k[4:]: v for k, v in data.items() if k.startswith("rec_")}, header=header,
    )


def read_checkpoint(path: PathLike) -> dict[str, Any]:
    """The header of the checkpoint in directory ``path`` (``step``, ``steps``, ``complete``, ``interrupted``,
    ``config``, ...; module docstring), without loading its arrays into the caller's hands.

    Raises:
        ValueError: no readable checkpoint there.
    """
    return load(path).header


def check_same_run(path: PathLike, header: dict[str, Any], config: dict[str, Any], digest: str) -> None:
    """Raise ``ValueError`` unless the checkpoint's ``header`` is of the run described by ``config``/``digest``.

    Every key of the run's ``config`` must agree (compared as strict JSON); the message names the first
    that differs, with both values.
    """
    mine = json.loads(json.dumps(strict(config), allow_nan=False))
    theirs = header.get("config", {})

    def flat(c: dict) -> dict:  # the driver's own arguments (eta, steps, seeds, grid, ...) after the model's
        return {**{k: v for k, v in c.items() if k != "driver"}, **c.get("driver", {})}

    mine, theirs = flat(mine), flat(theirs)
    for key in list(mine) + [k for k in theirs if k not in mine]:
        if mine.get(key) != theirs.get(key):
            name = "the record grid (n_record / record_steps)" if key == "grid" else key
            raise ValueError(
                f"resume = {str(path)!r} is a checkpoint of another run: {name} = {_short(theirs.get(key))} there, "
                f"{_short(mine.get(key))} here; pass the same arguments as the checkpointed run"
            )
    if header.get("inputs_sha256") != digest:
        raise ValueError(
            f"resume = {str(path)!r} is a checkpoint of another run: the problem (spectrum, w*, sigma, spikes) "
            "or the start weights differ; pass the same problem and start as the checkpointed run"
        )


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."
