"""Every command and snippet in README.md is executed here; an example that does not run is a defect.

README.md is read when the tests are collected, so the tests follow whatever fenced code blocks it has:

* each ```` ```python ```` block is one test: the block, unchanged, runs in a fresh ``python -c`` subprocess
  whose working directory is a temporary folder (figures a snippet writes land there) with
  ``MPLBACKEND=Agg``. The README's python blocks are self-contained (each does its own imports); a block
  that leans on names of an earlier block fails here, as it would for a reader who pastes only it.
  Bare expression lines (shown in a notebook) are simply evaluated.
* each command line of each ```` ```bash ```` block (trailing ``# comments`` stripped, empty lines
  skipped) is one test, run by ``bash -c`` in a temporary folder; it must exit 0, and a ``--help`` must
  print a usage line. Parts joined by ``&&`` are handled one by one:

  - ``pip install .`` / ``pip install ".[EXTRA]"`` is not run again: the target must be this project
    (``.``, with EXTRA one of pyproject's optional dependencies) and ``phasedyn`` must be a console script
    of pyproject (for the plain install, whose next part is the main job);
  - ``python -m pytest ...`` is not run again (the suite would run itself): the README's whole line must
    appear verbatim in ``.ci/run``, CI's entry point, so the README's test command is exactly CI's;
  - everything else runs. The bare ``phasedyn`` (the main job) is a real run at its built-in sizes, into
    the temporary folder. A command that occurs twice in the README runs once; its other tests reuse
    the result.

* sizes: some README commands take minutes at the README's sizes. They keep their flags, flag names and
  code paths (a typo or a removed flag fails), but run at small sizes through this test-side rewrite
  table, applied to the values of ``phasedyn run ...`` commands (``--flag V`` and ``--flag=V``):

  ==============  ==========================
  flag            value run here
  ==============  ==========================
  ``--steps``     ``min(V, 2000)``
  ``--d``         ``min(V, 300)``
  ``--seeds``     ``min(V, 4)``
  ``--t-max``     ``min(V, 1.0)``
  ==============  ==========================

  ``phasedyn sweep ...`` runs each ``--grid NAME=START:STOP:N`` with at most ``SWEEP_POINTS`` = 2 values (the
  same ends and scale), and ``phasedyn reproduce ...`` runs with ``--quick`` added (its reduced, < 2 min mode). Commands that
  still take more than ~30 s on 2 cores are marked ``slow`` (the main job, ``reproduce``; see
  :func:`_is_slow`) — ``python -m pytest`` runs slow tests too.

* a fenced block with a language other than python, bash, text, json, console or none fails
  :func:`test_every_fenced_block_is_executed_or_inert`, and so does a block of text, console or no language
  holding a line that looks like something to run (``phasedyn ...``, ``$ ...``, ``>>> ...``, ``import ...``,
  ``from X import ...``): no example escapes execution silently.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from _shell import TIMEOUT_S as SHELL_TIMEOUT_S
from _shell import env as shell_env
from _shell import run_once

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
PYPROJECT = ROOT / "pyproject.toml"

EXECUTED = ("python", "bash")
INERT = ("text", "json", "console", "")

# flag -> (type, largest value run here); see the module docstring
REWRITE = {
    "--steps": (int, 2000),
    "--d": (int, 300),
    "--seeds": (int, 4),
    "--t-max": (float, 1.0),
}
QUICK_ADDED = {"reproduce": "--quick"}
SWEEP_POINTS = 2  # values per --grid of a ``phasedyn sweep`` run here (the README's ends, fewer between)


# --------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Block:
    index: int  # position among all fenced blocks
    lang: str
    line: int  # README line of the opening fence (1-based)
    text: str


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")


def readme_blocks(text: str | None = None) -> list[Block]:
    """The fenced code blocks of README.md, in order (CommonMark fences: ``` or ~~~, up to 3 spaces in)."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"README.md:{start + 1}: fenced block never closed")
        blocks.append(Block(len(blocks), lang, start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _strip_comment(line: str) -> str:
    """The command without a trailing ``# comment`` (a ``#`` starting a word, outside quotes)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=False)
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        tokens = list(lex)
    except ValueError as err:  # unbalanced quotes: let the test report it
        raise AssertionError(f"cannot parse README command {line!r}: {err}") from err
    if not tokens:
        return ""
    # cut the raw line at the first '#' that starts a word outside quotes
    quote, prev = None, " "
    for k, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return line[:k].strip()
        prev = ch
    return line.strip()


@dataclass(frozen=True)
class Command:
    block: int
    line: int  # README line
    text: str  # the command as the README has it, comment stripped


def readme_commands() -> list[Command]:
    out = []
    for b in readme_blocks():
        if b.lang != "bash":
            continue
        lines, k = b.text.splitlines(), 0
        while k < len(lines):
            first, raw = k, lines[k]
            while raw.endswith("\\") and k + 1 < len(lines):  # a command continued on the next line
                k += 1
                raw = raw[:-1] + " " + lines[k].strip()
            cmd = _strip_comment(raw)
            if cmd:
                out.append(Command(b.index, b.line + 1 + first, cmd))
            k += 1
    return out


def _first_line(code: str) -> str:
    return next((ln.strip() for ln in code.splitlines() if ln.strip()), "")


def _id(s: str, n: int = 70) -> str:
    s = re.sub(r"[\"']", "", s)
    return s if len(s) <= n else s[: n - 3] + "..."


def _parts(cmd: str) -> list[list[str]]:
    """A command's ``&&``-separated parts, each as shell words."""
    parts, cur = [], []
    for tok in shlex.split(cmd):
        if tok == "&&":
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    parts.append(cur)
    assert all(parts), f"empty part in {cmd!r}"
    return parts


# ------------------------------------------------------------------------------------------ rewriting


def _subcommand(words: list[str]) -> tuple[str | None, int]:
    """For a ``phasedyn`` command: its subcommand (``run``, ``reproduce``, None for the main job) and index."""
    for k, w in enumerate(words[1:], 1):
        if not w.startswith("-"):
            return w, k
    return None, len(words)


def rewrite(words: list[str]) -> list[str]:
    """The README command as run here: :data:`REWRITE` on ``phasedyn run``, ``--quick`` on ``reproduce``."""
    if not words or words[0] != "phasedyn":
        return list(words)
    sub, at = _subcommand(words)
    out = list(words)
    if sub == "run":
        k = at + 1
        while k < len(out):
            flag, eq, val = out[k].partition("=")
            if flag in REWRITE:
                kind, cap = REWRITE[flag]
                if eq:
                    out[k] = f"{flag}={kind(min(kind(val), cap))}"
                elif k + 1 < len(out):
                    out[k + 1] = str(kind(min(kind(out[k + 1]), cap)))
                    k += 1
            k += 1
    elif sub == "sweep":  # each --grid NAME=START:STOP:N[:scale] at most SWEEP_POINTS values (its ends kept)
        for k in range(at + 1, len(out) - 1):
            if out[k] == "--grid":
                name, _, spec = out[k + 1].partition("=")
                lo, hi, n, *scale = spec.split(":")
                out[k + 1] = f"{name}={':'.join([lo, hi, str(min(int(n), SWEEP_POINTS)), *scale])}"
    elif sub in QUICK_ADDED and QUICK_ADDED[sub] not in out and "--help" not in out and "-h" not in out:
        out.append(QUICK_ADDED[sub])
    return out


def _is_slow(cmd: str) -> bool:
    """Commands that take more than ~30 s on 2 cores even after :func:`rewrite`: the main job, reproduce."""
    for words in _parts(cmd):
        if words[0] == "phasedyn" and "--help" not in words and "-h" not in words and "--version" not in words:
            sub, _ = _subcommand(words)
            if sub in (None, "reproduce"):
                return True
    return False


# ---------------------------------------------------------------------------------------- set-up lines


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _ci_lines() -> list[str]:
    return [ln.strip() for ln in CI_RUN.read_text(encoding="utf-8").splitlines()]


def _check_pip(words: list[str], cmd: str, then: list[list[str]]) -> None:
    """``pip install .`` or ``.[EXTRA]`` of this project; not run again (it is how the suite got here)."""
    assert words[:2] == ["pip", "install"] and len(words) == 3, f"README pip command not understood: {cmd!r}"
    m = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", words[2])
    assert m, f"README installs {words[2]!r}, not this project ('.' or '.[extra]'): {cmd!r}"
    proj = _pyproject()["project"]
    for extra in filter(None, (m.group(1) or "").split(",")):
        assert extra in proj.get("optional-dependencies", {}), f"pyproject has no extra {extra!r}: {cmd!r}"
    assert "phasedyn" in proj.get("scripts", {}), "pyproject declares no `phasedyn` console script"
    ci_install = [ln for ln in _ci_lines() if ln.startswith("pip install")]
    assert ci_install, ".ci/run installs nothing"
    assert all(shlex.split(ln)[2].startswith(".") for ln in ci_install), ".ci/run installs something else"
    if then and then[0][0] == "phasedyn":
        # the console script the install creates is the one pyproject declares, and it is what runs next
        from importlib.metadata import entry_points

        eps = [ep for ep in entry_points(group="console_scripts") if ep.name == "phasedyn"]
        assert eps, "`phasedyn` console script is not installed"
        assert eps[0].value == proj["scripts"]["phasedyn"], (eps[0].value, proj["scripts"]["phasedyn"])


def _check_pytest(cmd: str) -> None:
    """``python -m pytest ...``: not run from inside the suite; the README line must be CI's, verbatim."""
    assert cmd in _ci_lines(), f"README test command {cmd!r} is not a line of .ci/run: {_ci_lines()}"


def _is_pytest(words: list[str]) -> bool:
    return words[:3] in (["python", "-m", "pytest"], ["python3", "-m", "pytest"]) or words[:1] == ["pytest"]


# ------------------------------------------------------------------------------------------- running


def _run(parts: list[list[str]], cwd: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run a line's parts, joined by ``&&``, with bash in ``cwd``; a line run before (for another README
    line with the same command, or by another test module: tests/_shell.py) is not run again."""
    return run_once(parts, cwd)


def _fail_text(what: str, proc: subprocess.CompletedProcess) -> str:
    return (f"{what} exited {proc.returncode}\n--- stdout (tail) ---\n{proc.stdout[-3000:]}"
            f"\n--- stderr (tail) ---\n{proc.stderr[-3000:]}")


def _check_outputs(words: list[str], cwd: Path) -> None:
    """What a figure-producing README command must leave behind (in its own folder)."""
    if words[0] != "phasedyn" or {"--help", "-h", "--version"} & set(words):
        return
    sub, _ = _subcommand(words)
    if sub == "run":
        assert list(cwd.rglob("summary.json")) and list(cwd.rglob("config.json")), "run wrote no summary/config"
    elif sub is None:  # the main job (formerly also run a second time by tests/test_compare.py)
        summaries = list(cwd.rglob("summary.json"))
        assert len(summaries) >= 2, f"main job wrote {len(summaries)} summary.json"
        folders = {p.parent.name: p for p in summaries}
        for name in ("isotropic-gf", "isotropic-gd", "isotropic-sgd"):
            assert name in folders, f"main job wrote no {name}/ (has {sorted(folders)})"
            summary = json.loads(folders[name].read_text())
            assert summary["system"] == name
            assert summary["final"]["simulation"]["u"] > 0.95  # every default isotropic run recovers w*
            assert (folders[name].parent / "overview.png").exists()
    elif sub == "reproduce":
        assert list(cwd.rglob("REPORT.md")), "reproduce wrote no REPORT.md"
    elif sub == "sweep":  # the store, complete
        import xarray as xr

        store = cwd / words[words.index("--out") + 1]
        with xr.open_dataset(store, engine="scipy" if store.suffix == ".nc" else "zarr") as ds:
            assert bool(ds["done"].all()) and "phasedyn_sweep" in ds.attrs, ds


# --------------------------------------------------------------------------------------------- tests


PY_BLOCKS = [b for b in readme_blocks() if b.lang == "python"]
COMMANDS = readme_commands()


def test_readme_has_examples():
    """Guards the parser: the README's examples are found (a parse that finds none would test nothing)."""
    assert PY_BLOCKS, "no ```python block found in README.md"
    assert COMMANDS, "no ```bash command found in README.md"


_RUNNABLE = re.compile(r"^\s*(phasedyn\b|\$\s|>>>|import\s|from\s+\S+\s+import\s)")


def fence_problems(blocks: list[Block]) -> list[str]:
    """Blocks that would escape execution: an unknown language, or runnable lines in an inert block."""
    out = []
    for b in blocks:
        if b.lang not in EXECUTED + INERT:
            out.append(f"README.md:{b.line}: fenced block of language {b.lang!r} is not executed by "
                       f"tests/test_readme.py (use python or bash, or text/json/console/none for inert blocks)")
        elif b.lang in ("text", "console", ""):
            bad = [ln for ln in b.text.splitlines() if _RUNNABLE.match(ln)]
            if bad:
                out.append(f"README.md:{b.line}: ```{b.lang} block holds runnable lines {bad}; make it python/bash")
    return out


def test_every_fenced_block_is_executed_or_inert():
    problems = fence_problems(readme_blocks())
    assert not problems, "\n".join(problems)
    # the check itself: what it must catch, and what it must let through
    sample = ("```sh\nphasedyn\n```\n```\nimport numpy\n```\n```console\n$ phasedyn run x\n```\n"
              "```\ntheory/   phasedyn.theory  set-up\n```\n```json\n{\"a\": 1}\n```\n````python\nx = 1\n````\n")
    blocks = readme_blocks(sample)
    assert [b.lang for b in blocks] == ["sh", "", "console", "", "json", "python"]
    assert len(fence_problems(blocks)) == 3


def test_rewrite_table():
    """The size rewrite keeps flags and names, caps only values, and leaves other commands alone."""
    w = shlex.split("phasedyn run powerlaw --d 2000 --steps=100000 --seeds 2 --t-max 3 --K 16")
    assert rewrite(w) == shlex.split("phasedyn run powerlaw --d 300 --steps=2000 --seeds 2 --t-max 1.0 --K 16")
    assert rewrite(["phasedyn", "reproduce", "p1"]) == ["phasedyn", "reproduce", "p1", "--quick"]
    assert rewrite(["phasedyn"]) == ["phasedyn"]
    assert rewrite(["phasedyn", "run", "powerlaw", "--help"]) == ["phasedyn", "run", "powerlaw", "--help"]
    assert _strip_comment("phasedyn   # all -> ./x/") == "phasedyn"
    assert _strip_comment("phasedyn run spiked --m 16#x  # note") == "phasedyn run spiked --m 16#x"
    assert _strip_comment('pip install ".[test]" && python -m pytest') == 'pip install ".[test]" && python -m pytest'


@pytest.mark.parametrize("block", PY_BLOCKS, ids=[f"py{b.index}-{_id(_first_line(b.text))}" for b in PY_BLOCKS])
def test_readme_python_block(block: Block, tmp_path: Path):
    proc = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, env=shell_env(), capture_output=True,
                          text=True, timeout=SHELL_TIMEOUT_S)
    ok = proc.returncode == 0
    assert ok, _fail_text(f"README.md:{block.line} python block", proc)


def _command_params():
    for c in COMMANDS:
        marks = [pytest.mark.slow] if _is_slow(c.text) else []
        yield pytest.param(c, id=f"bash{c.block}-L{c.line}-{_id(c.text)}", marks=marks)


@pytest.mark.parametrize("command", list(_command_params()))
def test_readme_command(command: Command, tmp_path: Path):
    parts = _parts(command.text)
    runnable = []
    for k, words in enumerate(parts):
        if words[0] in ("pip", "pip3"):
            _check_pip(words, command.text, parts[k + 1:])
        elif _is_pytest(words):
            _check_pytest(command.text)
        else:
            runnable.append(rewrite(words))
    if not runnable:  # a set-up line checked statically above
        return
    proc, cwd = _run(runnable, tmp_path)
    shown = " && ".join(map(shlex.join, runnable))
    where = f"README.md:{command.line} `{command.text}` (run as `{shown}`)"
    ok = proc.returncode == 0
    assert ok, _fail_text(where, proc)
    for words in runnable:
        if "--help" in words or "-h" in words:
            assert "usage:" in proc.stdout.lower(), f"{where}: --help printed no usage:\n{proc.stdout}"
        _check_outputs(words, cwd)
