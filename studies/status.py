"""``status``: one row per point — state, wall time, job id, and what explains it (a failure's error line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from studies.points import study_points
from studies.spec import Study
from studies.state import PointStatus, point_status


def last_job_ids(ledger: Path) -> dict[str, str]:
    """The last job id submitted for each point (``launches.jsonl``)."""
    if not ledger.is_file():
        return {}
    ids = {}
    for line in ledger.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash: the next launch writes whole ones again
        ids[entry["point"]] = entry["job_id"]
    return ids


def study_status(study: Study, root: Path) -> list[tuple[str, str, PointStatus]]:
    """``(arm, point, status)`` of every point."""
    outputs = (study.sweep_glob,) if study.compare is not None else ()
    submitted = last_job_ids(root / study.name / "launches.jsonl")
    rows = []
    for point in study_points(study, root):
        status = point_status(point.directory, outputs)
        if status.job_id is None and point.label in submitted and status.state == "pending":
            status = PointStatus(status.state, status.wall_s, submitted[point.label], status.note or "submitted")
        rows.append((point.arm, point.name, status))
    return rows


def show_status(study: Study, root: Path, say: Callable[[str], None] = print) -> int:
    """Print the table and a count per state; exit status 1 when a point failed."""
    rows = study_status(study, root)
    header = ("arm", "point", "state", "wall", "job", "note")
    cells = [(arm, name, s.state, _wall(s.wall_s), s.job_id or "-", s.note) for arm, name, s in rows]
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header) - 1)]
    for row in [header, *cells]:
        say("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + f"  {row[-1]}".rstrip())
    counts: dict[str, int] = {}
    for _, _, status in rows:
        counts[status.state] = counts.get(status.state, 0) + 1
    say(f"study {study.name} under {root / study.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts.get("failed") else 0


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
