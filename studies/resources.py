"""What each SLURM job of a study asks for: memory per node and CPUs per task.

The study's ``executor.mem_gb`` and ``executor.cpus_per_task`` when it sets them; otherwise the default of its
arms' model family (the largest over the arms). A job that asks for no memory is given the whole node by
SLURM, and no other job runs beside it: ``--max-parallel`` would mean nothing. The job's torch threads
follow its CPUs (``OMP_NUM_THREADS`` = the CPUs per task, set by the job).
"""

from __future__ import annotations

from dataclasses import dataclass

from studies.points import lookup, merged_config
from studies.spec import Study

#: Memory per node in GB of a point without GPUs, by model class. A ``run.py fit`` of the tiny CPU configs peaks
#: at 1.3 GB resident (digits, tiny GPT-2: docs/studies.md, "What each job asks for"): the linear models get
#: about twice that; GPT-2 and GLUE room for their full-size configs (not measured here).
CPU_MEMORY_GB = {"LinearMultitaskRegression": 3.0, "GPT2LanguageModel": 8.0, "GPT2GlueClassifier": 8.0}
#: A model class not in the table.
OTHER_MEMORY_GB = 8.0
#: Memory per GPU of a point with GPUs (not measured here: no GPU), and CPUs per task (its data loading).
GPU_MEMORY_GB = 16.0
GPU_TASK_CPUS = 4


@dataclass(frozen=True)
class Resources:
    """One job's request: memory per node, CPUs per task, and where the numbers come from."""

    mem_gb: float
    cpus_per_task: int
    source: str

    def describe(self) -> str:
        return f"{self.mem_gb:g} GB per node, {self.cpus_per_task} CPU(s) per task ({self.source})"


def model_classes(study: Study) -> list[str]:
    """The model class name of every arm (as its config and overrides give it)."""
    names = []
    for name, arm in study.arms.items():
        config = merged_config(arm.config, {**study.overrides, **arm.overrides})
        names.append(str(lookup(config, "model.class_path") or f"<no model class in arm {name}>").rsplit(".", 1)[-1])
    return names


def point_resources(study: Study) -> Resources:
    """The study's settings, or its model family's defaults where they are null."""
    settings = study.executor
    gpus = settings.gpus_per_node
    families = sorted(set(model_classes(study)))
    if gpus:
        default_mem, default_cpus, why = GPU_MEMORY_GB * gpus, GPU_TASK_CPUS, f"{gpus} GPUs"
    else:
        default_mem = max(CPU_MEMORY_GB.get(family, OTHER_MEMORY_GB) for family in families)
        default_cpus, why = 1, ", ".join(families)
    sources = [
        "executor.mem_gb" if settings.mem_gb is not None else f"memory: the default for {why}",
        "executor.cpus_per_task" if settings.cpus_per_task is not None else "CPUs: the default",
    ]
    return Resources(
        mem_gb=settings.mem_gb if settings.mem_gb is not None else default_mem,
        cpus_per_task=settings.cpus_per_task if settings.cpus_per_task is not None else default_cpus,
        source="; ".join(sources),
    )
