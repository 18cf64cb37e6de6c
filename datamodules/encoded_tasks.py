"""Label-pair tasks on the features of a frozen encoder (paper §3: CIFAR-10, 20 Newsgroups).

Subclasses say how to read raw inputs (``load_raw``) and which encoder to use; this class picks
an optional per-class subset, encodes each split once (``prepare_data`` on the first process of
every node, so other DDP processes find the cache) and hands the features to
``LabelPairTasksDataModule``.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch

from cognitive_reserve.errors import ConfigError, check_text
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.encoders import FrozenEncoder
from datamodules.feature_cache import FeatureCache, best_device, cached_features, data_fingerprint
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule

SPLITS = ("train", "test")


@dataclass(frozen=True)
class RawSplit:
    """Raw inputs of one split (uint8 images n × C × H × W, or a list of texts) with labels (n,)."""

    inputs: torch.Tensor | list[str]
    labels: torch.Tensor


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cognitive-reserve/features`` (``~/.cache/...`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cognitive-reserve" / "features"


def check_cache_dir(field: str, cache_dir: Any) -> str:
    """A non-empty path whose ``~``/``~user`` prefix (if any) expands."""
    try:
        Path(check_text(field, cache_dir)).expanduser()
    except RuntimeError as err:  # "~user" of a user that does not exist
        raise ConfigError(field, cache_dir, f"cannot expand its '~' ({err})") from None
    return cache_dir


def check_device(field: str, name: Any) -> torch.device:
    """A torch device present on this machine."""
    check_text(field, name)
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(field, name, str(err)) from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, True):
        raise ConfigError(field, name, f"{device.type} is not available on this machine")
    return device


@declared("data")
class EncodedTasksDataModule(LabelPairTasksDataModule):
    """Base class of label-pair tasks on frozen-encoder features, cached on disk; every field of
    ``LabelPairTasksDataModule`` too."""

    #: Name of the dataset in cache file names and keys.
    dataset_name: str
    encoder: FrozenEncoder

    def __init__(
        self,
        cache_dir: Annotated[
            str | None,
            Field(
                "directory of the feature cache (null: `~/.cache/cognitive-reserve/features`)",
                valid="null or a non-empty path (`~` and `~user` are expanded; the user must exist)",
                check=check_cache_dir,
            ),
        ] = None,
        encode_batch_size: Annotated[int, Field("inputs per encoder forward pass", ge=1)] = 64,
        device: Annotated[
            str | None,
            Field(
                "where the encoder runs (`cuda`, `cuda:1`, `mps`, `cpu`); null: the best available",
                valid="null or a torch device present on this machine",
                check=check_device,
            ),
        ] = None,
        max_per_class: Annotated[
            int | None,
            Field(
                "encode only a seeded random subset of this many items per class and split (null: all of them); "
                "caps the encoding time on a CPU",
                ge=1,
            ),
        ] = None,
        subset_seed: Annotated[int, Field("seed of that subset")] = 0,
        progress: Annotated[bool, Field("show a progress bar while encoding")] = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        fields = check_fields(EncodedTasksDataModule, locals())
        self.encode_device = best_device() if device is None else fields["device"]
        self.cache = FeatureCache(cache_dir if cache_dir is not None else default_cache_dir())
        self.encode_batch_size = encode_batch_size
        self.max_per_class = max_per_class
        self.subset_seed = subset_seed
        self.progress = progress
        self._features: dict[str, LabeledFeatures] = {}

    @abstractmethod
    def load_raw(self, split: str) -> RawSplit:
        """Raw inputs and labels of ``split`` ∈ {``train``, ``test``}."""

    def download(self) -> None:
        """Fetch the raw data when it is missing and downloading is enabled (first process only)."""

    @property
    def raw_num_features(self) -> int:
        if self._features:
            return next(iter(self._features.values())).features.shape[1]
        return self.encoder.num_features

    def prepare_data(self) -> None:
        self.download()
        for split in SPLITS:
            self.load_split(split)
        self.encoder.release()

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        self.encoder.release()

    def load_split(self, split: str) -> LabeledFeatures:
        if split not in self._features:
            raw = self._subset(self.load_raw(split))
            key = {
                "dataset": self.dataset_name,
                "split": split,
                "data": data_fingerprint(raw.inputs, raw.labels),
                "encoder": self.encoder.identity(),
            }
            try:
                self._features[split] = cached_features(
                    self.cache,
                    key,
                    self.encoder,
                    raw.inputs,
                    raw.labels,
                    self.encode_batch_size,
                    self.encode_device,
                    self.progress,
                )
            except ConfigError as err:  # e.g. weights that cannot be downloaded
                raise prefixed(err) from None
        return self._features[split]

    def _subset(self, raw: RawSplit) -> RawSplit:
        if self.max_per_class is None:
            return raw
        generator = torch.Generator().manual_seed(self.subset_seed)
        chosen = []
        for label in torch.unique(raw.labels):
            idx = torch.nonzero(raw.labels == label).flatten()
            chosen.append(idx[torch.randperm(len(idx), generator=generator)[: self.max_per_class]])
        index = torch.cat(chosen).sort().values
        inputs = raw.inputs[index] if isinstance(raw.inputs, torch.Tensor) else [raw.inputs[i] for i in index.tolist()]
        return RawSplit(inputs, raw.labels[index])


def prefixed(err: ConfigError, prefix: str = "data.") -> ConfigError:
    """The same error with its field named as in the config (``encoder`` → ``data.encoder``)."""
    return err if err.field.startswith(prefix) else ConfigError(prefix + err.field, err.value, err.reason)


def require_files(field: str, root: str, folder: Path, names: tuple[str, ...], what: str, hint: str) -> None:
    """ConfigError naming ``field`` unless every file of ``names`` exists in ``folder``."""
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise ConfigError(field, root, f"no {what} in {folder} (missing {', '.join(missing)}); {hint}")
