"""MkDocs hook: the API reference pages api/theory.md, api/simulate.md, api/compare.md, generated at build time.

Each page renders (mkdocstrings) exactly the package's public names, its runtime ``__all__``, in that order,
so a name added to a package appears in the reference without editing a page, and one without a page fails
tests/test_docs.py. ``phasedyn.theory`` builds its ``__all__`` at import time (lazy exports), which a static
reader cannot evaluate, hence the explicit ``members`` list.
"""

from __future__ import annotations

import importlib

from mkdocs.structure.files import File, Files

PACKAGES = ("theory", "simulate", "compare")


def api_markdown(name: str) -> str:
    """The page of ``phasedyn.<name>``: its docstring, then every name of its ``__all__``."""
    module = importlib.import_module(f"phasedyn.{name}")
    members = "\n".join(f"        - {m}" for m in module.__all__)
    return f"""# `phasedyn.{name}`

Generated from the docstrings: the package's public names (`phasedyn.{name}.__all__`), each with its signature
and the equation it implements. Equations are stated once in [Theory](../theory.md), which the docstrings cite
by section.

::: phasedyn.{name}
    options:
      show_root_heading: false
      show_submodules: true
      show_if_no_docstring: true
      members_order: source
      members:
{members}
"""


def on_files(files: Files, config) -> Files:
    for name in PACKAGES:
        files.append(File.generated(config, f"api/{name}.md", content=api_markdown(name)))
    return files
