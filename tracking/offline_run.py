"""Read an offline W&B run (``run-<id>.wandb``) back from disk: config, history, summary, metric definitions.

Used by the tests and by ``tracking.preview``; wandb 0.31 has no public reader of its own.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB blocks
of chunks, each with a 7-byte header (crc32 4, length 2, type 1: full/first/middle/last) and a
piece of one serialized ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
FILE_HEADER = 7
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What a run logged: config, history rows (``_step`` included), summary and the metric
    definitions (``define_metric``: ``{name or glob: {"step_metric": ..., "summary_none": ...}}``); its group,
    name, tags and job type."""

    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    job_type: str = ""

    def series(self, key: str) -> list:
        """Every logged value of ``key``, in logging order."""
        return [row[key] for row in self.history if key in row]

    def logged_keys(self) -> set[str]:
        return {key for row in self.history for key in row}

    def curve(self, key: str, x: str) -> dict[float, object]:
        """``{x value: key value}`` over the history rows holding both (a curve keyed by its step metric)."""
        return {row[x]: row[key] for row in self.history if key in row and x in row}


def find_runs(root: str | Path) -> list[Path]:
    """All ``run-*.wandb`` files under ``root``."""
    return sorted(Path(root).rglob("run-*.wandb"))


def read_run(path: str | Path) -> OfflineRun:
    run = OfflineRun()
    for record in _records(Path(path).read_bytes()):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            for item in record.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
            for item in record.summary.remove:
                run.summary.pop(_key(item), None)
        elif kind == "run":
            run.group, run.name, run.job_type = record.run.run_group, record.run.display_name, record.run.job_type
            run.tags = list(record.run.tags)
        elif kind == "metric":
            metric = record.metric
            run.metrics[metric.name or metric.glob_name] = {
                "step_metric": metric.step_metric or None,
                "summary_none": metric.summary.none,
            }
    return run


def _key(item: object) -> str:
    return item.key or "/".join(item.nested_key)  # type: ignore[attr-defined]


def _records(data: bytes) -> Iterator[wandb_internal_pb2.Record]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending = FILE_HEADER, b""
    while pos + CHUNK_HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK_HEADER:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        payload = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""
