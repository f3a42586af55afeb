"""The ``phasedyn`` command line.

* ``phasedyn`` — the main job: every implemented system's default experiment into ``./phasedyn-out/``.
* ``phasedyn run isotropic [--d --eta --optimizer {gf,gd,sgd} --steps --seeds --noise --out DIR ...]``.

Bad arguments exit with status 2 and a one-line message; a run that fails (divergence, a failed
solve) exits with status 1 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .experiments import DEFAULTS, IsotropicConfig, run_isotropic
from .output import package_version


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
    iso = systems.add_parser("isotropic", help="isotropic data, (u, s) system")
    d = IsotropicConfig()
    iso.add_argument("--optimizer", choices=("gf", "gd", "sgd"), default=d.optimizer,
                     help="gf: GD at small eta vs gradient flow; gd: exact GD map; sgd: online SGD vs its ODE")
    iso.add_argument("--d", type=int, default=d.d, help="dimension (>= 2)")
    iso.add_argument("--eta", type=float, default=None, help="step size (> 0); default by optimizer")
    iso.add_argument("--steps", type=int, default=None, help="optimiser steps (>= 1); default ceil(t_max/eta)")
    iso.add_argument("--t-max", type=float, default=d.t_max, help="model time t = eta*steps when --steps is not given")
    iso.add_argument("--seeds", type=int, default=d.seeds, help="number of seeds (>= 1)")
    iso.add_argument("--noise", type=float, default=d.noise, help="label-noise std sigma (>= 0)")
    iso.add_argument("--seed", type=int, default=d.seed, help="seed of the target w*")
    iso.add_argument("--n-record", type=int, default=d.n_record, help="log-spaced record points")
    iso.add_argument("--align", type=float, default=None, help="align theory and simulation at |u| >= ALIGN")
    iso.add_argument("--delta", type=float, default=d.delta, help="phase detector: T1 at |u| >= delta")
    iso.add_argument("--eps", type=float, default=d.eps, help="phase detector: T2 within eps of s*")
    iso.add_argument("--out", type=Path, default=None, help="output folder (default phasedyn-out/isotropic-OPT)")
    iso.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _report(name: str, result: dict) -> None:
    s = result["summary"]
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
        if args.command is None:
            out = Path(args.out)
            print(f"phasedyn {package_version()}: running the default experiments into {out.resolve()}")
            for name, runner, cfg in DEFAULTS:
                _report(name, runner(cfg, out / name, progress=progress))
            print(f"done: figures and data in {out.resolve()}")
            return 0
        if args.system == "isotropic":
            cfg = IsotropicConfig(optimizer=args.optimizer, d=args.d, eta=args.eta, steps=args.steps, t_max=args.t_max,
                                  seeds=args.seeds, noise=args.noise, seed=args.seed, n_record=args.n_record,
                                  align=args.align, delta=args.delta, eps=args.eps)
            cfg = cfg.resolved()
            out = args.out or Path("phasedyn-out") / f"isotropic-{cfg.optimizer}"
            _report(f"isotropic-{cfg.optimizer}", run_isotropic(cfg, out, progress=progress))
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
