"""Small synthetic data in the shape of any GLUE task, for CPU smoke runs (``configs/glue/tiny.yaml``) and tests.

Single-sentence tasks: label 1 when the sentence's adjective is a positive one. Sentence-pair
tasks: label 1 when the second text uses the same words as the first, reordered. The files have
the task's GLUE columns (``idx`` included), so ``GlueDataModule`` reads them like real GLUE files.

    python -m datamodules.glue_sample data/glue_tiny --tasks sst2 mrpc --format jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datamodules.glue_tasks import GLUE_TASKS, glue_task

SUBJECTS = ["the film", "this book", "our trip", "the meal", "that song", "the show", "my day", "the plan"]
POSITIVE = ["good", "great", "lovely", "brilliant", "pleasant", "superb"]
NEGATIVE = ["bad", "awful", "boring", "dreadful", "poor", "dull"]
FILLERS = ["really", "quite", "truly", "rather", "so", "very"]
FORMATS = ("jsonl", "json", "csv", "parquet")


def sample_records(task: str, count: int, seed: int) -> list[dict]:
    """``count`` labelled examples of ``task``'s shape, balanced and seeded."""
    spec = glue_task(task)
    rng = random.Random(seed)
    records = []
    for index in range(count):
        label = index % 2
        if len(spec.text_columns) == 1:
            adjective = rng.choice(POSITIVE if label else NEGATIVE)
            texts = [f"{rng.choice(SUBJECTS)} was {rng.choice(FILLERS)} {adjective} ."]
        else:
            first = _sentence(rng)
            if label:
                words = first.split()
                rng.shuffle(words)
                second = " ".join(words)
            else:
                second = _sentence(rng)
            texts = [first, second]
        records.append({**dict(zip(spec.text_columns, texts, strict=True)), "label": label, "idx": index})
    rng.shuffle(records)
    return records


def write_records(records: list[dict], path: Path) -> Path:
    """Write records as ``.jsonl`` / ``.json`` (one object per line), ``.csv`` or ``.parquet``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        raise ValueError(f"unsupported file type {suffix!r}")
    return path


def write_glue_sample(
    directory: str | Path, task: str, train: int = 256, validation: int = 64, fmt: str = "jsonl", seed: int = 0
) -> dict[str, Path]:
    """``<directory>/<task>/{train,validation}.<fmt>``; returns ``{split: path}``."""
    root = Path(directory) / task
    return {
        split: write_records(sample_records(task, count, seed + offset), root / f"{split}.{fmt}")
        for offset, (split, count) in enumerate((("train", train), ("validation", validation)))
    }


def _sentence(rng: random.Random) -> str:
    adjective = rng.choice(POSITIVE + NEGATIVE)
    return f"{rng.choice(SUBJECTS)} was {rng.choice(FILLERS)} {adjective} and {rng.choice(SUBJECTS)} was not"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", help="output directory; files go to <directory>/<task>/")
    parser.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"], choices=sorted(GLUE_TASKS))
    parser.add_argument("--format", default="jsonl", choices=FORMATS)
    parser.add_argument("--train", type=int, default=256, help="training examples per task")
    parser.add_argument("--validation", type=int, default=64, help="validation examples per task")
    args = parser.parse_args(argv)
    for task in args.tasks:
        for split, path in write_glue_sample(args.directory, task, args.train, args.validation, args.format).items():
            print(f"{task} {split}: {path}")


if __name__ == "__main__":
    main()
