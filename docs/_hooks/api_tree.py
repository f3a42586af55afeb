"""MkDocs hook: lay out the package as it installs, for mkdocstrings to read the source of this checkout.

In the source tree the subpackages live beside ``phasedyn/`` (``theory/`` is ``phasedyn.theory``, see
``[tool.setuptools.package-dir]`` in pyproject.toml), so ``./phasedyn`` alone is not the package. This hook
builds ``build/docs-src/phasedyn/`` from that table, with symbolic links to the checkout's files, and
mkdocs.yml's mkdocstrings ``paths`` points there: the API pages always document this checkout, whether the
package is installed editable, installed from a wheel, or not at all. The same folder goes first on sys.path,
so the hooks that import phasedyn (the command-line and API pages) read this checkout too, not an installed copy
that may be older.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

from mkdocs.plugins import event_priority

TREE = Path("build") / "docs-src"


def build_tree(root: Path) -> Path:
    """``root/build/docs-src`` with ``phasedyn/`` and its subpackages linked in; returns that folder."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    out = root / TREE
    if out.exists():
        shutil.rmtree(out)
    top = out / "phasedyn"
    top.mkdir(parents=True)
    for src in (root / package_dir["phasedyn"]).iterdir():
        if src.name != "__pycache__":
            (top / src.name).symlink_to(src.resolve(), target_is_directory=src.is_dir())
    for name, folder in package_dir.items():
        if name != "phasedyn":
            link = out.joinpath(*name.split("."))
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to((root / folder).resolve(), target_is_directory=True)
    return out


@event_priority(100)
def on_config(config):
    tree = str(build_tree(Path(config["config_file_path"]).resolve().parent))
    loaded = sys.modules.get("phasedyn")
    if loaded is not None and not str(loaded.__file__).startswith(tree):  # (mkdocs serve rebuilds: already ours)
        raise RuntimeError(f"phasedyn was imported from {loaded.__file__} before the docs hooks ran: the pages "
                           "would document that copy, not this checkout")
    if tree not in sys.path:
        sys.path.insert(0, tree)
    return config
