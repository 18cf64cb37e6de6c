"""The manual's command chains run as written, in the order the pages give them, in a fresh folder.

The ``documented_chains`` fixture (tests/conftest.py) runs them once per session; the end-to-end tests of each
experiment (test_linear_cli, test_gpt2_cli, test_figure5, test_glue_cli, test_wandb_panels) check their outputs.
"""

from __future__ import annotations

import pytest

from tests.helpers.doc_chains import CHAINS, documented_commands

pytestmark = pytest.mark.slow  # runs every chain of the manual in real processes


def test_every_documented_command_ran_in_order(documented_chains):
    ran = [done.command for done in documented_chains.done]
    assert ran == documented_commands() and [c.chain for c in ran][-1] == CHAINS[-1]
    assert all(done.created for done in documented_chains.done)  # every command left something behind


def test_no_run_directory_holds_two_runs(documented_chains):
    """A chain never fits twice into one directory: no second `last` checkpoint, no run moved aside."""
    folder = documented_chains.folder
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("last-v*.ckpt")) == []
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.old-*")) == []


def test_table1_of_the_tiny_runs(documented_chains):
    """`python -m run_reports.table1 --label mono=... --label bi=...` reads the tiny runs of the GPT-2 chain."""
    table = (documented_chains.folder / "runs" / "gpt2" / "table1_tiny" / "table1.md").read_text("utf-8")
    assert "| layer | mono | bi | bi / mono |" in table
    assert all(f"| {layer} |" in table for layer in ("h.0", "h.1", "total"))
