"""Resume a sweep from its CSV — only when the file belongs to the very same sweep.

A sweep's fingerprint hashes its grids (with their ``eval_fraction`` when it is not 1.0), base seed, subject
names, the bytes of every targeted tensor and the CSV's columns (a file written before a column was added is
never appended to), and — for a sweep of given weights (``run.py test``) — where the weights come from
(``WeightsProvenance.identity``: the checkpoint's sha256, so weights outside the targets count too). It is
stored next to the CSV (``<csv>.fingerprint``: its first line; further lines are notes for people, e.g.
``weights: checkpoint runs/x/checkpoints/last.ckpt (sha256 …)``). Re-running a sweep with the same
fingerprint reuses the finished trials; a CSV with another or no fingerprint (other weights, other grid) is
moved aside to ``<csv>.stale-<n>`` — never silently mixed in, never deleted.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from cognitive_reserve.io import read_sweep_csv
from cognitive_reserve.provenance import WeightsProvenance
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.sweep import CSV_COLUMNS, SweepGrid, SweepRow
from cognitive_reserve.targets import select_targets


def sweep_fingerprint(
    subjects: Sequence[SweepSubject], grids: Sequence[SweepGrid], seed: int, weights: WeightsProvenance | None = None
) -> str:
    """A hex digest identifying (grids, seed, subjects and their targeted weights, the CSV columns, and where the
    weights come from when ``weights`` is given)."""
    # eval_fraction enters only where it is not 1.0, so sweeps of the whole data keep their earlier fingerprints
    described = [
        (
            g.perturbation,
            g.levels,
            g.trials,
            sorted(g.options.items()),
            *([g.eval_fraction] if g.eval_fraction != 1.0 else []),
        )
        for g in grids
    ]
    digest = hashlib.sha256(repr((seed, described)).encode())
    digest.update(",".join(CSV_COLUMNS).encode())
    if weights is not None:
        digest.update(weights.identity().encode())
    for subject in subjects:
        digest.update(subject.name.encode())
        for name, tensor in select_targets(subject.module, subject.targets).items():
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def resumable_rows(csv_path: str | Path, fingerprint: str, notes: Sequence[str] = ()) -> list[SweepRow]:
    """Finished rows of this sweep in ``csv_path`` (empty if none); records ``fingerprint`` (and ``notes``, one
    line each after it) for later runs."""
    csv_path = Path(csv_path)
    marker = csv_path.with_name(csv_path.name + ".fingerprint")
    if csv_path.exists():
        if marker.exists() and marker.read_text().partition("\n")[0].strip() == fingerprint:
            return read_sweep_csv(csv_path)
        stale = _free_name(csv_path)
        csv_path.rename(stale)
        warnings.warn(f"{csv_path} came from another sweep (other weights or grid); moved it to {stale}", stacklevel=2)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("".join(f"{line}\n" for line in (fingerprint, *notes)))
    return []


def _free_name(path: Path) -> Path:
    number = 1
    while path.with_name(f"{path.name}.stale-{number}").exists():
        number += 1
    return path.with_name(f"{path.name}.stale-{number}")
