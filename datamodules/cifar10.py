"""CIFAR-10 label-pair tasks on the features of a frozen torchvision image encoder (paper §3).

The data is the "python version" of CIFAR-10 in torchvision's layout,
``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``: torchvision
downloads it (``download: true``), or you point ``root`` at a copy. The batches are Python
pickles; they are read with an unpickler that accepts nothing but plain containers and numpy
arrays, so a tampered file cannot run code. With ``check_md5`` (the default) the files must
also match torchvision's checksums of the official release.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from cognitive_reserve.errors import ConfigError, check_text
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.encoded_tasks import EncodedTasksDataModule, RawSplit, prefixed, require_files
from datamodules.encoders import TorchvisionImageEncoder

FOLDER = CIFAR10.base_folder
TRAIN_FILES = tuple(name for name, _ in CIFAR10.train_list)
TEST_FILES = tuple(name for name, _ in CIFAR10.test_list)
META_FILE = CIFAR10.meta["filename"]
#: torchvision's md5 of every file of the official release.
OFFICIAL_MD5 = {**dict(CIFAR10.train_list), **dict(CIFAR10.test_list), META_FILE: CIFAR10.meta["md5"]}
IMAGE_SHAPE = (3, 32, 32)


@declared("data")
class Cifar10TasksDataModule(EncodedTasksDataModule):
    """Label-pair tasks on CIFAR-10 through a frozen torchvision image encoder; every field of
    ``EncodedTasksDataModule`` and ``LabelPairTasksDataModule`` too."""

    num_classes = 10
    dataset_name = "cifar10"

    def __init__(
        self,
        root: Annotated[
            str,
            Field(
                "directory holding `cifar-10-batches-py/` (torchvision's layout)",
                valid="non-empty path holding `cifar-10-batches-py/` (all 7 files), unless `download: true` and "
                "that folder is missing",
            ),
        ] = "data",
        download: Annotated[
            bool, Field("fetch CIFAR-10 into `root` with torchvision when the files are missing (needs network)")
        ] = True,
        check_md5: Annotated[
            bool,
            Field(
                "require the files to match torchvision's md5 of the official release; false to read your own "
                "files in the same layout (e.g. a subset)"
            ),
        ] = True,
        encoder: Annotated[
            str,
            Field(
                "torchvision model name (`resnet50`, `resnet18`, `vit_b_16`, ...)",
                valid="a torchvision classification model (`torchvision.models.list_models`)",
                check=check_text,
            ),
        ] = "resnet50",
        weights: Annotated[
            str | None,
            Field(
                "member of that model's weights enum (`IMAGENET1K_V2`, `IMAGENET1K_V1`, `DEFAULT`) or null for "
                "random initialisation",
                valid="null or a member of that model's weights enum",
                check=check_text,
                later="downloads: in `prepare_data`",
            ),
        ] = "IMAGENET1K_V2",
        image_size: Annotated[
            int | None, Field("resize the 32×32 images to this size; null: the weights' own preprocessing", ge=8)
        ] = None,
        init_seed: Annotated[int, Field("seed of the random initialisation when `weights` is null")] = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_fields(Cifar10TasksDataModule, locals())
        try:
            self.encoder = TorchvisionImageEncoder(encoder, weights, image_size, init_seed)
        except ConfigError as err:
            raise prefixed(err) from None
        self.root = root
        self.download_missing = download
        self.check_md5 = check_md5
        folder = Path(root) / FOLDER
        if not download or folder.is_dir():
            require_files(
                "data.root",
                root,
                folder,
                (*TRAIN_FILES, *TEST_FILES, META_FILE),
                "CIFAR-10 python batches",
                "set data.download=true to fetch them",
            )
            if check_md5:
                self._check_official(folder)

    def download(self) -> None:
        if self.download_missing and not (Path(self.root) / FOLDER).is_dir():
            try:
                CIFAR10(self.root, train=True, download=True)  # torchvision verifies the archive's md5
            except OSError as err:  # no network, or a proxy refusing
                raise ConfigError(
                    "data.download", True, f"cannot download CIFAR-10 into {self.root} ({err}); set data.root to a copy"
                ) from None

    def load_raw(self, split: str) -> RawSplit:
        folder = Path(self.root) / FOLDER
        images, labels = [], []
        for name in TRAIN_FILES if split == "train" else TEST_FILES:
            batch_images, batch_labels = read_batch(folder / name, self.root)
            images.append(batch_images)
            labels.append(batch_labels)
        return RawSplit(torch.cat(images), torch.cat(labels))

    def _check_official(self, folder: Path) -> None:
        for name, md5 in OFFICIAL_MD5.items():
            if not check_integrity(str(folder / name), md5):
                raise ConfigError(
                    "data.root",
                    self.root,
                    f"{folder / name} does not match torchvision's md5 of the official CIFAR-10 release; "
                    "set data.check_md5=false to read other files in this layout",
                )


def read_batch(path: Path, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n × 3 × 32 × 32, uint8) and labels of one CIFAR-10 python batch file."""
    try:
        with path.open("rb") as file:
            entry = SafeUnpickler(file, encoding="latin1").load()
        data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"])
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError, ValueError) as err:
        raise ConfigError("data.root", root, f"{path} is not a CIFAR-10 python batch: {err}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE) or len(labels) != len(data):
        raise ConfigError(
            "data.root",
            root,
            f"{path}: expected 'data' uint8 n×3072 and n 'labels', got {data.dtype} {data.shape} and {len(labels)}",
        )
    if len(labels) and not (labels.min() >= 0 and labels.max() < Cifar10TasksDataModule.num_classes):
        raise ConfigError("data.root", root, f"{path}: labels must lie in 0..9")
    images = torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


class SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),  # how Python 3 writes bytes in protocol 2
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)
