"""Runs that fail safely (issue 11): every bad input refused before anything runs or is written (exit 2, one line
naming the parameter), a memory estimate that refuses what the machine cannot hold, output folders written
atomically (a failed or refused run leaves the target as it was; an earlier run is replaced whole), strict JSON.

Each listed bad input is a regression case; a property test feeds generated argument vectors to the parser.
Before issue 11 (measured at a23f243): ``--out`` an existing file, a path under a file or under /proc raised
FileExistsError / NotADirectoryError / FileNotFoundError tracebacks; ``--seed 2**63`` OverflowError; ``--eta 1e-300``
(no --steps) and ``--t-max 1e300`` a TypeError in the log grid; ``--steps 2**63``, ``--seeds 2**63``,
``--n-record 1e9`` ran without bound; ``--d 1e11`` / spiked ``--d 1e6`` numpy's allocation error after config.json;
``run powerlaw --a 500`` "spectrum must be strictly positive" without naming --a, after writing config.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phasedyn.compare import _cost
from phasedyn.compare import _folders
from phasedyn.compare.cli import main
from phasedyn.compare.experiments import IsotropicConfig
from phasedyn.compare._powerlaw_config import PowerlawConfig
from phasedyn.compare.spiked import SpikedConfig

TINY = ["--d", "6", "--steps", "4", "--seeds", "1", "--n-record", "3", "--no-progress"]
GIB = 2**30


def _strict(text: str) -> object:
    def refuse(c):
        raise AssertionError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=refuse)


def _run(argv: list[str], capsys) -> tuple[int, list[str], list[str]]:
    """``main(argv)``'s exit code (argparse's SystemExit included) and its stdout / stderr lines."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.out.strip().splitlines(), cap.err.strip().splitlines()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_temporaries(parent: Path) -> None:
    assert not [p for p in parent.iterdir() if ".phasedyn-" in p.name], list(parent.iterdir())


@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 8 GiB available, so that the memory refusals do not depend on the one running the test."""
    monkeypatch.setattr(_cost, "available_memory", lambda: 8 * GIB)


# ----------------------------------------------------------------------------- each listed bad input
BAD = [  # (argv after `run`, a word the one line must contain)
    (["isotropic", "--steps", str(2**63)], "steps"),
    (["isotropic", "--seed", str(2**63), *TINY], "seed"),
    (["isotropic", "--seeds", str(2**63)], "seeds"),
    (["isotropic", "--eta", "1e-300"], "t_max/eta"),
    (["isotropic", "--t-max", "1e300"], "t_max/eta"),
    (["isotropic", "--n-record", str(10**12), "--steps", "50", "--d", "10", "--seeds", "1"], "--n-record"),
    (["isotropic", "--d", str(10**11), "--steps", "5"], "--d"),
    (["isotropic", "--delta", "1.5", *TINY], "delta"),
    (["isotropic", "--eps", "0", *TINY], "eps"),
    (["isotropic", "--align", "2", *TINY], "align"),
    (["isotropic", "--eta", "inf"], "eta"),
    (["powerlaw", "--a", "500", "--d", "100", "--steps", "5", "--seeds", "1"], "a = 500"),
    (["powerlaw", "--d", str(10**6), "--optimizer", "sgd", "--steps", "100"], "--solver"),
    (["powerlaw", "--steps", str(2**63)], "steps"),
    (["spiked", "--d", str(10**6), "--steps", "5"], "--d"),
    (["spiked", "--eta", "1e-300"], "steps"),
    (["spiked", "--eta", "nan"], "eta"),
    (["spiked", "--seed", str(2**63 - 1), "--seeds", "2"], "seed"),
]


@pytest.mark.parametrize("argv, word", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, word, tmp_path, capsys, small_machine):
    out = tmp_path / "run"
    rc, _, err = _run(["run", *argv, "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and word in err[0], (rc, err)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "under a file", "unwritable", "not ours"])
def test_bad_out_folder_exits_2_with_one_line(kind, tmp_path, capsys):
    """--out an existing file, a path under a file, a place no folder can be made (/proc), a non-empty folder of
    something else: exit 2, one line naming --out, nothing changed."""
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    out = {"file": tmp_path / "afile", "under a file": tmp_path / "afile" / "sub", "unwritable": Path("/proc/phasedyn"),
           "not ours": tmp_path / "notes"}[kind]
    before = _snapshot(tmp_path)
    rc, _, err = _run(["run", "isotropic", *TINY, "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "--out" in err[0], err
    assert _snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "notes"]


def test_reproduce_refuses_a_bad_out_before_its_banner(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    rc, out, err = _run(["reproduce", "p1", "--quick", "--no-progress", "--out", str(tmp_path / "afile")], capsys)
    assert rc == 2 and out == [] and len(err) == 1 and "--out" in err[0], (out, err)


def test_python_api_raises_value_error_naming_the_parameter(tmp_path):
    from phasedyn.compare import run_isotropic

    for cfg, word in [(IsotropicConfig(steps=2**63), "steps"), (IsotropicConfig(seed=-1), "seed"),
                      (PowerlawConfig(a=400, d=10), "a = 400"), (SpikedConfig(seeds=0), "seeds"),
                      (IsotropicConfig(eta=1e-300), "eta")]:
        with pytest.raises(ValueError, match=word):
            cfg.resolved()
    with pytest.raises(ValueError, match="overwrite"):
        run_isotropic(IsotropicConfig(d=6, steps=4, seeds=1, n_record=3), tmp_path / "x", overwrite="yes")
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- cost
def test_memory_refusal_names_the_parameter_and_force_overrides(tmp_path, capsys, monkeypatch):
    """A run estimated above the available memory is refused with the estimate and the knob; --force runs it."""
    monkeypatch.setattr(_cost, "available_memory", lambda: 1)
    out = tmp_path / "run"
    rc, _, err = _run(["run", "isotropic", *TINY, "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "estimated peak memory" in err[0] and "--force" in err[0], err
    assert not out.exists()
    rc, lines, err = _run(["run", "isotropic", *TINY, "--out", str(out), "--force"], capsys)
    assert rc == 0 and (out / "summary.json").is_file(), err
    assert any("estimated peak memory" in line for line in lines)  # printed when it exceeds what is available


def test_estimates_count_the_arrays_a_run_writes(tmp_path):
    """The record term counts the grid a run records on (its length is trajectories.npz's t), and the powerlaw
    theory term is THEORY_FLOATS floats per (mode, seed, record): 26 kB per mode measured at 4 seeds, 94 records."""
    from phasedyn.compare import run_isotropic
    import numpy as np

    cfg = IsotropicConfig(d=8, steps=300, seeds=2, n_record=40).resolved()
    run_isotropic(cfg, tmp_path / "iso", progress=False)
    with np.load(tmp_path / "iso" / "trajectories.npz") as npz:
        assert _cost.n_records(cfg.steps, cfg.n_record) == npz["t"].size
    est = _cost.powerlaw(PowerlawConfig(d=40_000, steps=100, seeds=4, optimizer="sgd").resolved())
    assert _cost.n_records(100, 300) == 94
    per_mode = est.parts["theory per-mode arrays"] / 40_000
    assert 0.5 * 26e3 < per_mode < 2 * 26e3, per_mode
    big = _cost.powerlaw(PowerlawConfig(d=10**6, steps=100_000, seeds=4, optimizer="sgd").resolved())
    assert big.memory > 14e9  # the run that passed 14 GB in its theory stage
    assert _cost.powerlaw(PowerlawConfig(d=10**6, steps=100_000, seeds=4, solver="hierarchy").resolved()).memory < 2e9


@pytest.mark.slow
def test_powerlaw_estimate_against_measured_peak_memory(tmp_path):
    """Peak RSS of a run (subprocess, VmHWM) lies within a factor 2 of the estimate's array terms over the
    import baseline (measured: 1250 MB growth at d = 4e4, estimate 1080 MB).

    VmHWM, not ``ru_maxrss``: Linux carries the parent's peak RSS into a child's ``ru_maxrss`` across fork and
    exec, so inside a pytest process of several GB the child's baseline already exceeded its own peak and the
    growth read 0 (CI). VmHWM belongs to the address space, which exec replaces."""
    import subprocess
    import sys

    if not Path("/proc/self/status").is_file():
        pytest.skip("needs Linux's /proc/self/status (VmHWM)")
    code = ("import sys;from phasedyn.compare.cli import main\n"
            "def hwm():\n return [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "b=hwm();rc=main(sys.argv[1:]);print(rc,(hwm()-b)*1024)")
    argv = ["run", "powerlaw", "--d", "40000", "--optimizer", "sgd", "--steps", "100", "--seeds", "4",
            "--no-progress", "--force", "--out", str(tmp_path / "pl")]  # --force: measure, whatever is free now
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[1])
    rc, grown = map(int, proc.stdout.strip().splitlines()[-1].split())
    assert rc == 0, proc.stderr[-2000:]
    est = _cost.powerlaw(PowerlawConfig(d=40_000, steps=100, seeds=4, optimizer="sgd").resolved())
    assert 0.5 < grown / sum(est.parts.values()) < 2, (grown, est.parts)


# ----------------------------------------------------------------------------- folders
def test_an_earlier_run_is_replaced_whole(tmp_path, capsys):
    """An isotropic run into the folder of a spiked run leaves none of the spiked files (were left beside it)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"system": "spiked", "version": "0"}))
    (out / "gd_vs_specgd.png").write_bytes(b"png")
    rc, _, err = _run(["run", "isotropic", *TINY, "--out", str(out)], capsys)
    assert rc == 0, err
    assert not (out / "gd_vs_specgd.png").exists() and _strict((out / "config.json").read_text())["system"] == "isotropic"
    _no_temporaries(tmp_path)


def test_overwrite_replaces_a_folder_of_something_else(tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine")
    rc, _, err = _run(["run", "isotropic", *TINY, "--out", str(out), "--overwrite"], capsys)
    assert rc == 0 and not (out / "todo.txt").exists() and (out / "summary.json").is_file(), err


def test_a_failed_run_leaves_the_target_untouched(tmp_path, capsys):
    """A diverging run into the folder of a good run: exit 1, one line, every file of the good run byte for byte
    (it rewrote config.json with the failing eta before), no temporary folder left; a fresh path is not created."""
    out = tmp_path / "run"
    assert _run(["run", "isotropic", *TINY, "--out", str(out)], capsys)[0] == 0
    before = _snapshot(out)
    rc, _, err = _run(["run", "isotropic", *TINY, "--optimizer", "gd", "--eta", "50", "--out", str(out)], capsys)
    assert rc == 1 and len(err) == 1 and "diverge" in err[0], err
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)
    fresh = tmp_path / "a" / "b"
    rc, _, _ = _run(["run", "isotropic", *TINY, "--optimizer", "gd", "--eta", "50", "--out", str(fresh)], capsys)
    assert rc == 1 and not (tmp_path / "a").exists()


def test_staged_keeps_the_target_on_an_exception(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text('{"system": "isotropic"}')
    with pytest.raises(KeyboardInterrupt):
        with _folders.staged(out) as tmp:
            (tmp / "summary.json").write_text("{}")
            raise KeyboardInterrupt
    assert (out / "summary.json").read_text() == '{"system": "isotropic"}'
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("system, extra", [("isotropic", TINY), ("powerlaw", TINY),
                                           ("spiked", ["--d", "4", "--steps", "6", "--seeds", "1", "--n-record", "3",
                                                       "--no-phase-diagram", "--no-progress"])])
def test_every_json_file_is_strict(system, extra, tmp_path, capsys):
    out = tmp_path / system
    rc, _, err = _run(["run", system, *extra, "--out", str(out)], capsys)
    assert rc == 0, err
    files = sorted(out.glob("*.json"))
    assert {f.name for f in files} >= {"config.json", "summary.json"}
    for f in files:
        _strict(f.read_text())


# ----------------------------------------------------------------------------- property test of the parser
_BAD_NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e400", "abc", "", "1.5", str(2**63), str(-(2**63) - 1), "1e-300",
                "9" * 30, "0x10"]
_TINY_VALUES = {"--d": ["4", "6"], "--steps": ["3", "5"], "--seeds": ["1", "2"], "--n-record": ["2", "3"],
                "--eta": ["1e-3", "0.05"], "--m": ["4"], "--theta": ["1.0", "-0.5"], "--a": ["1.5", "2"],
                "--noise": ["0", "0.1"], "--seed": ["0", "3"], "--t-max": ["0.01"], "--B": ["2"], "--K": ["2"],
                "--batch": ["1", "2"], "--init-scale": ["0.01"], "--tol": ["0.05"], "--align": ["0.1"],
                "--delta": ["0.1"], "--eps": ["0.05"]}
_CHOICES = {"--optimizer": ["gf", "gd", "sgd", "specgd", "adam"], "--solver": ["modes", "blocks", "hierarchy", "x"],
            "--closure": ["top", "zero", "quadrature", "x"], "--polar": ["svd", "newton-schulz", "x"],
            "--init": ["identity", "orthogonal", "gaussian", "x"], "--prng": ["philox4x32", "threefry2x32", "x"],
            "--loss": ["(g**2-h**2)**2", "g**2 + import", "x", "(g**2 - h**2 - xi)**2"]}


@st.composite
def _argv(draw):
    """A ``run SYSTEM`` argument vector: mostly bad values (refused before anything runs), the rest tiny sizes
    (--d, --steps, --seeds, --n-record always set small, so a run that is accepted takes seconds)."""
    system = draw(st.sampled_from(["isotropic", "powerlaw", "spiked"]))
    args = ["run", system, "--d", "4", "--steps", "4", "--seeds", "1", "--n-record", "3", "--no-progress"]
    if system == "spiked":
        args.append("--no-phase-diagram")
    flags = draw(st.lists(st.sampled_from(sorted({**_TINY_VALUES, **_CHOICES})), min_size=1, max_size=3))
    for flag in flags:
        if flag in _CHOICES:  # half the time a name no option takes
            value = draw(st.sampled_from(_CHOICES[flag])) if draw(st.booleans()) else "nonesuch"
        elif draw(st.integers(0, 7)) > 0:  # seven in eight: a bad value
            value = draw(st.sampled_from(_BAD_NUMBERS))
        else:
            value = draw(st.sampled_from(_TINY_VALUES[flag]))
        args += [flag, value]
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(st.sampled_from(["--bogus", "extra", "--out"])))
    return args


COUNTS = {"cases": 0, "exit 2": 0, "ran": 0, "failed 1": 0, "accepted, not run": 0}


class _Accepted(Exception):
    """Raised instead of running an accepted argument vector when ``PHASEDYN_FUZZ_DRY=1`` (a long fuzzing run that
    checks the parser and every validator, the folder and the cost estimate, without running what they accept)."""


@settings(max_examples=int(os.environ.get("PHASEDYN_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=_argv())
def test_any_argv_runs_or_exits_2_with_one_line(argv, tmp_path_factory, capsys, monkeypatch):
    """Every generated vector either runs (exit 0; exit 1 with one line for a diverging run) or exits 2 with one
    line on stderr; an exception escaping main() fails the test (no traceback). 40 examples by default (most are
    refusals, the accepted ones run at d = 4, 4 steps); ``PHASEDYN_FUZZ_EXAMPLES=N PHASEDYN_FUZZ_DRY=1`` for a long
    run that stops each accepted vector after its checks; ``-s`` prints the counts."""
    if os.environ.get("PHASEDYN_FUZZ_DRY") == "1":
        from phasedyn.compare import _powerlaw_config, experiments, spiked

        def accepted(*args, **kwargs):
            raise _Accepted
        for module in (experiments, _powerlaw_config, spiked):
            monkeypatch.setattr(module, "run_staged", accepted)
    out = tmp_path_factory.mktemp("fuzz") / "run"
    if argv[-1] != "--out":  # a dangling --out is argparse's own one-line error
        argv = [*argv, "--out", str(out)]
    COUNTS["cases"] += 1
    try:
        rc, _, err = _run(argv, capsys)
    except _Accepted:
        COUNTS["accepted, not run"] += 1
        return
    COUNTS[{0: "ran", 1: "failed 1", 2: "exit 2"}[rc]] += 1
    if rc == 0:
        assert (out / "summary.json").is_file()
    else:
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert rc == 1 or not out.exists()


@pytest.fixture(scope="module", autouse=True)
def _fuzz_counts():
    """Print the property test's counts at the end of the module (seen with ``pytest -s``)."""
    yield
    if COUNTS["cases"]:
        print(f"\nfuzz counts: {COUNTS}")
        if os.environ.get("PHASEDYN_FUZZ_COUNTS"):
            Path(os.environ["PHASEDYN_FUZZ_COUNTS"]).write_text(json.dumps(COUNTS) + "\n")
