"""MNIST label-pair tasks through torchvision (28×28 pixels → 784 features)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from torchvision.datasets import MNIST

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@declared("data")
class MnistTasksDataModule(LabelPairTasksDataModule):
    """Label-pair tasks on MNIST; every field of ``LabelPairTasksDataModule`` too."""

    num_classes = 10

    def __init__(
        self,
        root: Annotated[
            str,
            Field(
                "directory holding `MNIST/raw/<idx files>` (torchvision's layout)",
                valid="directory with `MNIST/raw/*-ubyte`, unless `download: true`",
            ),
        ] = "data",
        download: Annotated[bool, Field("fetch MNIST into `root` when the files are missing (needs network)")] = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_fields(MnistTasksDataModule, locals())
        self.root = root
        self.download = download
        if not download and not self._has_raw_files():
            raise ConfigError(
                "data.root", root, f"no MNIST IDX files in {Path(root) / 'MNIST' / 'raw'} (expected {RAW_FILES})"
            )

    @property
    def raw_num_features(self) -> int:
        return 28 * 28

    def prepare_data(self) -> None:
        if self.download:
            for train in (True, False):
                MNIST(self.root, train=train, download=True)

    def load_split(self, split: str) -> LabeledFeatures:
        dataset = MNIST(self.root, train=split == "train", download=False)
        features = dataset.data.reshape(len(dataset.data), -1).float() / 255.0
        return LabeledFeatures(features, dataset.targets.long())

    def _has_raw_files(self) -> bool:
        raw = Path(self.root) / "MNIST" / "raw"
        return all((raw / name).is_file() for name in RAW_FILES)
