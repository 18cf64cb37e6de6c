"""Honest intervals across training seeds: coverage of the seed-level intervals on studies with known truths.

    python bench/coverage_seeds.py           # prints one figure per line
    python bench/coverage_seeds.py --docs    # and writes both tables into docs/intervals.md

Each cell runs ``run_reports.compare``'s statistics (``cognitive_reserve.contrasts``) on 1,000 simulated
studies of 1, 2, 3, 5 and 10 training seeds per side (``tests/helpers/seed_truths.py``: the scenarios and
their closed-form truths) and counts how often the 95 % intervals cover: B's mean curve and B − A at every
damaged level, and the cross-over level; plus how often the cross-over interval is bounded (both ends in
the grid) and not identified (open at both ends). Then the planning table: the share of studies whose
cross-over interval is bounded, by seeds per side and by the advantage at the grid's ends in seed
standard deviations. Deterministic (fixed seeds); a test recomputes both tables and compares them with the page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import ROOT, figure

from tests.helpers.seed_truths import (
    PLANNING_EFFECTS,
    PLANNING_SEEDS,
    STUDIES,
    bounded_share,
    coverage_table,
    markdown,
    planning_markdown,
    replace_table,
)

PAGE = ROOT / "docs" / "intervals.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help=f"write the tables into {PAGE.relative_to(ROOT)}")
    args = parser.parse_args()
    figure("studies_per_cell", STUDIES, "d")
    cells = coverage_table()
    for cell in cells:
        name = f"{cell.scenario.replace(' ', '_').replace(',', '')}_seeds{cell.seeds}"
        for what in ("band", "difference", "crossover", "bounded", "not_identified"):
            value = getattr(cell, what)
            if value is not None:
                figure(f"{what}_{name}", value)
    for seeds in PLANNING_SEEDS:
        for effect in PLANNING_EFFECTS:
            figure(f"bounded_seeds{seeds}_effect{effect:g}", bounded_share(seeds, effect))
    if args.docs:
        page = replace_table(PAGE.read_text("utf-8"), "coverage", markdown(cells))
        Path(PAGE).write_text(replace_table(page, "planning", planning_markdown()), encoding="utf-8")
        print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
