"""One runner for shell commands that several test modules check (tests/test_readme.py runs every README
command; tests/test_reproduce.py reads the outputs of the README's ``phasedyn reproduce p1 --quick``).

A command is run once per test session (keyed by its text) and its result and working folder are reused,
so the suite does not pay twice for the same minutes-long run. Imported by module name (``tests/`` is on
``sys.path`` under pytest's default import mode), so every test module shares the one cache.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 1800  # per subprocess: a hang fails instead of blocking the suite

_RUNS: dict[str, tuple[subprocess.CompletedProcess, Path]] = {}


def env() -> dict[str, str]:
    """The environment of a run: Agg backend, and ``python``/``phasedyn`` of this interpreter first on PATH."""
    out = dict(os.environ)
    out["MPLBACKEND"] = "Agg"
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), out.get("PATH", "")])
    out.pop("PYTEST_CURRENT_TEST", None)
    return out


def run_once(parts: list[list[str]], cwd: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``parts`` joined by ``&&`` with bash in ``cwd``; a command run before in this session is not run
    again: its result and the folder it ran in are returned."""
    key = " && ".join(map(shlex.join, parts))
    if key not in _RUNS:
        proc = subprocess.run(["bash", "-c", key], cwd=cwd, env=env(), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        _RUNS[key] = (proc, cwd)
    return _RUNS[key]
