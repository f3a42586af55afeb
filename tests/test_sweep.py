"""``phasedyn sweep`` (compare/sweep.py, issue 15 §1): grids validated before any work, one labelled Dataset whose
points are the ``phasedyn run`` results themselves, resumable stores, netCDF and zarr, and Dask workers that give
the in-process numbers bit for bit, also when a worker dies mid-sweep."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from phasedyn.compare import sweep as S  # noqa: E402
from phasedyn.compare.cli import main  # noqa: E402
from phasedyn.compare.experiments import IsotropicConfig  # noqa: E402

BASE = ["--optimizer", "gd", "--d", "100", "--seeds", "2", "--n-record", "20"]
GRID = ["--grid", "eta=0.01:0.04:3:log"]
CFG = IsotropicConfig(optimizer="gd", d=100, seeds=2, n_record=20)


def _sweep(tmp_path: Path, *extra: str, store: str = "s.zarr") -> tuple[int, Path]:
    out = tmp_path / store
    return main(["sweep", "isotropic", *BASE, *GRID, *extra, "--out", str(out)]), out


def _no_timing(ds):
    """The results without the one variable that is not a result (the wall time of each point)."""
    return ds.drop_vars("wall_time_s").drop_attrs()


@pytest.mark.parametrize("grid, message", [
    ("eta", "NAME=START:STOP:N"), ("bogus=1:2:3", "numeric option"), ("optimizer=1:2:2", "numeric option"),
    ("eta=0:1:3:log", "START > 0"), ("eta=1:2:x", "N an integer"), ("eta=1:2:0", "N"), ("eta=1:inf:3", "finite"),
    ("eta=1:2:3:cubic", "lin or log"), ("d=10:12:5", "distinct integers"), ("eta=-1:1:3", "at the grid point eta=-1"),
    ("seeds=0:4:5", "at the grid point seeds=0"),
])
def test_bad_grids_exit_2_with_one_line_and_write_nothing(grid, message, tmp_path, capsys):
    rc = main(["sweep", "isotropic", *BASE, "--grid", grid, "--out", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_one_option_twice_and_too_many_points_are_refused():
    with pytest.raises(ValueError, match="at most once"):
        S.make_sweep("isotropic", CFG, ["eta=0.01:0.02:2", "eta=0.01:0.03:2"])
    with pytest.raises(ValueError, match="exceed the limit"):
        S.make_sweep("isotropic", CFG, ["eta=0.01:0.02:1000", "noise=0:1:1000"])


def test_points_are_the_run_results_and_a_rerun_does_no_work(tmp_path, capsys, monkeypatch):
    rc, store = _sweep(tmp_path)
    assert rc == 0, capsys.readouterr().err
    ds = xr.open_zarr(store).load()
    assert dict(ds.sizes)["eta"] == 3 and ds["done"].values.all()
    assert np.allclose(ds["eta"].values, np.geomspace(0.01, 0.04, 3))
    options = json.loads(ds.attrs["phasedyn_sweep"])
    assert options["system"] == "isotropic" and options["grid"]["eta"] == ds["eta"].values.tolist()
    # each point equals `phasedyn run isotropic` at that eta, bit for bit (one code path)
    for i, eta in enumerate(ds["eta"].values):
        out = tmp_path / f"run{i}"
        assert main(["run", "isotropic", *BASE, "--eta", repr(float(eta)), "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        with np.load(out / "trajectories.npz") as z:
            n = int(ds["n_records"][i])
            for k in ("t", "theory_u", "sim_u_mean", "sim_s_std", "theory_mse"):
                assert np.array_equal(ds[k][i, :n].values, z[k]), k
            assert np.isnan(ds["t"][i, n:].values).all()
        assert float(ds["phases_T1_theory"][i]) == summary["phases"]["T1"]["theory"]
        assert float(ds["gap_u_max"][i]) == summary["gap"]["u"]["max"]
    capsys.readouterr()
    monkeypatch.setattr(S, "run_point", lambda *a, **k: pytest.fail("a rerun computed a point"))
    assert _sweep(tmp_path)[0] == 0
    assert "3 points (3 already in" in capsys.readouterr().out
    xr.testing.assert_identical(xr.open_zarr(store).load(), ds)


def test_an_interrupted_sweep_keeps_its_points_and_resumes(tmp_path, capsys, monkeypatch):
    real, calls = S.run_point, []

    def stop_at_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(S, "run_point", stop_at_the_third)
    rc, store = _sweep(tmp_path)
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    part = xr.open_zarr(store).load()
    assert part["done"].values.tolist() == [True, True, False] and np.isnan(part["theory_u"][2].values).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary store left
    monkeypatch.setattr(S, "run_point", real)
    assert _sweep(tmp_path)[0] == 0
    assert "3 points (2 already in" in capsys.readouterr().out
    resumed = xr.open_zarr(store).load()
    assert _sweep(tmp_path / "fresh")[0] == 0
    xr.testing.assert_identical(_no_timing(resumed), _no_timing(xr.open_zarr(tmp_path / "fresh" / "s.zarr").load()))


def test_stores_of_other_options_and_foreign_paths_are_refused(tmp_path, capsys):
    rc, store = _sweep(tmp_path)
    assert rc == 0
    capsys.readouterr()
    rc = main(["sweep", "isotropic", *BASE[:-2], "--n-record", "30", *GRID, "--out", str(store)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "run.n_record" in err[0] and "--new" in err[0], err
    assert main(["sweep", "isotropic", *BASE[:-2], "--n-record", "30", *GRID, "--out", str(store), "--new"]) == 0
    assert int(xr.open_zarr(store)["n_records"].max()) > 20
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    for bad in ("notes", "file", "file/under.zarr"):
        capsys.readouterr()
        rc = main(["sweep", "isotropic", *BASE, *GRID, "--out", str(tmp_path / bad), "--new"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--out" in err[0], (bad, err)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine" and (tmp_path / "file").read_text() == "x"


def test_netcdf_store_holds_the_same_dataset(tmp_path):
    assert _sweep(tmp_path)[0] == 0 and _sweep(tmp_path, store="s.nc")[0] == 0
    zarr_ds = xr.open_zarr(tmp_path / "s.zarr").load()
    with xr.open_dataset(tmp_path / "s.nc") as nc:
        xr.testing.assert_identical(_no_timing(nc.load()), _no_timing(zarr_ds))


@pytest.mark.slow
def test_dask_workers_give_the_in_process_dataset_also_when_one_dies(tmp_path):
    """A 2-worker LocalCluster: the same Dataset as in-process; then a worker killed (SIGKILL, its nanny starts
    another) while points are in flight: no point lost, none twice, the same numbers."""
    distributed = pytest.importorskip("distributed")
    import signal

    sweep = S.make_sweep("isotropic", IsotropicConfig(optimizer="sgd", d=200, seeds=2, n_record=20, t_max=1.0),
                         ["eta=2e-5:8e-5:4:log"])
    local = S.run_sweep(sweep, tmp_path / "local.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        on_dask = S.run_sweep(sweep, tmp_path / "dask.zarr", scheduler=cl.scheduler_address)
        xr.testing.assert_identical(_no_timing(on_dask), _no_timing(local))
        with distributed.Client(cl) as client:
            pids = client.run(os.getpid)
        killed = []

        def kill_one(line: str) -> None:
            if line.startswith("[1/") and not killed:  # one point done, the other worker's point in flight
                killed.append(next(iter(pids.values())))
                os.kill(killed[0], signal.SIGKILL)

        lines = []
        again = S.run_sweep(sweep, tmp_path / "killed.zarr", scheduler=cl.scheduler_address,
                            report=lambda line: (lines.append(line), kill_one(line)))
    assert killed and sum(line.startswith("[") for line in lines) == 4, lines
    xr.testing.assert_identical(_no_timing(again), _no_timing(local))
