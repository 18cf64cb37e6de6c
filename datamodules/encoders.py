"""Frozen pretrained encoders that turn raw inputs into feature vectors (paper §3).

The paper fits its linear multitask layer on features of a frozen ResNet-50 (CIFAR-10) and a
frozen BERT (20 Newsgroups). Here any torchvision classification model with any of its weights,
and any Hugging Face text encoder, can play that role.

An encoder is cheap to construct: the constructor only validates the names (bad input is a
``ConfigError`` naming the field) and the network itself is built on the first ``encode`` call,
so a feature cache hit never loads any weights. ``identity()`` lists everything that determines
the features; the feature cache keys its files by it.
"""

from __future__ import annotations

import difflib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from torch import nn
from torchvision.transforms import v2

from cognitive_reserve.errors import ConfigError, check_text, first_line

#: ImageNet channel statistics (torchvision's classification weights were trained with them).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Pooling = Literal["mean", "pooler"]


class FrozenEncoder(ABC):
    """A frozen network mapping a batch of raw inputs to float32 features (n × ``num_features``)."""

    @property
    @abstractmethod
    def num_features(self) -> int:
        """Dimension of one feature vector."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that determines the features (JSON-serialisable): the feature cache's key."""

    @abstractmethod
    def encode(self, inputs: Any, device: torch.device) -> torch.Tensor:
        """Features of one batch of inputs, computed on ``device`` (returned on the CPU)."""

    def release(self) -> None:
        """Free the network (and its device memory) after encoding; it is rebuilt when needed."""
        self._network = None


class TorchvisionImageEncoder(FrozenEncoder):
    """Penultimate-layer features of a torchvision image classifier (its last ``nn.Linear`` removed).

    Its data module (``Cifar10TasksDataModule``) checks the arguments' types and ranges.

    Args:
        name: a model of ``torchvision.models.list_models(module=torchvision.models)``, e.g. ``resnet50``.
        weights: a member of the model's weights enum (``IMAGENET1K_V2``, ``DEFAULT``, ...) or None
            for a randomly initialised network (seeded by ``init_seed``).
        image_size: resize images to this square size; None: the weights' own preprocessing
            (ResNet-50 ``IMAGENET1K_V2``: resize to 232, centre crop 224), or 224 without weights.
        init_seed: seed of the random initialisation when ``weights`` is None.
    """

    def __init__(
        self,
        name: str = "resnet50",
        weights: str | None = "IMAGENET1K_V2",
        image_size: int | None = None,
        init_seed: int = 0,
    ) -> None:
        check_text("encoder", name)
        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "e.g. resnet50, resnet18, vit_b_16, convnext_tiny"
            raise ConfigError("encoder", name, f"not a torchvision image classifier; {hint}")
        if weights is not None:
            check_text("weights", weights)
        self.name = name
        self.weights = _weights_member(name, weights)
        self.image_size = image_size
        self.init_seed = init_seed
        self.preprocess = self._preprocessing()
        self._network: nn.Module | None = None
        self._num_features: int | None = None

    @property
    def num_features(self) -> int:
        if self._num_features is None:
            with torch.device("meta"):  # shapes only: no memory, no weights
                self._num_features = _drop_classifier(torchvision.models.get_model(self.name, weights=None))
        return self._num_features

    def identity(self) -> dict[str, Any]:
        return {
            "kind": "torchvision",
            "name": self.name,
            "weights": None if self.weights is None else f"{self.weights} {self.weights.url}",
            "init_seed": self.init_seed if self.weights is None else None,
            "preprocess": repr(self.preprocess),
        }

    def encode(self, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Features of uint8 images (n × 3 × H × W)."""
        network = self._build(device)
        with torch.inference_mode():
            images = self.preprocess(inputs.to(device))
            return network(images).flatten(1).float().cpu()

    def _build(self, device: torch.device) -> nn.Module:
        if self._network is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.init_seed)
                try:
                    network = torchvision.models.get_model(self.name, weights=self.weights)
                except (OSError, RuntimeError) as err:  # download or checkpoint failure
                    raise ConfigError("weights", str(self.weights), f"cannot load: {first_line(err)}") from err
            self._num_features = _drop_classifier(network)
            self._network = network.eval().requires_grad_(False)
        return self._network.to(device)

    def _preprocessing(self) -> nn.Module:
        if self.image_size is None and self.weights is not None:
            return self.weights.transforms()
        size = self.image_size or 224
        return v2.Compose(
            [
                v2.Resize((size, size), antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )


class HuggingFaceTextEncoder(FrozenEncoder):
    """Sentence features of a Hugging Face text encoder (``AutoModel`` + ``AutoTokenizer``).

    Its data module (``NewsgroupsTasksDataModule``) checks the arguments' types and ranges.

    Args:
        name: a hub id (``bert-base-uncased``) or a local folder saved with ``save_pretrained``.
        pooling: ``mean``: mean of the last hidden state over the real (unpadded) tokens;
            ``pooler``: the model's pooled output (BERT: tanh layer on the [CLS] token).
        max_tokens: keep the first N tokens of every text (special tokens included).
        revision: hub revision (branch, tag or commit) of ``name``.
    """

    def __init__(
        self,
        name: str = "bert-base-uncased",
        pooling: Pooling = "mean",
        max_tokens: int = 256,
        revision: str | None = None,
    ) -> None:
        check_text("encoder", name)
        from transformers import AutoConfig

        try:
            self.config = AutoConfig.from_pretrained(name, revision=revision)
        except (OSError, ValueError) as err:
            raise ConfigError(
                "encoder", name, f"not a local model folder nor a Hugging Face hub model: {first_line(err)}"
            ) from None
        if not hasattr(self.config, "hidden_size"):
            raise ConfigError("encoder", name, f"{type(self.config).__name__} has no hidden_size: not a text encoder")
        self.name = name
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.revision = revision
        self.commit = None if Path(name).is_dir() else _hub_commit(name, revision)
        self._network: nn.Module | None = None
        self._tokenizer: Any = None
        self._identity: dict[str, Any] | None = None

    @property
    def num_features(self) -> int:
        return int(self.config.hidden_size)

    def identity(self) -> dict[str, Any]:
        if self._identity is None:  # hashing a local folder reads every weight file once
            self._identity = {
                "kind": "huggingface",
                "name": self.name,
                "files": _files_digest(Path(self.name)) if Path(self.name).is_dir() else None,
                "commit": self.commit or self.revision,
                "pooling": self.pooling,
                "max_tokens": self.max_tokens,
            }
        return self._identity

    def encode(self, inputs: Sequence[str], device: torch.device) -> torch.Tensor:
        """Features of a batch of texts."""
        network = self._build(device)
        tokens = self._tokenizer(
            list(inputs), truncation=True, max_length=self.max_tokens, padding=True, return_tensors="pt"
        ).to(device)
        with torch.inference_mode():
            output = network(**tokens)
            if self.pooling == "pooler":
                if getattr(output, "pooler_output", None) is None:
                    raise ConfigError("pooling", "pooler", f"{self.name} has no pooled output; use pooling: mean")
                return output.pooler_output.float().cpu()
            mask = tokens["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)
            summed = (output.last_hidden_state * mask).sum(dim=1)
            return (summed / mask.sum(dim=1).clamp(min=1)).float().cpu()

    def _build(self, device: torch.device) -> nn.Module:
        if self._network is None:
            from transformers import AutoModel, AutoTokenizer

            revision = self.commit or self.revision  # exactly the commit the cache key names
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.name, revision=revision)
                network = AutoModel.from_pretrained(self.name, revision=revision)
            except (OSError, ValueError) as err:  # download failure, missing weights or tokenizer files
                raise ConfigError("encoder", self.name, f"cannot load: {first_line(err)}") from err
            self._network = network.eval().requires_grad_(False)
        return self._network.to(device)


def _weights_member(name: str, weights: str | None) -> torchvision.models.WeightsEnum | None:
    """The weights enum member called ``weights`` (``DEFAULT`` resolved) of model ``name``."""
    if weights is None:
        return None
    enum = torchvision.models.get_model_weights(name)
    member = weights.split(".")[-1]  # accept "ResNet50_Weights.IMAGENET1K_V2" as well
    if member not in enum.__members__:
        choices = ", ".join(m for m in enum.__members__ if m != "DEFAULT") or "none"
        raise ConfigError("weights", weights, f"{name} has no such weights; choose one of {choices}, DEFAULT or null")
    return enum[member]


def _drop_classifier(network: nn.Module) -> int:
    """Replace the last ``nn.Linear`` by the identity, in place; returns its input dimension."""
    linears = [(name, module) for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ConfigError("encoder", type(network).__name__, "has no final nn.Linear to take features before")
    path, last = linears[-1]
    parent_path, _, attribute = path.rpartition(".")
    setattr(network.get_submodule(parent_path), attribute, nn.Identity())
    return last.in_features


def _hub_commit(name: str, revision: str | None) -> str | None:
    """The commit of hub model ``name`` that ``revision`` (None: the default branch) resolves to."""
    from transformers.utils.hub import cached_file, extract_commit_hash

    return extract_commit_hash(cached_file(name, "config.json", revision=revision), None)


def _files_digest(folder: Path) -> str:
    """sha256 over the names and contents of every file of a local model folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
