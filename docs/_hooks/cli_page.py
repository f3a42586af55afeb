"""MkDocs hook: the "Command line" page (cli.md) is generated at build time from phasedyn's own parser.

Nothing of it is committed, so it cannot drift from the code: each page section is the ``--help`` of one
(sub)command of :func:`phasedyn.compare.cli._parser`, walked recursively, at a fixed width of 100 columns.
"""

from __future__ import annotations

import argparse
import os

from mkdocs.structure.files import File, Files

WIDTH = "100"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out += list(action.choices.items())
    return out


def _sections(parser: argparse.ArgumentParser, depth: int = 2) -> list[str]:
    text = [f"{'#' * depth} `{parser.prog}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for _, sub in _subcommands(parser):
        text += _sections(sub, min(depth + 1, 4))
    return text


def cli_markdown() -> str:
    """The page: an introduction, then every (sub)command's ``--help``."""
    from phasedyn.compare import cli

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at the terminal width; fixed so the page is reproducible
    try:
        parser = cli._parser()
        body = _sections(parser)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    intro = [
        "# Command line",
        "",
        "Generated at build time from the `phasedyn` command's own parser (`phasedyn.compare.cli`), so every",
        "option, default and help text below is the code's, at the version of these pages. Bad arguments exit with status 2 and a",
        "one-line message; a run that diverges or a solve that fails exits with status 1 and says where.",
        "Output files are described in [Output formats](output.md).",
        "",
    ]
    return "\n".join(intro + body)


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "cli.md", content=cli_markdown()))
    return files
