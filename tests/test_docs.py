"""The documentation site (mkdocs.yml, docs/) builds with ``mkdocs build --strict`` and documents what the code does.

* the build itself: a broken link, a missing page in the nav, an unresolvable mkdocstrings identifier or a
  griffe warning on a docstring fails it (``--strict``);
* the API pages have an entry for every name of each package's ``__all__`` (they are generated from it by
  docs/_hooks/api_pages.py; this checks that mkdocstrings rendered each);
* the command-line page has every option of every (sub)command of the installed parser;
* the notebooks are rendered with their outputs (their figures as embedded images);
* the output-format page's summary.json keys and trajectories.npz columns are those the writer writes.

Measured on the 2-core dev machine: the build takes 15 s of CPU (mkdocs process, with the import of phasedyn
and JAX for the generated pages); wall 23-53 s while the machine was shared at load average 9-13.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra (pip install '.[docs]') is not installed")
pytest.importorskip("mkdocstrings")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the site once, strictly, into a temporary folder (run from there: ``python -m mkdocs`` puts the
    working directory first on sys.path, and the checkout's ./phasedyn is not the whole package)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # nbconvert's templates sit in the share/jupyter of the environment that installed it; in a venv made with
    # --system-site-packages that is the base interpreter's, which jupyter_core does not search by itself
    base_share = os.path.join(sys.base_prefix, "share", "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (env.get("JUPYTER_PATH"), base_share) if p)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out / "site")], cwd=out, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, f"mkdocs build --strict failed ({wall:.0f} s):\n{proc.stderr[-6000:]}"
    print(f"mkdocs build --strict: {wall:.1f} s")
    return out / "site"


def _html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def test_build_strict(site):
    for page in ("getting-started", "theory", "systems/isotropic", "systems/powerlaw", "systems/spiked", "gallery", "output",
                 "cli", "api/theory", "api/simulate", "api/compare"):
        assert (site / page / "index.html").is_file(), page


@pytest.mark.parametrize("package", ["theory", "simulate", "compare"])
def test_api_page_has_every_public_name(site, package):
    import importlib

    module = importlib.import_module(f"phasedyn.{package}")
    ids = set(re.findall(r'id="(phasedyn\.[^"]+)"', _html(site, f"api/{package}")))
    missing = [n for n in module.__all__ if f"phasedyn.{package}.{n}" not in ids]
    assert not missing, f"phasedyn.{package}: no API entry for {missing}"
    # the docstrings' reST math was turned into arithmatex math (docs/_hooks/rst_roles.py), not shown raw
    assert ":math:" not in _html(site, f"api/{package}")


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub)


def test_cli_page_has_every_option(site):
    import html

    from phasedyn.compare import cli

    page = html.unescape(_html(site, "cli"))
    parsers = list(_walk(cli._parser()))
    assert len(parsers) >= 5  # phasedyn, run, run isotropic/powerlaw/spiked, reproduce
    for parser in parsers:
        assert parser.prog in page, parser.prog
        for action in parser._actions:
            for option in action.option_strings:
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", page), f"{parser.prog} {option}"


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_notebook_rendered_with_outputs(site, name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    images = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    page = _html(site, f"notebooks/{name}")
    assert images > 0, f"{name}: the committed notebook has no figure output (not executed?)"
    assert page.count("data:image/png") >= images


def _documented_keys(section: str) -> set[str]:
    """The backticked names in the first column of the first table after the heading ``section``."""
    lines = (ROOT / "docs" / "output.md").read_text().split(section, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    keys = {m.group(1) for line in lines[start:end] if (m := re.match(r"\| `([^`]+)`", line))}
    assert keys, f"no table of keys under {section!r} in docs/output.md"
    return keys


def test_output_page_matches_the_writer(tmp_path):
    """The documented keys and columns are exactly those of ``phasedyn.compare.write_outputs``, the writer every
    run uses (here on a synthetic two-seed overlay: no solve; tests/test_compare checks a real run's keys)."""
    import numpy as np

    from phasedyn.compare import STATS, Overlay, write_outputs

    t = np.linspace(0.0, 5.0, 64)
    u = np.stack([1 / (1 + np.exp(-4 * (t - c))) for c in (2.0, 2.2)])  # escapes, then converges to s* = 1
    curves = {"u": u, "s": 1 / 3 + (2 / 3) * u, "loss": 1 - u, "mse": 1 - u}
    assert set(curves) == set(STATS)
    ov = Overlay("isotropic-gf", t, curves, {k: v * 1.01 for k, v in curves.items()}, {"optimizer": "gf"},
                 np.zeros(2), 1.0)
    paths = write_outputs(ov, tmp_path)
    summary = json.loads(paths["summary"].read_text())
    assert _documented_keys("## `summary.json`") == set(summary)
    columns = {c.replace("<stat>", s) for c in _documented_keys("## `trajectories.npz`") for s in STATS}
    assert columns == set(np.load(paths["trajectories"]).files)


def test_docstring_rewrite():
    """docs/_hooks/rst_roles.py: reST math and roles to Markdown, multi-name Args entries split (no build)."""
    sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
    try:
        from rst_roles import rst_to_markdown
    finally:
        sys.path.remove(str(ROOT / "docs" / "_hooks"))
    doc = ("Rate :math:`\\rho = 8s^*` of :func:`~.derive.saddle` (:class:`phasedyn.theory.Model`).\n\n"
           ".. math:: \\dot u = 12(s^* - s)u,\n    \\qquad x\n\nArgs:\n    eta: step.\n"
           "    init, init_scale: the start\n        continued.\n    seeds: count.\n\nReturns:\n    a, b: kept.")
    assert rst_to_markdown(doc) == (
        "Rate $\\rho = 8s^*$ of `derive.saddle` (`phasedyn.theory.Model`).\n\n\n$$\n\\dot u = 12(s^* - s)u,\n"
        "\\qquad x\n$$\n\nArgs:\n    eta: step.\n    init: the start\n        continued.\n"
        "    init_scale: see `init`.\n    seeds: count.\n\nReturns:\n    a, b: kept.")
