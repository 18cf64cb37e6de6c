"""One LightningDataModule per dataset family."""

from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.digits import DigitsTasksDataModule
from datamodules.encoded_tasks import EncodedTasksDataModule
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule
from datamodules.mnist import MnistTasksDataModule
from datamodules.newsgroups import NewsgroupsTasksDataModule

__all__ = [
    "Cifar10TasksDataModule",
    "DigitsTasksDataModule",
    "EncodedTasksDataModule",
    "LabelPairTasksDataModule",
    "LabeledFeatures",
    "MnistTasksDataModule",
    "NewsgroupsTasksDataModule",
]
