"""One LightningDataModule per dataset family (imported on first use, PEP 562)."""

from robustness.lazy import lazy_exports

_EXPORTS = {
    "Cifar10TasksDataModule": "datamodules.cifar10",
    "DigitsTasksDataModule": "datamodules.digits",
    "EncodedTasksDataModule": "datamodules.encoded_tasks",
    "GlueDataModule": "datamodules.glue",
    "LabeledFeatures": "datamodules.label_pairs",
    "LabelPairTasksDataModule": "datamodules.label_pairs",
    "MnistTasksDataModule": "datamodules.mnist",
    "NewsgroupsTasksDataModule": "datamodules.newsgroups",
    "TextCorpusDataModule": "datamodules.text",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports("datamodules", _EXPORTS)
