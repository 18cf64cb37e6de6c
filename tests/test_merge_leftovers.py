"""No merge left half-done: a tracked text file never holds a conflict marker (one reached the architecture page
unseen once; Markdown renders it as text and nothing else fails)."""

from __future__ import annotations

import subprocess

from tests.helpers.cli import ROOT

TEXT_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".cfg")
MARKERS = ("<<<<<<< ", ">>>>>>> ")


def test_no_tracked_text_file_holds_a_conflict_marker():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    found = [
        f"{name}:{number}"
        for name in tracked.splitlines()
        if name.endswith(TEXT_SUFFIXES) and (ROOT / name).is_file()
        for number, line in enumerate((ROOT / name).read_text("utf-8", errors="replace").splitlines(), 1)
        if line.startswith(MARKERS)
    ]
    assert found == []
