"""The ``phasedyn`` command line.

* ``phasedyn`` — the main job: every implemented system's default experiment into ``./phasedyn-out/``.
* ``phasedyn run isotropic [--d --eta --optimizer {gf,gd,sgd} --steps --seeds --noise --out DIR ...]``.
* ``phasedyn run powerlaw [--a --d --eta --optimizer --solver {modes,blocks,hierarchy} --K --closure --steps --seeds --out DIR]``.
* ``phasedyn run spiked [--theta --d --m --eta --optimizer {gd,sgd,specgd} --polar {svd,newton-schulz}
  --init {identity,orthogonal,gaussian} --steps --seeds --out DIR]``.
* ``phasedyn reproduce p1 [--out DIR] [--quick] [--no-progress]``: [P1]'s experiments into ``DIR/p1/``
  (figures, data, ``REPORT.md``; see :mod:`.reproduce`).

Bad arguments exit with status 2 and a one-line message; a run that fails (divergence, a failed
solve) exits with status 1 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from phasedyn.simulate import PRNG_IMPLS
from phasedyn.theory import Model

from .experiments import DEFAULTS, IsotropicConfig, run_isotropic
from .flags import LOSS, add_flags, config_from_args
from .output import package_version
from ._powerlaw_config import PowerlawConfig, run_powerlaw
from .powerlaw import SOLVERS
from .reproduce import reproduce_p1
from .spiked import add_parser as _add_spiked_parser
from .spiked import config_from_args as _spiked_config
from .spiked import report as _spiked_report
from .spiked import run_spiked


#: ``phasedyn run SYSTEM``: the config whose fields are its flags (:mod:`.flags`), the runner, the help line
RUNS: dict[str, tuple[type, object, str]] = {
    "isotropic": (IsotropicConfig, run_isotropic, "isotropic data, (u, s) system"),
}

def _add_loss(parser: argparse.ArgumentParser) -> None:  # until powerlaw's and spiked's configs carry LOSS
    parser.add_argument("--loss", metavar=LOSS.metavar, default=None, help=LOSS.help)


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
        sp = systems.add_parser(name, help=help_)
        add_flags(sp, config_cls)
        sp.add_argument("--out", type=Path, default=None, help=f"output folder (default phasedyn-out/{name}-OPTIMIZER)")
        sp.add_argument("--no-progress", action="store_true", help="no progress bars")

    pl = systems.add_parser("powerlaw", help="power-law spectrum lambda_i ~ i^-a: exact modes, blocks or hierarchy")
    c = PowerlawConfig()
    pl.add_argument("--a", type=float, default=c.a, help="power-law exponent (> 0; [P1]'s asymptotics need a > 1)")
    pl.add_argument("--d", type=int, default=c.d, help="dimension (>= 2)")
    pl.add_argument("--eta", type=float, default=c.eta, help="step size (> 0)")
    pl.add_argument("--optimizer", choices=("gf", "gd", "sgd"), default=c.optimizer,
                    help="gf: GD vs gradient flow; gd: GD vs its exact map; sgd: online SGD vs its mean field")
    pl.add_argument("--solver", choices=SOLVERS, default=c.solver, help="theory: exact per-mode, blocks, hierarchy")
    pl.add_argument("--B", type=int, default=c.B, help="number of log-spaced blocks (--solver blocks)")
    pl.add_argument("--K", type=int, default=c.K, help="hierarchy depth (--solver hierarchy, >= 1)")
    pl.add_argument("--closure", choices=("top", "zero", "quadrature"), default=c.closure, help="hierarchy closure")
    pl.add_argument("--steps", type=int, default=c.steps, help="optimiser steps (>= 1)")
    pl.add_argument("--seeds", type=int, default=c.seeds, help="number of seeds (>= 1)")
    pl.add_argument("--noise", type=float, default=c.noise, help="label-noise std sigma (>= 0)")
    pl.add_argument("--seed", type=int, default=c.seed, help="seed of the target w*")
    pl.add_argument("--n-record", type=int, default=c.n_record, help="log-spaced record points")
    pl.add_argument("--align", type=float, default=None, help="shift theory in time to cross |u| = ALIGN with simulation")
    pl.add_argument("--delta", type=float, default=c.delta, help="phase detector: T1 at |u| >= delta")
    pl.add_argument("--eps", type=float, default=c.eps, help="phase detector: T2 within eps of s*")
    pl.add_argument("--prng", choices=PRNG_IMPLS, default=None,
                    help="JAX generator of the SGD samples (default: JAX's; philox4x32 is ~1.6-2x faster on CPU)")
    pl.add_argument("--out", type=Path, default=None, help="output folder (default phasedyn-out/powerlaw-OPT)")
    pl.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_loss(pl)
    _add_spiked_parser(systems)
    _add_loss(systems.choices["spiked"])

    rep = sub.add_parser("reproduce", help="regenerate a paper's experiments with a predicted-vs-measured report")
    rep.add_argument("paper", choices=("p1",), help="p1: Braun et al., arXiv:2511.18661 (power-law phase retrieval)")
    # own dests, so that `phasedyn --out X reproduce p1` is not overwritten by this parser's defaults
    rep.add_argument("--out", dest="rep_out", metavar="DIR", type=Path, default=None,
                     help="output folder (default phasedyn-out); files go to OUT/p1/")
    rep.add_argument("--quick", action="store_true", help="reduced horizons, seeds and dimensions (< 2 min)")
    rep.add_argument("--no-progress", dest="rep_no_progress", action="store_true", help="no progress bars")
    return p


def _reproduce(args: argparse.Namespace, progress: bool | None) -> int:
    out = Path(args.rep_out if args.rep_out is not None else args.out)
    progress = False if args.rep_no_progress else progress
    mode = "quick" if args.quick else "full"
    print(f"phasedyn {package_version()}: reproducing [P1] ({mode}) into {(out / 'p1').resolve()}")
    res = reproduce_p1(out, quick=args.quick, progress=progress)
    for name, r in res["results"].items():
        folder = r["files"][0].parent.resolve()
        st = r["setting"]
        kind = "paper setting" if st["complete"] else "paper setting (partly ours)" if st["paper"] else "reduced"
        print(f"[{name}] {kind}: {folder}")
        for f in r["files"]:
            print(f"    {f.name}")
    print(f"report: {Path(res['report']).resolve()}  (total {res['total_s']:.0f} s)")
    return 0


def _report(name: str, result: dict) -> None:
    s = result["summary"]
    if s["system"].startswith("spiked"):
        print(_spiked_report(name, result))
        return
    ph = s["phases"]
    fmt = lambda x: "never" if x is None else f"{x:.4g}"  # noqa: E731
    print(f"[{name}] T1 theory {fmt(ph['T1']['theory'])} / simulation {fmt(ph['T1']['simulation'])}; "
          f"max |u gap| {s['gap']['u']['max']:.3g}; {s['params'].get('wall_time_s', 0):.1f} s")
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
        if args.command is None:
            out = Path(args.out)
            print(f"phasedyn {package_version()}: running the default experiments into {out.resolve()}")
            for name, runner, cfg in DEFAULTS:
                _report(name, runner(cfg, out / name, progress=progress))
            print(f"done: figures and data in {out.resolve()}")
            return 0
        if args.system in RUNS:
            config_cls, runner, _ = RUNS[args.system]
            cfg = config_from_args(config_cls, args).resolved()
            name = f"{args.system}-{cfg.optimizer}"
            _report(name, runner(cfg, args.out or Path("phasedyn-out") / name, progress=progress))
            return 0
        if args.system == "powerlaw":
            cfg = PowerlawConfig(a=args.a, d=args.d, eta=args.eta, optimizer=args.optimizer, solver=args.solver,
                                 B=args.B, K=args.K, closure=args.closure, steps=args.steps, seeds=args.seeds,
                                 noise=args.noise, seed=args.seed, n_record=args.n_record, align=args.align,
                                 delta=args.delta, eps=args.eps, prng=args.prng, loss=args.loss).resolved()
            out = args.out or Path("phasedyn-out") / f"powerlaw-{cfg.optimizer}"
            _report(f"powerlaw-{cfg.optimizer}", run_powerlaw(cfg, out, progress=progress))
            return 0
        if args.system == "spiked":
            if args.loss is not None and not Model(args.loss).is_phase_retrieval:
                raise ValueError("--loss: run spiked simulates the two-layer network, derived for the phase-retrieval "
                                 "loss only (allowed: (g**2 - h**2 - xi)**2); the one-neuron system takes any loss "
                                 "from Python: phasedyn.theory.spiked.neuron_system(model=...)")
            cfg = _spiked_config(args)
            out = args.out or Path("phasedyn-out") / f"spiked-{cfg.optimizer}"
            _report(f"spiked-{cfg.optimizer}", run_spiked(cfg, out, progress=progress))
            return 0
    except ValueError as err:
        print(f"phasedyn: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # DivergenceError, SolveError
        print(f"phasedyn: run failed: {err}", file=sys.stderr)
        return 1
    parser.error("unknown command")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
