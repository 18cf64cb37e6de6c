"""Encoder features computed once, in batches on the best available device, and cached on disk.

A cache file holds the features and labels of one (dataset, split) as safetensors (no pickle:
loading a cache file cannot run code). Its name ends in a hash of the key — dataset, split,
a sha256 fingerprint of the exact raw inputs and labels, and everything that determines the
encoder's output (``FrozenEncoder.identity()``) — and the full key is stored in the file and
compared on load, so a changed encoder, preprocessing or data never reuses stale features.
Files are written to a temporary name and renamed: a crash never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from datamodules.encoders import FrozenEncoder
from datamodules.label_pairs import LabeledFeatures

#: Bump when the file layout or the meaning of a key changes.
FORMAT_VERSION = 1


def best_device() -> torch.device:
    """CUDA if present, then Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def data_fingerprint(inputs: torch.Tensor | list[str], labels: torch.Tensor) -> str:
    """sha256 of the raw inputs (uint8 images or texts) and their labels."""
    digest = hashlib.sha256()
    if isinstance(inputs, torch.Tensor):
        digest.update(f"tensor {inputs.dtype} {tuple(inputs.shape)}".encode())
        digest.update(inputs.contiguous().numpy().tobytes())
    else:
        for text in inputs:
            encoded = text.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
    digest.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


class FeatureCache:
    """Feature files ``<directory>/<dataset>-<split>-<encoder name>-<key hash>.safetensors``.

    Args:
        directory: where the files live (created on the first write).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def path(self, key: dict[str, Any]) -> Path:
        """The file of ``key`` (which must hold ``dataset``, ``split`` and ``encoder.name``)."""
        digest = hashlib.sha256(_canonical(key).encode()).hexdigest()[:20]
        encoder = Path(str(key["encoder"]["name"])).name.replace("-", "_")
        return self.directory / f"{key['dataset']}-{key['split']}-{encoder}-{digest}.safetensors"

    def load(self, key: dict[str, Any]) -> LabeledFeatures | None:
        """The cached features of ``key``, or None when absent, unreadable or made for another key."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as file:
                stored_key = (file.metadata() or {}).get("key")
            tensors = load_file(str(path))
        except Exception as err:  # a damaged file is recomputed, never trusted
            rank_zero_warn(f"features: ignoring unreadable cache file {path} ({type(err).__name__}: {err})")
            return None
        if stored_key != _canonical(key) or set(tensors) != {"features", "labels"}:
            rank_zero_warn(f"features: ignoring cache file {path}: it was written for another key")
            return None
        return LabeledFeatures(tensors["features"], tensors["labels"])

    def save(self, key: dict[str, Any], data: LabeledFeatures) -> Path:
        """Write ``data`` under ``key`` atomically (temporary file in the same folder, then rename)."""
        path = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem}.", suffix=".tmp")
        os.close(handle)
        try:
            tensors = {"features": data.features.float().contiguous(), "labels": data.labels.long().contiguous()}
            save_file(tensors, temporary, metadata={"key": _canonical(key)})
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return path


def cached_features(
    cache: FeatureCache,
    key: dict[str, Any],
    encoder: FrozenEncoder,
    inputs: torch.Tensor | list[str],
    labels: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
) -> LabeledFeatures:
    """Features of ``inputs`` from the cache, or computed by ``encoder`` and then cached."""
    cached = cache.load(key)
    if cached is not None:
        rank_zero_info(f"features: reusing {cache.path(key)}")
        return cached
    description = f"encoding {key['dataset']} {key['split']} ({key['encoder']['name']}, {device})"
    batches = []
    for start in tqdm(range(0, len(inputs), batch_size), desc=description, unit="batch", disable=not progress):
        batches.append(encoder.encode(inputs[start : start + batch_size], device))
    data = LabeledFeatures(torch.cat(batches), labels.long())
    rank_zero_info(f"features: wrote {cache.save(key, data)}")
    return data


def _canonical(key: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT_VERSION, **key}, sort_keys=True, separators=(",", ":"))
