"""scikit-learn's 8×8 digits: ships with scikit-learn, so it is the offline default."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from sklearn.datasets import load_digits

from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule


@declared("data")
class DigitsTasksDataModule(LabelPairTasksDataModule):
    """Label-pair tasks on the 1,797 scikit-learn digits (64 pixel features, 10 classes); every field of
    ``LabelPairTasksDataModule`` too."""

    num_classes = 10

    def __init__(
        self,
        test_fraction: Annotated[float, Field("share of each class held out as the test split", gt=0, le=0.9)] = 0.3,
        split_seed: Annotated[int, Field("seed of that stratified split")] = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_fields(DigitsTasksDataModule, locals())
        self.test_fraction = test_fraction
        self.split_seed = split_seed

    @property
    def raw_num_features(self) -> int:
        return 64

    def load_split(self, split: str) -> LabeledFeatures:
        bunch = load_digits()
        features = torch.tensor(bunch.data, dtype=torch.float32)
        labels = torch.tensor(bunch.target, dtype=torch.long)
        generator = torch.Generator().manual_seed(self.split_seed)
        chosen = []
        for label in range(self.num_classes):
            idx = torch.nonzero(labels == label).flatten()
            idx = idx[torch.randperm(len(idx), generator=generator)]
            cut = round(self.test_fraction * len(idx))
            chosen.append(idx[:cut] if split == "test" else idx[cut:])
        index = torch.cat(chosen).sort().values
        return LabeledFeatures(features[index], labels[index])
