"""Write the coverage tables of ``docs/intervals.md`` from the recorded output of ``bench/coverage.py``.

    python bench/record.py coverage             # measure, kept in bench/results/coverage.txt
    python bench/coverage_table.py              # rewrite the part of docs/intervals.md between the markers
    python bench/coverage_table.py --check      # exit 1 when that part differs from what the recording gives

Every number of the tables is a ``name: value`` line of the recording: nothing is copied by hand.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "coverage.txt"
PAGE = ROOT / "docs" / "intervals.md"
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
COUNTS = (3, 5, 10, 20, 50)
MISS_RISKS = ("0.05", "0.04", "0.02", "0.01")
FRACTIONS = ("1.0", "0.2", "auto")
FRACTION_RULES = {"10": "10", "adaptive": "adaptive (0.3 relative, defaults)"}


def read(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The ``# key: value`` header and the ``name: value`` figures of a recording."""
    header, figures = {}, {}
    for line in path.read_text("utf-8").splitlines():
        target = header if line.startswith("# ") else figures
        key, _, value = line.removeprefix("# ").partition(": ")
        target[key] = value
    return header, figures


def percent(text: str) -> str:
    value = float(text)
    return "—" if math.isnan(value) else f"{100 * value:.1f} %"


def cases(figures: dict[str, str]) -> list[str]:
    return [key.removesuffix("_what") for key in figures if key.endswith("_what")]


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(row)} |" for row in rows)]


def fixed_table(figures: dict[str, str]) -> list[str]:
    """Per case, coverage of the reported intervals at each count (with the share reported when not all are)."""
    rows = []
    for case in cases(figures):
        cells = []
        for n in COUNTS:
            reported = float(figures[f"{case}_{n}_reported"])
            covered = percent(figures[f"{case}_{n}_coverage"])
            withheld = figures.get(f"{case}_{n}_withheld_coverage")
            aside = f"; withheld: {percent(withheld)}" if withheld else ""
            if reported == 0:
                cells.append(f"none{aside}")
            elif reported < 0.995:
                cells.append(f"{covered} ({100 * reported:.{0 if reported >= 0.01 else 1}f} % have one{aside})")
            else:
                cells.append(f"**{covered}**")
        rows.append([f"`{case}`: {figures[f'{case}_what']}", *cells])
    return markdown(["case", *(f"{n} trials" for n in COUNTS)], rows)


def before_table(figures: dict[str, str]) -> list[str]:
    """What the Student-t interval printed before covered on the same levels."""
    rows = [[f"`{case}`", *(percent(figures[f"{case}_{n}_student_t"]) for n in COUNTS)] for case in cases(figures)]
    return markdown(["case", *(f"{n} trials" for n in COUNTS)], rows)


def miss_table(figures: dict[str, str]) -> list[str]:
    """Per deletion case and candidate miss risk: the trials it asks for, and the coverage of the intervals there."""
    rows = []
    for case in cases(figures):
        if f"{case}_hit_probability" in figures:
            cells = [
                f"{figures[f'miss_{case}_{risk}_trials']} · {percent(figures[f'miss_{case}_{risk}_coverage'])}"
                for risk in MISS_RISKS
            ]
            rows.append([f"`{case}`", figures[f"{case}_hit_probability"], *cells])
    return markdown(["case", "p", *(f"miss risk {risk}" for risk in MISS_RISKS)], rows)


def adaptive_table(figures: dict[str, str]) -> list[str]:
    rows = []
    for case in cases(figures):
        prefix = f"adaptive_{case}"
        cells = [
            f"{adaptive_covered(figures, f'{prefix}_{rule}')} · {figures[f'{prefix}_{rule}_trials']}"
            for rule in ("min20", "min10")
        ]
        cells.append(f"{percent(figures[f'{prefix}_before_coverage'])} · {figures[f'{prefix}_before_trials']}")
        rows.append([f"`{case}`", figures[f"{prefix}_target"], *cells])
    header = ["case", "target (relative half-width)", "default rule (`min` 20): covering · trials", "`min` 10",
              "before (`min` 3, Student t)"]  # fmt: skip
    return markdown(header, rows)


def adaptive_covered(figures: dict[str, str], name: str) -> str:
    """The coverage at the stop, or ``none`` where no level had an honest interval by ``max``."""
    reported = float(figures[f"{name}_reported"])
    if reported == 0:
        return "none"
    share = "" if reported >= 0.995 else f" ({100 * reported:.0f} % have one)"
    return f"{percent(figures[f'{name}_coverage'])}{share}"


def fraction_table(figures: dict[str, str]) -> list[str]:
    rows = []
    for rule, label in FRACTION_RULES.items():
        for fraction in FRACTIONS:
            name = f"fraction_{rule}_{fraction}"
            shares = [percent(figures[f"{name}_{stat}"]) for stat in ("coverage", "above")]
            rows.append([label, fraction, *shares, figures[f"{name}_trials"], figures[f"{name}_examples_per_trial"]])
    header = ["trials", "`eval_fraction`", "covering the truth", "truth above the interval", "trials per level",
              "examples per trial"]  # fmt: skip
    return markdown(header, rows)


def render(path: Path = RESULTS) -> str:
    """The generated part of ``docs/intervals.md``."""
    header, figures = read(path)
    parts = [
        f"Recorded with `{header['command']}` ({header['started']}; {header['machine']}; load average "
        f"{header['load_before']} before, {header['load_after']} after: the machine was shared). "
        f"{figures['replicates']} levels per case and count; {figures['studies']} sweeps per `eval_fraction` row "
        "(3 levels each). Bold: every level had an interval.",
        "",
        "**Fixed trial counts: share of the reported intervals that cover the truth** (in parentheses where not "
        "every level has one: the share that has, and how often the bootstrap-t would have covered where the flag "
        "withholds it; `none`: no level has one)",
        "",
        *fixed_table(figures),
        "",
        "**The same levels, Student t clipped to the metric's range** (what the toolkit printed before)",
        "",
        *before_table(figures),
        "",
        "**Trials a deletion level needs, by miss risk** (the chance that every trial misses a given weight, "
        "`(1 − p)^n`, at most the miss risk; `MISS_RISK` in `cognitive_reserve/intervals.py`): trials · share of "
        "the intervals at that count covering the truth",
        "",
        *miss_table(figures),
        "",
        "**Adaptive trials** (`trials: {ci_half_width: <target>, relative: true, max: 50}`; the target is the "
        "relative half-width a 20-trial interval has on average): share of the intervals at the stop covering the "
        "truth (in parentheses where not every level stopped on an interval; `none`: no level did, by `max`) · "
        "mean trials per level",
        "",
        *adaptive_table(figures),
        "",
        "**Subsampled trials** (`tests/helpers/unit_regression.py`: MSE under weight noise σ = 0.1, 0.3, 1.0, 60 "
        "units of 5 items; every level had an interval)",
        "",
        *fraction_table(figures),
        "",
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the table in docs/intervals.md is stale")
    args = parser.parse_args()
    text = PAGE.read_text("utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{BEGIN}\n{render()}{END}{tail}"
    if args.check:
        if updated != text:
            sys.exit(f"{PAGE.relative_to(ROOT)} is stale: run python bench/coverage_table.py")
        return
    PAGE.write_text(updated, "utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
