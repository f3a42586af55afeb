"""Packaging: the tree passes ruff ([tool.ruff] in pyproject.toml); ``python -m build`` makes an sdist and a
wheel that install into a fresh virtual environment and import; CITATION.cff and CHANGELOG.md name the current
version, and CITATION.cff cites [P1]-[P3] as the README does.

The build test builds the sdist, then the wheel from the unpacked sdist (``python -m build``'s default, so a
file missing from the sdist fails it too), in build's isolated environment (setuptools from the package index,
as ``[build-system]`` asks). The wheel goes into a new venv with ``--system-site-packages`` (the dependencies
come from this environment, the package only from the wheel: ``--no-deps --no-index --ignore-installed``, as pip
would otherwise keep a phasedyn of the same version installed in the base environment), and a subprocess run
outside the checkout imports phasedyn from there and runs the ``phasedyn`` entry point. Measured on the 2-core
dev machine (shared, load ~9): 66-94 s in all (the build alone 27 s); slow-marked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    """``ruff check`` with the project's configuration: no finding (the rule set is in pyproject.toml)."""
    pytest.importorskip("ruff", reason="ruff (in the test extra) is not installed")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


_SMOKE = r"""
import json, pathlib, sys
import phasedyn, phasedyn.theory, phasedyn.simulate, phasedyn.compare, phasedyn.compare.cli
import phasedyn.compare.reproduce
root = pathlib.Path(phasedyn.__file__).parent
print(json.dumps({
    "version": phasedyn.__version__,
    "files": [m.__file__ for m in (phasedyn, phasedyn.theory, phasedyn.simulate, phasedyn.compare,
                                   phasedyn.compare.reproduce)],
    "py_typed": (root / "py.typed").is_file(),
}))
"""


@pytest.mark.slow
def test_build_sdist_and_wheel_install_and_import(tmp_path):
    pytest.importorskip("build", reason="build (in the test extra) is not installed")
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (sdist,) = dist.glob("phasedyn-*.tar.gz")
    (wheel,) = dist.glob("phasedyn-*-py3-none-any.whl")

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for sub in ("theory", "simulate", "compare", "compare/reproduce"):
        assert f"phasedyn/{sub}/__init__.py" in names, sub
    assert "phasedyn/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    with tarfile.open(sdist) as tf:
        assert any(n.endswith("/phasedyn/py.typed") for n in tf.getnames())

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--ignore-installed", str(wheel)],
                   check=True, timeout=300)
    run = subprocess.run([str(py), "-c", _SMOKE], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    info = json.loads(run.stdout.strip().splitlines()[-1])
    site = str(venv)
    assert all(f.startswith(site) for f in info["files"]), info["files"]  # the wheel's copy, not the checkout
    assert info["py_typed"]
    assert wheel.name.startswith(f"phasedyn-{info['version']}-")

    cli = subprocess.run([str(venv / "bin" / "phasedyn"), "--version"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert cli.returncode == 0 and cli.stdout.strip() == f"phasedyn {info['version']}", cli.stdout + cli.stderr


def test_citation_matches_package_and_readme():
    """CITATION.cff: the installed version, and [P1]-[P3] with the README's authors, titles and arXiv numbers."""
    import re

    import phasedyn

    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == phasedyn.__version__
    readme = " ".join((ROOT / "README.md").read_text().split())
    cited = re.findall(r"\[(P\d)\] ([^*\[]+?), \*([^*]+)\*, (arXiv:\d{4}\.\d{5})", readme)
    assert [c[0] for c in cited] == ["P1", "P2", "P3"], cited
    refs = {r["identifiers"][0]["value"]: r for r in cff["references"]}
    for tag, authors, title, arxiv in cited:
        ref = refs[arxiv]
        assert ref["notes"] == f"[{tag}]" and ref["title"] == title
        assert [a["family-names"] for a in ref["authors"]] == authors.split(", ")
        assert ref["url"] == f"https://arxiv.org/abs/{arxiv.removeprefix('arXiv:')}"


def test_changelog_names_the_current_version():
    import phasedyn

    first = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## "))
    assert phasedyn.__version__ in first, first
