"""Output folders that never contradict themselves: checked before a run, written atomically (issue 11).

A run's folder ``OUT`` is first checked (:func:`check_out`, before anything runs or is written):

* ``OUT`` must not be a file, and no folder above it may be a file;
* the nearest existing folder above ``OUT`` must take a new folder (probed by creating and removing one);
* an existing, non-empty ``OUT`` must hold an earlier phasedyn run (:func:`is_phasedyn_folder`: its
  ``config.json`` / ``summary.json`` / ``results.json`` name a phasedyn ``system`` or ``version``), which the run
  replaces whole, or ``overwrite=True`` (``--overwrite``) must be given.

The run then writes into a temporary sibling folder ``.OUT.phasedyn-tmp-*`` (:func:`staged`) and moves it into
place only when it has finished: the earlier ``OUT`` is renamed aside, the new one renamed to ``OUT``, the old
one removed. A run that fails or is refused (an exception inside :func:`staged`) removes its temporary folder
and leaves ``OUT`` exactly as it was (and removes the parent folders it created, when they are still empty).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ._interrupt import Checkpoints, Interrupted, after_simulation

#: the files whose presence (with a phasedyn ``system`` or ``version`` key) marks a folder as an earlier run
MARKERS = ("config.json", "summary.json", "results.json")
TMP = ".phasedyn-tmp-"


def is_phasedyn_folder(path: Path) -> bool:
    """Whether ``path`` holds an earlier phasedyn run: one of :data:`MARKERS` is a JSON object with a ``system``
    or ``version`` key (a run folder), or ``path`` holds reproduce's ``REPORT.md`` beside its ``results.json``
    files (a ``reproduce`` folder)."""
    path = Path(path)
    for name in MARKERS:
        try:
            data = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and ("system" in data or "version" in data):
            return True
    return (path / "REPORT.md").is_file() and any(path.glob("*/results.json"))


def _first_existing(path: Path) -> Path:
    """The nearest existing path at or above ``path`` (a file there: ``--out`` lies under a file)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out(out: Path | str, overwrite: bool = False, name: str = "--out") -> Path:
    """The checked output folder (module docstring): ``ValueError`` naming ``name`` when it is a file, lies under
    a file, cannot be created, or is a non-empty folder of something other than a phasedyn run (and not
    ``overwrite``). Writes nothing (the writability probe's folder is removed at once)."""
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be True or False, got {overwrite!r}")
    out = Path(out).expanduser().absolute()
    if out.name in ("", ".", "..") or out == out.parent:
        raise ValueError(f"{name} = {out}: give a folder to create or replace, not a root or '..'")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name} = {out} is a file, not a folder (give a folder path)")
    base = _first_existing(out.parent)
    if not base.is_dir():
        raise ValueError(f"{name} = {out} lies under {base}, which is a file, not a folder")
    try:  # the one honest test of "can a folder be made here" (os.access says yes to root on a read-only mount)
        os.rmdir(tempfile.mkdtemp(prefix=TMP, dir=base))
    except OSError as err:
        raise ValueError(f"{name} = {out}: cannot create a folder in {base} ({err.strerror or err})") from None
    if out.is_dir() and any(out.iterdir()) and not overwrite and not is_phasedyn_folder(out):
        raise ValueError(f"{name} = {out} is a non-empty folder that holds no phasedyn run (no config.json / "
                         "summary.json of one); pass --overwrite (overwrite=True) to replace it, or another folder")
    return out


@contextlib.contextmanager
def staged(out: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``out`` to write into; on success move it to ``out`` (replacing an earlier
    run there whole), on any exception remove it and leave ``out`` untouched (module docstring)."""
    out = check_out(out, overwrite)
    created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP}", dir=out.parent))
    try:
        yield tmp
        check_out(out, overwrite)  # the target may have changed during the run: still ours to replace
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.phasedyn-old-", dir=out.parent))
            os.rename(out, old / "run")
        try:
            os.rename(tmp, out)
        except OSError:
            if old is not None:
                os.rename(old / "run", out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # innermost first: only the folders this run made, and only while empty
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def run_staged(write: Callable[[Path, Checkpoints], dict], out: Path | str, overwrite: bool = False,
               system: str = "", resume: Path | None = None) -> dict:
    """``write(folder, checkpoints)`` into :func:`staged` folder of ``out``; its result with ``"files"`` at their
    final place. ``checkpoints``: the :class:`~._interrupt.Checkpoints` of the folder (continuing ``resume``'s).

    A simulation stopped by SIGINT (:class:`~._interrupt.Interrupted` out of ``write``): the folder's partial
    results (:meth:`~._interrupt.Interrupted.save`, summary ``system``) are moved to ``out`` all the same, then the
    exception is re-raised with ``folder`` set to ``out``. A ``KeyboardInterrupt`` (SIGINT outside a simulation) after
    a simulation has checkpointed is kept the same way (:func:`~._interrupt.after_simulation`), else re-raised."""
    caught: Interrupted | None = None
    with staged(out, overwrite) as tmp:
        try:
            checkpoints = Checkpoints(tmp, resume)
            result = write(tmp, checkpoints)
        except Interrupted as exc:
            exc.name = exc.name or checkpoints.last
            exc.save(tmp, system)
            caught = exc
        except KeyboardInterrupt:  # outside a simulation: its checkpoints kept when it has written one
            caught = after_simulation(tmp)
            if caught is None:
                raise
            caught.save(tmp, system)
    if caught is not None:
        caught.folder = Path(out).expanduser().absolute()
        raise caught
    return {**result, "files": [Path(out) / Path(f).relative_to(tmp) for f in result["files"]]}
