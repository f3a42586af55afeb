"""The ``phasedyn`` command line.

* ``phasedyn`` — the main job: every implemented system's default experiment into ``./phasedyn-out/``.
* ``phasedyn run isotropic [--d --eta --optimizer {gf,gd,sgd} --steps --seeds --noise --out DIR ...]``.
* ``phasedyn run powerlaw [--a --d --eta --optimizer --solver {modes,blocks,hierarchy} --K --closure --steps
  --seeds --out DIR ...]``.
* ``phasedyn run spiked [--theta --d --m --eta --optimizer {gd,sgd,specgd} --polar {svd,newton-schulz,muon}
  --init {identity,orthogonal,gaussian} --steps --seeds --out DIR ...]``.

Each ``run`` subcommand's options are the flag fields of its config dataclass (:data:`RUNS`, :mod:`.flags`): one
declaration each, validated by the config's ``resolved()`` (a ``ValueError`` is exit 2).
* ``phasedyn run single-index [--link --activation --loss {square,correlation} --spectrum {isotropic,powerlaw,spiked}
  --a --theta --spike {signal,orthogonal} --optimizer {gf,gd,sgd,spherical-sgd,sigma-spherical-sgd}
  --experiment {trajectory,sample-complexity} --d --eta --steps --seeds --out DIR ...]``.
* ``phasedyn sweep SYSTEM --grid NAME=START:STOP:N[:log] ... [run options] [--out STORE] [--scheduler local:N|ADDRESS]
  [--new]``: the run over a product grid of its numeric options into one xarray Dataset (:mod:`.sweep`).
* ``phasedyn reproduce p1 [--out DIR] [--quick] [--no-progress]``: [P1]'s experiments into ``DIR/p1/``
  (figures, data, ``REPORT.md``; see :mod:`.reproduce`).

Bad arguments exit with status 2 and a one-line message; a run that fails (divergence, a failed
solve) exits with status 1 and a one-line message. Ctrl-C (SIGINT) exits with status 130 and one line: during a
simulation the run stops after its current ~0.5 s chunk and keeps its partial results in its folder (summary.json
``"interrupted": true``), which ``phasedyn run SYSTEM ... --resume DIR`` continues from its checkpoints, bit for
bit (:mod:`._interrupt`); elsewhere nothing is kept.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ._powerlaw_config import PowerlawConfig, run_powerlaw
from ._sample_complexity import report as sample_complexity_report
from ._single_index import SingleIndexConfig, run_single_index
from ._folders import check_out
from ._interrupt import Interrupted
from .experiments import DEFAULTS, IsotropicConfig, run_isotropic
from .flags import add_flags, add_run_parser, config_from_args
from .output import package_version
from .reproduce import check_reproduce_out, reproduce_p1
from .spiked import HELP as _SPIKED_HELP
from .spiked import SpikedConfig, run_spiked
from .spiked import report as _spiked_report

#: ``phasedyn run SYSTEM``: the config whose fields are its flags (:mod:`.flags`), the runner, the help line
RUNS: dict[str, tuple[type, object, str]] = {
    "isotropic": (IsotropicConfig, run_isotropic, "isotropic data, (u, s) system"),
    "powerlaw": (PowerlawConfig, run_powerlaw,
                 "power-law spectrum lambda_i ~ i^-a: exact modes, blocks or hierarchy"),
    "spiked": (SpikedConfig, run_spiked, _SPIKED_HELP),
    "single-index": (SingleIndexConfig, run_single_index,
                     "single-index models y = link(x.w*) + xi, any link and activation, anisotropic data ([P3])"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="phasedyn", description="Learning dynamics of phase retrieval: theory vs simulation.")
    p.add_argument("--version", action="version", version=f"phasedyn {package_version()}")
    p.add_argument("--out", type=Path, default=Path("phasedyn-out"), help="output folder of the main job")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="run one system's experiment")
    systems = run.add_subparsers(dest="system", parser_class=_Parser, required=True)
    for name, (config_cls, _, help_) in RUNS.items():
        add_run_parser(systems, name, config_cls, help_)

    sweep = sub.add_parser("sweep", help="run one system's experiment over a grid of its options (xarray store)")
    sweep_systems = sweep.add_subparsers(dest="sweep_system", parser_class=_Parser, required=True)
    for name, (config_cls, _, help_) in RUNS.items():
        sp = sweep_systems.add_parser(name, help=help_, description=f"{help_}: over a grid of options")
        add_flags(sp, config_cls)
        sp.add_argument("--grid", action="append", required=True, metavar="NAME=START:STOP:N[:log]",
                        help="a numeric option and N values from START to STOP (linear, or geometric with :log); "
                             "repeat for a product grid")
        sp.add_argument("--out", dest="sweep_out", type=Path, default=None, metavar="STORE",
                        help=f"the store: NAME.nc a netCDF file, else a zarr folder (default phasedyn-out/"
                             f"sweep-{name}.zarr); run again to fill in what is missing")
        sp.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                        help="run the points on Dask: a local cluster of N worker processes, or a scheduler's "
                             "address (needs phasedyn[distributed]); default: in this process")
        sp.add_argument("--new", action="store_true", help="replace a store that holds a sweep of other options")
        sp.add_argument("--force", action="store_true",
                        help="run even when a point's estimated peak memory exceeds what this machine has")

    rep = sub.add_parser("reproduce", help="regenerate a paper's experiments with a predicted-vs-measured report")
    rep.add_argument("paper", choices=("p1",), help="p1: Braun et al., arXiv:2511.18661 (power-law phase retrieval)")
    # own dests, so that `phasedyn --out X reproduce p1` is not overwritten by this parser's defaults
    rep.add_argument("--out", dest="rep_out", metavar="DIR", type=Path, default=None,
                     help="output folder (default phasedyn-out); files go to OUT/p1/")
    rep.add_argument("--quick", action="store_true", help="reduced horizons, seeds and dimensions (< 2 min)")
    rep.add_argument("--no-progress", dest="rep_no_progress", action="store_true", help="no progress bars")
    rep.add_argument("--overwrite", action="store_true",
                     help="replace OUT/p1 even when it is a non-empty folder that holds no phasedyn output")
    return p


def _reproduce(args: argparse.Namespace, progress: bool | None) -> int:
    out = Path(args.rep_out if args.rep_out is not None else args.out)
    progress = False if args.rep_no_progress else progress
    mode = "quick" if args.quick else "full"
    check_reproduce_out(out, args.overwrite)  # before the banner: a refused folder prints one line only
    print(f"phasedyn {package_version()}: reproducing [P1] ({mode}) into {(out / 'p1').resolve()}")
    res = reproduce_p1(out, quick=args.quick, progress=progress, overwrite=args.overwrite)
    for name, r in res["results"].items():
        folder = r["files"][0].parent.resolve()
        st = r["setting"]
        kind = "paper setting" if st["complete"] else "paper setting (partly ours)" if st["paper"] else "reduced"
        print(f"[{name}] {kind}: {folder}")
        for f in r["files"]:
            print(f"    {f.name}")
    print(f"report: {Path(res['report']).resolve()}  (total {res['total_s']:.0f} s)")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import make_sweep, run_sweep

    config_cls, _, _ = RUNS[args.sweep_system]
    sw = make_sweep(args.sweep_system, config_from_args(config_cls, args), args.grid)
    store = args.sweep_out or Path("phasedyn-out") / f"sweep-{args.sweep_system}.zarr"
    ds = run_sweep(sw, store, new=args.new, force=args.force, scheduler=args.scheduler,
                   report=lambda line: print(line, flush=True))
    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    print(f"store: {Path(store).resolve()} ({dims}); read it with xarray.open_dataset")
    return 0


def _u_gap(s: dict) -> str:
    """``max |u gap| ...`` of a summary: over the theory's valid part when a truncated hierarchy stopped being valid
    (``params.hierarchy_valid_until``, per seed), ``n/a`` when there is no finite gap."""
    gap = s["gap"]["u"]["max"]
    until = [t for t in (s["params"].get("hierarchy_valid_until") or []) if t is not None]
    valid = f"theory valid until t = {min(until):.4g}" if until else None
    if gap is None or not math.isfinite(gap):
        return f"max |u gap| n/a ({valid})" if valid else "max |u gap| n/a"
    return f"max |u gap| {gap:.3g} ({valid})" if valid else f"max |u gap| {gap:.3g}"


def _report(name: str, result: dict) -> None:
    s = result["summary"]
    if s["system"].startswith("spiked"):
        print(_spiked_report(name, result))
        return
    if s["system"] == "single-index-sample-complexity":
        print(sample_complexity_report(name, result))
        return
    ph = s["phases"]
    fmt = lambda x: "never" if x is None else f"{x:.4g}"  # noqa: E731
    print(f"[{name}] T1 theory {fmt(ph['T1']['theory'])} / simulation {fmt(ph['T1']['simulation'])}; "
          f"{_u_gap(s)}; {s['params'].get('wall_time_s', 0):.1f} s")
    for f in result["files"]:
        print(f"    {f}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``phasedyn`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    progress = False if args.no_progress else None
    try:
        if args.command == "reproduce":
            return _reproduce(args, progress)
        if args.command == "sweep":
            return _sweep(args)
        if args.command is None:
            out = Path(args.out)
            for name, _, _ in DEFAULTS:  # every folder checked before the first run
                check_out(out / name)
            print(f"phasedyn {package_version()}: running the default experiments into {out.resolve()}")
            for name, runner, cfg in DEFAULTS:
                _report(name, runner(cfg, out / name, progress=progress))
            print(f"done: figures and data in {out.resolve()}")
            return 0
        config_cls, runner, _ = RUNS[args.system]
        cfg = config_from_args(config_cls, args).resolved()
        name = f"{args.system}-{cfg.optimizer}"
        out = args.out or args.resume or Path("phasedyn-out") / name
        _report(name, runner(cfg, out, progress=progress, overwrite=args.overwrite, force=args.force,
                             resume=args.resume))
        return 0
    except Interrupted as err:  # a simulation stopped by SIGINT: its partial results kept (compare/_interrupt.py)
        how = (f"--resume {err.folder}" if args.command == "run" else  # the main job has no --resume of its own
               f"phasedyn run SYSTEM --resume {err.folder} and the arguments in its config.json")
        print("phasedyn: interrupted" if err.folder is None else f"phasedyn: interrupted at step {err.step_reached} of "
              f"{err.steps}; partial results in {err.folder} (continue with {how})", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # outside a simulation, or a second SIGINT: nothing kept
        print("phasedyn: interrupted", file=sys.stderr)
        return 130
    except ValueError as err:
        print(f"phasedyn: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:  # DivergenceError, SolveError; a folder that failed while written
        print(f"phasedyn: run failed: {_one_line(err)}", file=sys.stderr)
        return 1
    except MemoryError as err:  # an allocation the estimate missed (run with --force, or an estimate too low)
        print(f"phasedyn: run failed: out of memory ({_one_line(err) or 'MemoryError'}); reduce --d, --seeds or "
              "--n-record", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a multi-line message joined by spaces)."""
    return " ".join(str(err).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
