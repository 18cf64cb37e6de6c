"""One LightningDataModule per dataset family (imported on first use, PEP 562)."""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Cifar10TasksDataModule": "datamodules.cifar10",
    "DigitsTasksDataModule": "datamodules.digits",
    "EncodedTasksDataModule": "datamodules.encoded_tasks",
    "GaussianTasksDataModule": "datamodules.gaussian_tasks",
    "GlueDataModule": "datamodules.glue",
    "LabeledFeatures": "datamodules.label_pairs",
    "LabelPairTasksDataModule": "datamodules.label_pairs",
    "MnistTasksDataModule": "datamodules.mnist",
    "NewsgroupsTasksDataModule": "datamodules.newsgroups",
    "TextCorpusDataModule": "datamodules.text",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
