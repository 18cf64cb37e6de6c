"""The seed-level intervals earn their 95 % on known truths, and ``docs/intervals.md`` shows today's numbers.

The studies and truths are ``tests/helpers/seed_truths.py``; ``python bench/coverage_seeds.py --docs`` writes
the tables. 1,000 studies per cell: ±2 SE of a 95 % coverage is ±1.4 points, so a cell at or above 93 % is
one that a 95 % interval can produce, and one below it is not.
"""

from __future__ import annotations

import pytest

from tests.helpers.cli import ROOT
from tests.helpers.seed_truths import (
    SCENARIOS,
    SEEDS,
    coverage,
    coverage_table,
    markdown,
    planning_markdown,
    replace_table,
)

PAGE = ROOT / "docs" / "intervals.md"


@pytest.fixture(scope="module")
def replicated():
    """The cells with at least 2 seeds per side: where the page promises 95 %."""
    return [coverage(scenario, seeds) for scenario in SCENARIOS for seeds in SEEDS if seeds > 1]


def test_intervals_over_seeds_cover_at_least_93_percent_in_every_scenario(replicated):
    short = [
        f"{cell.scenario}, {cell.seeds} seeds: {what} {getattr(cell, what):.1%}"
        for cell in replicated
        for what in ("band", "difference", "crossover")
        if getattr(cell, what) < 0.93
    ]
    assert not short, short


def test_the_page_shows_these_numbers(replicated):
    page = PAGE.read_text("utf-8")
    for row in markdown(replicated).splitlines()[2:]:
        assert row in page, f"{row} (python bench/coverage_seeds.py --docs)"


@pytest.mark.slow
def test_the_pages_tables_are_up_to_date():
    page = PAGE.read_text("utf-8")
    fresh = replace_table(replace_table(page, "coverage", markdown(coverage_table())), "planning", planning_markdown())
    assert fresh == page, "python bench/coverage_seeds.py --docs"
