"""The six GLUE tasks of the paper's Table 2: their columns, labels and metrics (no framework imports).

Column and label names are those of the Hugging Face dataset ``nyu-mll/glue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cognitive_reserve.errors import ConfigError


@dataclass(frozen=True)
class GlueTask:
    """One GLUE classification task.

    ``text_columns`` has one entry for single-sentence tasks and two for sentence-pair tasks;
    ``label_names[i]`` is the meaning of label ``i``; ``metrics`` lists metric names, the one the
    paper reports first (``mcc``: Matthews correlation, ``accuracy``, ``f1`` of label 1).
    """

    name: str
    display_name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a data file of this task must have."""
        return (*self.text_columns, "label")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def main_metric(self) -> str:
        """The metric of the paper's Table 2 (Matthews correlation for CoLA, accuracy elsewhere)."""
        return self.metrics[0]


GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"), ("mcc",)),
        GlueTask("sst2", "SST-2", ("sentence",), ("negative", "positive"), ("accuracy",)),
        GlueTask("mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("accuracy", "f1")),
        GlueTask("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"), ("accuracy", "f1")),
        GlueTask("qnli", "QNLI", ("question", "sentence"), ("entailment", "not_entailment"), ("accuracy",)),
        GlueTask("rte", "RTE", ("sentence1", "sentence2"), ("entailment", "not_entailment"), ("accuracy",)),
    )
}


def glue_task(name: str, field: str = "task") -> GlueTask:
    """The task called ``name``; an unknown name is a ``ConfigError`` on ``field``."""
    if not isinstance(name, str) or name not in GLUE_TASKS:
        raise ConfigError(field, name, f"unknown GLUE task; choose one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[name]


def check_glue_task(field: str, name: Any) -> GlueTask:
    """``glue_task`` in the argument order of a ``cognitive_reserve.fields.Field`` check."""
    return glue_task(name, field)
