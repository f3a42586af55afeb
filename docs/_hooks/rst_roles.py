"""Griffe extension: the package's docstrings are reStructuredText; the site renders Markdown.

Rewrites, in every docstring before mkdocstrings renders it:

* ``:math:`x``` -> ``$x$`` and a ``.. math::`` block -> ``$$ ... $$`` (rendered by pymdownx.arithmatex);
* ``:class:`X```, ``:func:``, ``:mod:``, ``:data:``, ``:attr:``, ``:meth:``, ``:exc:``, ``:obj:`` -> code
  ``X`` (a leading ``~`` or ``.`` dropped). Plain code, not a cross-reference: an unresolvable reference
  would fail ``mkdocs build --strict``, and the roles use relative names (``.derive``) Markdown cannot resolve.

* an ``Args:`` entry naming several parameters (``init, init_scale: ...``, a style of the tree that Google's
  format lacks) -> one entry per parameter, the first with the description, the others pointing at it; so
  griffe can check every documented name against the signature (a name that is not a parameter fails the
  strict build) instead of reading one unknown parameter ``"init, init_scale"``.

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


_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Other Parameters|Keyword Args|Keyword Arguments):\s*$")
_MULTI = re.compile(r"^(\s+)(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+)(\s*\([^)]*\))?:(\s.*|)$")


def _split_args(text: str) -> str:
    """``a, b: text`` items of an Args-like section -> ``a: text`` and ``b: see ``a```` (continuation lines
    stay with the first)."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    pending: list[str] = []  # the entries for the 2nd.. names of the current multi-name item
    item_indent = -1
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if pending and (not line.strip() or indent <= item_indent):  # the item ends at a blank or dedented line
            out += pending
            pending = []
        head = _SECTION.match(line)
        if head:
            section_indent = len(head.group(1))
            out.append(line)
            continue
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        m = _MULTI.match(line) if section_indent is not None else None
        if m:
            names = [n.strip() for n in m.group(2).split(",")]
            pad, kind = m.group(1), m.group(3) or ""
            out.append(f"{pad}{names[0]}{kind}:{m.group(4)}")
            pending = [f"{pad}{n}{kind}: see `{names[0]}`." for n in names[1:]]
            item_indent = len(pad)
            continue
        out.append(line)
    return "\n".join(out + pending)


def rst_to_markdown(text: str) -> str:
    """The rewrite above, on one docstring."""
    text = _split_args(_math_block(text))
    text = _MATH.sub(lambda m: f"${m.group(1).strip()}$", text)
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", text)


class RstRoles(griffe.Extension):
    """Apply :func:`rst_to_markdown` to every object's docstring as griffe loads it."""

    def on_object(self, *, obj: griffe.Object, **kwargs: object) -> None:  # griffe >= 1
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
