"""Griffe extension: the package's docstrings are reStructuredText; the site renders Markdown.

Rewrites, in every docstring before mkdocstrings renders it:

* ``:math:`x``` -> ``$x$`` and a ``.. math::`` block -> ``$$ ... $$`` (rendered by pymdownx.arithmatex);
* ``:class:`X```, ``:func:``, ``:mod:``, ``:data:``, ``:attr:``, ``:meth:``, ``:exc:``, ``:obj:`` -> code
  ``X`` (a leading ``~`` or ``.`` dropped). Plain code, not a cross-reference: an unresolvable reference
  would fail ``mkdocs build --strict``, and the roles use relative names (``.derive``) Markdown cannot resolve.

The source files are untouched; only the rendered site sees the rewrite.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|mod|data|attr|meth|exc|obj|const):`~?\.?([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")


def _math_block(text: str) -> str:
    """``.. math::`` followed by an indented block -> a ``$$`` display block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, first = m.group(1), m.group(2)
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        while body and not body[0]:
            body.pop(0)
        out += ["", "$$", *(b for b in body if b), "$$", ""]  # at column 0: 4 spaces would make a code block
    return "\n".join(out)


def rst_to_markdown(text: str) -> str:
    """The rewrite above, on one docstring."""
    text = _math_block(text)
    text = _MATH.sub(lambda m: f"${m.group(1).strip()}$", text)
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", text)


class RstRoles(griffe.Extension):
    """Apply :func:`rst_to_markdown` to every object's docstring as griffe loads it."""

    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:  # griffe >= 1
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
