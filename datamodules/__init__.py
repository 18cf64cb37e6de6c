"""One LightningDataModule per dataset family."""

from datamodules.digits import DigitsTasksDataModule
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule
from datamodules.mnist import MnistTasksDataModule

__all__ = ["DigitsTasksDataModule", "LabelPairTasksDataModule", "LabeledFeatures", "MnistTasksDataModule"]
