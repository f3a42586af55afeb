"""The command line: every ``phasedyn run`` option declared once (on its config's fields), the model parsed once,
one strict JSON writer, and the report line of a truncated hierarchy."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import phasedyn.compare as C
from phasedyn.compare import _powerlaw_config, experiments
from phasedyn.compare.cli import RUNS, _parser, _report, main
from phasedyn.compare.flags import config_from_args, flag_fields
from phasedyn.compare.output import to_json, write_json
from phasedyn.theory import Model

OTHER_LOSS = "(g**2-h**2)**2*(1+h**2)"
#: the options of every `run` subcommand that are no config field (--overwrite, --force: arguments of the runners)
NOT_CONFIG = {"help", "out", "no_progress", "overwrite", "force", "resume"}

#: the options of `run powerlaw` / `run spiked` before they were built from their configs: all still accepted
LEGACY = {
    "powerlaw": "--a --d --eta --optimizer --solver --B --K --closure --steps --seeds --noise --seed --n-record "
                "--align --delta --eps --prng --out --no-progress --loss",
    "spiked": "--theta --d --m --eta --optimizer --polar --init --init-scale --batch --steps --seeds --seed "
              "--n-record --tol --no-phase-diagram --out --no-progress --loss",
}


def _strict(text: str) -> object:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def _subparser(system: str):
    run = next(a for a in _parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith(" run"))
    return run._subparsers._group_actions[0].choices[system]


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


@pytest.mark.parametrize("system", sorted(RUNS))
def test_every_run_option_is_one_config_field(system, capsys):
    """The options of ``phasedyn run SYSTEM --help`` are exactly its config's flag fields (each once, by its own
    name) plus --out / --no-progress; every config field but the parsed ``model`` is a flag; the defaults of the
    parsed command line are the config's."""
    config_cls = RUNS[system][0]
    with pytest.raises(SystemExit) as exc:
        main(["run", system, "--help"])
    assert exc.value.code == 0
    usage = capsys.readouterr().out.split("\n\n")[0]
    in_help = re.findall(r"\[(--[\w-]+)", usage)
    assert len(in_help) == len(set(in_help)), in_help  # one declaration each
    fields = flag_fields(config_cls)
    names = {f"--no-{f.name}".replace("_", "-") if kind is bool and f.default else f"--{f.name}".replace("_", "-")
             for f, _, kind in fields}
    assert set(in_help) == names | {"--out", "--no-progress", "--overwrite", "--force", "--resume"}
    assert {f.name for f in dataclasses.fields(config_cls)} - {f.name for f, _, _ in fields} == {"model"}
    dests = [a.dest for a in _subparser(system)._actions]
    assert len(dests) == len(set(dests)) and set(dests) == {f.name for f, _, _ in fields} | NOT_CONFIG
    args = _parser().parse_args(["run", system])
    assert config_from_args(config_cls, args) == config_cls()


@pytest.mark.parametrize("system", sorted(LEGACY))
def test_earlier_option_names_and_defaults_still_work(system):
    opts = {o for a in _subparser(system)._actions for o in a.option_strings}
    assert set(LEGACY[system].split()) <= opts
    cfg = config_from_args(RUNS[system][0], _parser().parse_args(["run", system]))
    if system == "spiked":
        assert (cfg.m, cfg.steps, cfg.phase_diagram, cfg.loss) == (None, None, True, None)
        args = _parser().parse_args(["run", "spiked", "--no-phase-diagram", "--init-scale", "0.02", "--m", "8"])
        cfg = config_from_args(RUNS[system][0], args)
        assert (cfg.phase_diagram, cfg.init_scale, cfg.m) == (False, 0.02, 8)
    else:
        assert (cfg.B, cfg.K, cfg.n_record, cfg.align, cfg.loss) == (100, 16, 300, None, None)


def test_spiked_refuses_another_loss_in_its_config(tmp_path, capsys):
    """The refusal lives in SpikedConfig.resolved (Python and command line alike): exit 2, one line naming --loss,
    nothing written."""
    with pytest.raises(ValueError, match="--loss: run spiked simulates the two-layer network"):
        C.SpikedConfig(loss=OTHER_LOSS).resolved()
    out = tmp_path / "sp"
    assert _exit_code(["run", "spiked", "--loss", OTHER_LOSS, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--loss" in err, err
    assert not out.exists()
    cfg = C.SpikedConfig(loss="(g**2 - h**2 - xi)**2").resolved()
    assert cfg.model.is_phase_retrieval and cfg.loss == Model().loss


@pytest.mark.parametrize("argv, word", [
    (["--K", "0"], "K"), (["--B", "0"], "B"), (["--a", "-1"], "a"), (["--align", "1.5"], "align"),
    (["--delta", "0"], "delta"), (["--loss", "g**2 + import"], "loss"),
])
def test_powerlaw_bad_value_exits_2_before_writing(argv, word, tmp_path, capsys):
    out = tmp_path / "pl"
    assert _exit_code(["run", "powerlaw", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err, err
    assert not out.exists()


@pytest.mark.parametrize("config_cls", [C.IsotropicConfig, C.PowerlawConfig, C.SpikedConfig])
def test_resolved_parses_the_loss_once(config_cls):
    """resolved() carries the parsed Model; resolving again keeps that object; a changed loss is parsed anew."""
    loss = OTHER_LOSS if config_cls is not C.SpikedConfig else None
    cfg = config_cls(loss=loss).resolved()
    assert isinstance(cfg.model, Model) and cfg.model.loss == cfg.loss == Model.coerce(loss).loss
    assert cfg.resolved().model is cfg.model
    if loss is not None:
        assert dataclasses.replace(cfg, loss=None).resolved().model.is_phase_retrieval


@pytest.mark.parametrize("module, config, runner, overlay", [
    (_powerlaw_config, C.PowerlawConfig(d=30, steps=40, seeds=1, n_record=10, loss=OTHER_LOSS), "run_powerlaw",
     "overlay_powerlaw"),
    (experiments, C.IsotropicConfig(d=30, steps=40, seeds=1, n_record=10, loss=OTHER_LOSS), "run_isotropic",
     "overlay_isotropic"),
])
def test_the_resolved_model_reaches_the_overlay(module, config, runner, overlay, tmp_path, monkeypatch):
    """The runner hands the config's own Model object to overlay_* (no second parse of --loss); config.json is strict
    JSON with the loss text and no parsed object."""
    cfg = config.resolved()
    seen = []
    inner = getattr(module, overlay)

    def spy(*args, **kwargs):
        seen.append(kwargs["model"] if "model" in kwargs else args[-1])
        return inner(*args, **kwargs)

    monkeypatch.setattr(module, overlay, spy)
    getattr(module, runner)(cfg, tmp_path, progress=False)
    assert len(seen) == 1 and seen[0] is cfg.model
    written = _strict((tmp_path / "config.json").read_text())
    assert written["loss"] == cfg.loss and "model" not in written
    _strict((tmp_path / "summary.json").read_text())


def test_one_strict_json_writer(tmp_path):
    data = {"a": np.array([1.0, np.nan]), "b": np.float64(np.inf), "c": Path("x/y"), "d": Model(), "e": (1, -math.inf),
            "f": {"g": np.int64(3), "h": None, "i": True}}
    got = _strict(write_json(tmp_path / "x.json", data).read_text())
    assert got == {"a": [1.0, None], "b": None, "c": "x/y", "d": Model().loss, "e": [1, None],
                   "f": {"g": 3, "h": None, "i": True}}
    assert to_json(float("nan")) is None
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write_json(tmp_path / "bad.json", {"x": object()})


def test_compare_writes_json_only_through_output():
    """No second JSON writer under compare/: json.dumps and allow_nan appear in output.py alone."""
    root = Path(C.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if p.name != "output.py"
                 and ("json.dumps(" in p.read_text() or "allow_nan" in p.read_text())]
    assert offenders == []


def _summary(gap, until=None):
    return {"system": "powerlaw-gd-hierarchy-K16-top", "phases": {"T1": {"theory": 2.0, "simulation": 2.1}},
            "gap": {"u": {"max": gap, "mean": gap}}, "params": {"wall_time_s": 1.0, "hierarchy_valid_until": until}}


@pytest.mark.parametrize("gap, until, expect", [
    (None, [3.25, None], "max |u gap| n/a (theory valid until t = 3.25)"),
    (float("nan"), [4.0, 3.25], "max |u gap| n/a (theory valid until t = 3.25)"),
    (1.5e-13, [3.25, None], "max |u gap| 1.5e-13 (theory valid until t = 3.25)"),
    (2e-5, None, "max |u gap| 2e-05;"),
    (None, None, "max |u gap| n/a;"),
])
def test_report_of_a_gap_past_validity(gap, until, expect, capsys):
    _report("powerlaw-gd", {"summary": _summary(gap, until), "files": []})
    line = capsys.readouterr().out
    assert expect in line and "nan" not in line, line


def test_spiked_overlay_alias_is_gone():
    import phasedyn.compare.spiked as CS

    assert "SpikedOverlay" not in C.__all__ and not hasattr(C, "SpikedOverlay") and not hasattr(CS, "SpikedOverlay")


def test_run_without_options_is_the_main_jobs_experiment():
    """Issue 15 §3: `phasedyn run SYSTEM` with no options runs the main job's experiment of that system (the power
    law defaulted to gd while the main job ran gf)."""
    from phasedyn.compare import cli
    from phasedyn.compare.experiments import DEFAULTS

    for system, (config_cls, _, _) in cli.RUNS.items():
        mine = [cfg for name, _, cfg in DEFAULTS if name.startswith(f"{system}-")]
        assert mine and config_cls() in mine, (system, config_cls(), mine)
