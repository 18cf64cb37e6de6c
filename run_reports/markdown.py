"""Markdown tables for the reporting commands."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table: ``header``, then ``rows``; the first column left-aligned, the others right."""
    return [_row(header), _row(["---"] + ["---:"] * (len(header) - 1)), *(_row(row) for row in rows)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
