"""The manual: README stays a front door, every page and figure is reachable, no issue numbers, the marked command
chains are well formed (the slow test runs them: ``tests/test_doc_chains.py``), README's example runs, CI runs
README's test command, and the generated benchmark table is up to date. ``mkdocs build --strict`` (README's test
command) checks links and anchors."""

from __future__ import annotations

import re
import subprocess
import sys

import torch

from tests.helpers.cli import ROOT
from tests.helpers.doc_chains import CHAINS, MARKER, documented_commands, site_pages

DOCS = ROOT / "docs"
MANUAL = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
ISSUE_REFERENCE = re.compile(r"(?<![\w&/])#\d+\b|\bissues? #?\d+", re.IGNORECASE)


def test_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text("utf-8").splitlines()) <= 250


def test_no_issue_numbers_in_the_manual():
    found = {
        str(path.relative_to(ROOT)): ISSUE_REFERENCE.findall(path.read_text("utf-8"))
        for path in [*MANUAL, ROOT / "bench" / "README.md"]
    }
    assert {path: refs for path, refs in found.items() if refs} == {}


def test_every_page_is_in_the_navigation_and_every_figure_on_a_page():
    pages = site_pages()
    assert all(page.is_file() for page in pages)
    assert set(DOCS.rglob("*.md")) <= set(pages)
    text = "".join(page.read_text("utf-8") for page in pages)
    assert [f.name for f in sorted((DOCS / "figures").iterdir()) if f"figures/{f.name}" not in text] == []


def test_marked_chains_are_bash_blocks_in_the_navigations_order():
    markers = [m for page in site_pages() for m in re.findall(r"<!-- chain: ([\w-]+) -->", page.read_text("utf-8"))]
    blocks = [name for page in site_pages() for name, _ in MARKER.findall(page.read_text("utf-8"))]
    assert markers == blocks == list(CHAINS)  # each marker sits right above a ```bash block
    commands = documented_commands()
    assert all(c.text.startswith("python ") for c in commands)
    fits = [c.text for c in commands if c.text.startswith("python run.py fit ")]
    assert len(fits) == len(set(fits))  # a chain never fits the same config twice into its directory


def test_readme_example_sweeps_a_model(capsys):
    (code,) = re.findall(r"<!-- example: sweep-your-own-model -->\n```python\n(.*?)```", readme(), re.DOTALL)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    x = torch.randn(64, 3)
    y = net(x).argmax(-1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scope = {"net": net, "accuracy": lambda model: float((model(x).argmax(-1) == y).float().mean())}
    exec(code, scope)
    by_level = {s.level: s for s in scope["summaries"]}
    assert by_level[0.0].mean == 1.0 and by_level[0.4].n == 20 and by_level[0.4].mean < 1.0
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_ci_runs_readme_test_command():
    (command,) = re.findall(r"^\./setup\.sh && \.venv/bin/ruff .*$", readme(), re.MULTILINE)
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(command)
    assert "mkdocs build --strict" in command


def test_generated_benchmark_table_is_up_to_date():
    """``python bench/results_table.py`` writes the manual's table from the recorded outputs in ``bench/results/``."""
    check = [sys.executable, str(ROOT / "bench" / "results_table.py"), "--check"]
    done = subprocess.run(check, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def readme() -> str:
    return (ROOT / "README.md").read_text("utf-8")
