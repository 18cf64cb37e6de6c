"""One LightningDataModule per dataset family; ``datamodules.tokenization``: tokenizer helpers the models share."""

from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.digits import DigitsTasksDataModule
from datamodules.encoded_tasks import EncodedTasksDataModule
from datamodules.gaussian_tasks import GaussianTasksDataModule
from datamodules.glue import GlueDataModule
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule
from datamodules.mnist import MnistTasksDataModule
from datamodules.newsgroups import NewsgroupsTasksDataModule
from datamodules.text import TextCorpusDataModule

__all__ = [
    "Cifar10TasksDataModule",
    "DigitsTasksDataModule",
    "EncodedTasksDataModule",
    "GaussianTasksDataModule",
    "GlueDataModule",
    "LabelPairTasksDataModule",
    "LabeledFeatures",
    "MnistTasksDataModule",
    "NewsgroupsTasksDataModule",
    "TextCorpusDataModule",
]
