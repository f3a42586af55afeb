"""Command-line flags declared once: on the fields of each experiment's config dataclass.

A config field made with a :class:`Flag` (``seeds: int = SEEDS(8)``) is both the Python argument and the
``--seeds`` option of its ``phasedyn run`` subcommand: :func:`add_flags` builds the argparse options from
the fields (name, type from the annotation, default, help, choices), :func:`config_from_args` builds the
config back from the parsed arguments. Values are validated once, by the config's ``resolved()``.

Flags shared by several systems (seeds, seed, noise, record points, phase detector, PRNG, loss) are
defined here once, with their help text; a system gives only its own default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from phasedyn.simulate import PRNG_IMPLS, check_prng
from phasedyn.theory import Model
from phasedyn.theory.validate import INT64_MAX, check_int, check_nonnegative, check_open_interval


@dataclasses.dataclass(frozen=True)
class Flag:
    """The command-line side of one config field: its help text, choices and metavar.

    Calling it with a default gives the dataclass field: ``eta: float = Flag("step size (> 0)")(1e-3)``.
    A ``bool`` field becomes ``--NAME`` (default False) or ``--no-NAME`` (default True).
    """

    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    def __call__(self, default: Any = None) -> Any:
        return dataclasses.field(default=default, metadata={"flag": self})


SEEDS = Flag("number of seeds (>= 1)")
SEED = Flag("seed of the target w*")
NOISE = Flag("label-noise std sigma (>= 0)")
N_RECORD = Flag("log-spaced record points (>= 2)")
ALIGN = Flag("align theory and simulation where each seed first reaches |u| >= ALIGN (0 < ALIGN < 1)")
DELTA = Flag("phase detector: T1 at |u| >= delta (0 < delta < 1)")
EPS = Flag("phase detector: T2 within eps of s* (0 < eps < 1)")
PRNG = Flag("JAX generator of the SGD samples (default: JAX's; same law, other streams)",
            choices=PRNG_IMPLS)
LOSS = Flag("per-sample loss l(g, h, xi) in g = x.w, h = x.w*, xi (label noise), numbers, + - * / ** ( ) and "
            "relu tanh erf sigmoid abs Max Min exp (polynomial in xi); "
            "default phase retrieval (g**2 - h**2 - xi)**2. Simulation differentiates it, theory derives from it",
            metavar="EXPR")
STEPS = Flag("optimiser steps (>= 1)")


def _scalar_type(annotation: Any) -> type:
    """``int`` of ``int``, ``int | None``, ``Optional[int]``; the field's one non-None type."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or typing.get_origin(
        annotation) is typing.Union else (annotation,)
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) != 1 or kinds[0] not in (int, float, str, bool):
        raise TypeError(f"flag fields must be int, float, str or bool (optionally | None), got {annotation!r}")
    return kinds[0]


def flag_fields(config_cls: type) -> list[tuple[dataclasses.Field, Flag, type]]:
    """The fields of ``config_cls`` that are command-line flags, with their :class:`Flag` and scalar type."""
    hints = typing.get_type_hints(config_cls)
    return [(f, f.metadata["flag"], _scalar_type(hints[f.name])) for f in dataclasses.fields(config_cls)
            if "flag" in f.metadata]


def add_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one option per flag field of ``config_cls`` to ``parser`` (dest = the field's name); the help of a
    field with a default other than ``None`` ends with it."""
    for f, flag, kind in flag_fields(config_cls):
        name = f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(f"--no-{name}" if f.default else f"--{name}", dest=f.name, default=f.default,
                                action="store_false" if f.default else "store_true", help=flag.help)
            continue
        help_ = flag.help if f.default is None else f"{flag.help}; default %(default)s"
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=f.default, choices=flag.choices,
                            metavar=flag.metavar, help=help_)


def add_run_parser(systems: argparse._SubParsersAction, name: str, config_cls: type,
                   description: str) -> argparse.ArgumentParser:
    """Register ``phasedyn run NAME`` on the ``run`` subparsers ``systems``: the flags of ``config_cls``
    (:func:`add_flags`) plus ``--out`` and ``--no-progress``, which are not config fields."""
    parser = systems.add_parser(name, help=description, description=description)
    add_flags(parser, config_cls)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default phasedyn-out/{name}-OPTIMIZER)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_safety_flags(parser)
    return parser


def add_safety_flags(parser: argparse.ArgumentParser) -> None:
    """``--overwrite`` (replace a non-empty --out folder that holds no phasedyn run), ``--force`` (run although
    the estimated memory exceeds what the machine has) and ``--resume DIR`` (continue the run in ``DIR`` from its
    checkpoints, :mod:`._interrupt`): not config fields, arguments of the runners."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out even when it is a non-empty folder that holds no phasedyn run")
    parser.add_argument("--force", action="store_true",
                        help="run even when the estimated peak memory exceeds what this machine has available")
    parser.add_argument("--resume", type=Path, default=None, metavar="DIR",
                        help="continue the interrupted (or finished) run in DIR from its checkpoints, bit for bit; "
                             "same arguments as that run (default --out: DIR)")


def config_from_args(config_cls: type, args: argparse.Namespace) -> Any:
    """The ``config_cls`` of parsed arguments (unresolved: its ``resolved()`` validates)."""
    return config_cls(**{f.name: getattr(args, f.name) for f, _, _ in flag_fields(config_cls)})


def resolve_simulation_flags(cfg: Any) -> dict[str, Any]:
    """Validate the flags every simulated run shares (``seeds``, ``noise``, ``seed``, ``n_record``, ``align``,
    ``delta``, ``eps``, ``prng``, ``loss``) and return the resolved ``prng``, ``loss`` and ``model`` for
    ``dataclasses.replace`` (``ValueError`` naming the parameter otherwise)."""
    check_int("seeds", cfg.seeds, 1)
    check_nonnegative("noise", cfg.noise)
    check_seed(cfg.seed, cfg.seeds)
    check_int("n_record", cfg.n_record, 2)
    if cfg.align is not None:
        check_open_interval("align", cfg.align, 0.0, 1.0)
    check_open_interval("delta", cfg.delta, 0.0, 1.0)
    check_open_interval("eps", cfg.eps, 0.0, 1.0)
    model = resolved_model(cfg.loss, cfg.model)
    return {"prng": check_prng(cfg.prng), "loss": model.loss, "model": model}


def check_seed(seed: int, seeds: int) -> int:
    """``seed`` >= 0 such that the run's seeds ``seed, ..., seed + seeds - 1`` stay within int64 (JAX keys)."""
    check_int("seeds", seeds, 1)
    return check_int("seed", seed, 0, INT64_MAX - int(seeds) + 1)


def resolved_model(loss: str | None, model: Model | None = None) -> Model:
    """The :class:`~phasedyn.theory.Model` of a ``--loss`` value (LOSS), parsed once: a config's ``resolved()``
    keeps the ``model`` it parsed before while ``loss`` is still that model's text (docs/theory.md §1)."""
    if model is not None and (loss is None and model.is_phase_retrieval or loss == model.loss):
        return model
    return Model.coerce(loss)
