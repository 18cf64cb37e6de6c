"""Regenerate the field tables of ``docs/config_reference.md`` (and of ``docs/studies.md``: the study file's
fields) from the declarations (``cognitive_reserve.fields``), and the table of perturbations from what each
registered perturbation declares (``cognitive_reserve.perturbations``).

``python config_reference.py`` rewrites every table between ``<!-- fields: package.Class -->`` and
``<!-- end fields -->``, and between ``<!-- perturbations -->`` and ``<!-- end perturbations -->``; the text
around them is written by hand. ``--check`` only reports whether the
files are up to date (exit 1 when not).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from pathlib import Path

from cognitive_reserve.fields import DECLARED, update_reference
from cognitive_reserve.perturbations import PERTURBATIONS, options

ROOT = Path(__file__).parent
REFERENCE = ROOT / "docs" / "config_reference.md"
#: Every page with generated tables.
PAGES = (REFERENCE, ROOT / "docs" / "studies.md")
#: The packages whose classes a config builds.
CONFIG_PACKAGES = ("callbacks", "datamodules", "lightning_modules")


def config_classes() -> list[type]:
    """Every declared class of ``CONFIG_PACKAGES`` (all their modules imported)."""
    for package in CONFIG_PACKAGES:
        for module in pkgutil.iter_modules([str(ROOT / package)]):
            importlib.import_module(f"{package}.{module.name}")
    return [cls for cls in DECLARED if cls.__module__.split(".")[0] in CONFIG_PACKAGES]


#: The generated table of perturbations in a Markdown file.
PERTURBATION_TABLE = re.compile(r"(<!-- perturbations -->\n).*?(<!-- end perturbations -->)", re.DOTALL)


def perturbation_table() -> str:
    """One row per registered perturbation: its unit, what it models, its levels and its options."""
    rows = [
        "| `perturbations.<name>` | unit | what it models | `levels`: each | options (default) |",
        "|---|---|---|---|---|",
    ]
    for name, cls in PERTURBATIONS.items():
        level = f"{cls.level_range}: {cls.level_meaning}"
        extra = "; ".join(f"`{o.name}`: {o.valid} (`{o.default}`): {o.doc}" for o in options(cls)) or "—"
        cells = [f"`{name}`", cls.unit, cls.failure, level, extra]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def regenerate(text: str) -> str:
    """``text`` with every generated table up to date."""
    text = update_reference(text, resolve)
    return PERTURBATION_TABLE.sub(lambda m: f"{m[1]}{perturbation_table()}\n{m[2]}", text)


def resolve(path: str) -> type:
    """The class a dotted path such as ``callbacks.PerturbationSweep`` names."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text("utf-8")
        fresh = regenerate(text)
        if fresh != text:
            stale.append(page)
            if not args.check:
                page.write_text(fresh, "utf-8")
    if args.check:
        print("\n".join(f"{page} is out of date: run python config_reference.py" for page in stale) or "up to date")
        return int(bool(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
