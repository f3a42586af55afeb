"""MkDocs hook: the executed notebooks under notebooks/ (outside docs/) become pages notebooks/*.ipynb.

They are added to the site's files before mkdocs-jupyter (priority 100) converts them, so the committed
notebooks with their outputs are rendered as they are, without a copy in docs/ that could go stale.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files


@event_priority(100)
def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).resolve().parent / "notebooks"
    for nb in sorted(root.glob("*.ipynb")):
        files.append(File(f"notebooks/{nb.name}", src_dir=str(root.parent), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
