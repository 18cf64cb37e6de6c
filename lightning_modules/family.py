"""What the runs of a model family log, declared once on its LightningModule: ``family = Family(...)``.

The dashboards (``tracking.dashboard``) read it to give every metric, monitor and table the family's runs log a
panel (and no empty ones), and to tell a run's family from its W&B group. ``families()`` finds every declared
family among the LightningModules imported (``lightning_modules`` imports the shipped ones), so a new family needs
no table edited elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L


@dataclass(frozen=True)
class Family:
    """One model family, as its runs log it."""

    name: str  # ``python -m tracking.dashboard --experiment <name>``
    groups: tuple[str, ...]  # W&B group names of its runs start with one of these (``linear-digits``: ``linear``)
    metrics: tuple[str, ...]  # the metrics its sweeps record (the sweep CSV's ``metric`` column)
    stages: tuple[str, ...] = ("fit", "test", "train")  # its sweeps' stages (``train``: per-epoch sensitivity)
    fused_attention: bool = False  # SpectralMonitor splits its fused attention weights into q, k and v
    slope: bool = False  # its runs log R(T) (``RobustnessSlopeReport``: a model per number of tasks)
    glue_tables: bool = False  # its report runs log the GLUE tables (``run_reports.glue``, paper Table 2)


def families() -> dict[str, Family]:
    """Every family declared by a LightningModule class imported so far, by name."""
    found: dict[str, Family] = {}
    pending = list(L.LightningModule.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        family = vars(cls).get("family")
        if isinstance(family, Family):
            found[family.name] = family
    return dict(sorted(found.items()))


def family_of_group(group: str | None) -> Family | None:
    """The family whose group names ``group`` starts with (the longest such start wins), or None."""
    matching = [
        (len(start), family)
        for family in families().values()
        for start in family.groups
        if (group or "").startswith(start)
    ]
    return max(matching, key=lambda match: match[0])[1] if matching else None
