"""mkdocs hook: README.md is the site's home page, so the strict build checks its links and anchors too.

README links into the manual as ``docs/<page>.md`` (what works on a code host); on the site the same page
is ``<page>.md``. Any other link target outside ``docs/`` is left as it is, and the strict build refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

DOCS_LINK = re.compile(r"\]\(docs/")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add README.md, its links rewritten to the site's layout, as ``index.md``."""
    readme = Path(config.config_file_path).parent / "README.md"
    files.append(File.generated(config, "index.md", content=DOCS_LINK.sub("](", readme.read_text("utf-8"))))
    return files
