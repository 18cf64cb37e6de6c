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
from typing import Any

import torch

from datamodules.encoders import FrozenEncoder
from datamodules.feature_cache import FeatureCache, best_device, cached_features, data_fingerprint
from datamodules.label_pairs import LabeledFeatures, LabelPairTasksDataModule
from robustness.errors import ConfigError, check_bool, check_int, check_text

SPLITS = ("train", "test")


@dataclass(frozen=True)
class RawSplit:
    """Raw inputs of one split (uint8 images n × C × H × W, or a list of texts) with labels (n,)."""

    inputs: torch.Tensor | list[str]
    labels: torch.Tensor


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cognitive-reserve/features`` (``~/.cache/...`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cognitive-reserve" / "features"


class EncodedTasksDataModule(LabelPairTasksDataModule):
    """Base class of label-pair tasks on frozen-encoder features, cached on disk.

    Args:
        cache_dir: directory of the feature cache (None: ``~/.cache/cognitive-reserve/features``).
        encode_batch_size: inputs per encoder forward pass.
        device: where the encoder runs (``cuda``, ``cuda:1``, ``mps``, ``cpu``); None: the best available.
        max_per_class: encode only a seeded random subset of this many items per class and split
            (None: all of them). Caps the encoding time on a CPU.
        subset_seed: seed of that subset.
        progress: show a progress bar while encoding.
        **kwargs: see ``LabelPairTasksDataModule``.
    """

    #: Name of the dataset in cache file names and keys.
    dataset_name: str
    encoder: FrozenEncoder

    def __init__(
        self,
        cache_dir: str | None = None,
        encode_batch_size: int = 64,
        device: str | None = None,
        max_per_class: int | None = None,
        subset_seed: int = 0,
        progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cache_dir is not None:
            check_text("data.cache_dir", cache_dir)
        check_int("data.encode_batch_size", encode_batch_size, minimum=1)
        if max_per_class is not None:
            check_int("data.max_per_class", max_per_class, minimum=1)
        check_int("data.subset_seed", subset_seed)
        check_bool("data.progress", progress)
        self.encode_device = _device(device)
        try:
            self.cache = FeatureCache(cache_dir if cache_dir is not None else default_cache_dir())
        except RuntimeError as err:  # "~user" of a user that does not exist
            raise ConfigError("data.cache_dir", cache_dir, f"cannot expand its '~' ({err})") from None
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
                    self.cache, key, self.encoder, raw.inputs, raw.labels,
                    self.encode_batch_size, self.encode_device, self.progress,
                )  # fmt: skip
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


def _device(name: str | None) -> torch.device:
    if name is None:
        return best_device()
    check_text("data.device", name)
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError("data.device", name, str(err)) from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, True):
        raise ConfigError("data.device", name, f"{device.type} is not available on this machine")
    return device


def prefixed(err: ConfigError, prefix: str = "data.") -> ConfigError:
    """The same error with its field named as in the config (``encoder`` → ``data.encoder``)."""
    return err if err.field.startswith(prefix) else ConfigError(prefix + err.field, err.value, err.reason)


def require_files(field: str, root: str, folder: Path, names: tuple[str, ...], what: str, hint: str) -> None:
    """ConfigError naming ``field`` unless every file of ``names`` exists in ``folder``."""
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise ConfigError(field, root, f"no {what} in {folder} (missing {', '.join(missing)}); {hint}")
