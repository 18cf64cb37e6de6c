"""Where the weights a stage measures come from: a checkpoint, ``init_from``, pretrained weights, or none.

A number is written only if it measures the model it names: ``run.py test`` (and ``validate``/``predict``) needs
to know which weights it scores. ``WeightsProvenance`` says it in one line (``describe``), as W&B config values
(``as_config``) and as the part of a sweep's fingerprint that identifies the weights (``identity``: the
checkpoint's sha256, not its path, so a copied checkpoint still resumes its sweep).

A module says what it holds when freshly built through an optional ``weights_origin(seed)`` method (the
project's modules have one; any other module counts as holding initial weights): trained weights it loaded
itself (``init_from``, ``pretrained``), perhaps with a part that is still initial (a new classification head),
or initial weights only — which some models cannot even be measured with (``unmeasurable``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

Source = Literal["checkpoint", "init_from", "pretrained", "initial", "fit"]
#: Characters of the sha256 shown in the console line (the W&B config and fingerprint file keep all 64).
SHORT_SHA = 12
#: Lightning's ``seed_everything`` leaves the seed here for every process.
SEED_VARIABLE = "PL_GLOBAL_SEED"


@dataclass(frozen=True)
class WeightsProvenance:
    """Where measured weights come from.

    ``source``: ``checkpoint`` (``--ckpt_path``), ``init_from`` (a checkpoint the model loads itself),
    ``pretrained`` (a Hugging Face name or directory), ``initial`` (as constructed, from ``seed``) or ``fit``
    (trained in this process, ``steps`` optimizer steps). ``untrained``: the part that still holds initial
    weights although the source is trained (e.g. a new classification head); ``unmeasurable``: why initial
    weights of this model are no model at all (refused even on request).
    """

    source: Source
    path: str | None = None
    sha256: str | None = None
    seed: int | None = None
    untrained: str | None = None
    unmeasurable: str | None = None
    steps: int | None = None

    @property
    def trained(self) -> bool:
        """Whether every measured weight comes from training (a checkpoint, a fit, or a fully loaded model)."""
        return self.source != "initial" and self.untrained is None

    def describe(self, full: bool = False) -> str:
        """One line, e.g. ``checkpoint runs/x/checkpoints/last.ckpt (sha256 <12 hex digits>…)``; ``full``: all 64
        characters of the sha256."""
        seed = "" if self.seed is None else f", seed {self.seed}"
        if self.source == "initial":
            return f"initial weights{seed} (untrained)"
        if self.source == "fit":
            return f"trained in this process ({self.steps} optimizer steps)"
        sha = "" if self.sha256 is None else f" (sha256 {self.sha256 if full else self.sha256[:SHORT_SHA] + '…'})"
        fresh = "" if self.untrained is None else f"; {self.untrained}: initial weights{seed} (untrained)"
        return f"{self.source} {self.path}{sha}{fresh}"

    def as_config(self) -> dict[str, Any]:
        """The W&B run config's ``weights`` entry (empty fields left out)."""
        fields = {"source": self.source, "path": self.path, "sha256": self.sha256, "seed": self.seed}
        fields |= {"untrained": self.untrained, "steps": self.steps}
        return {key: value for key, value in fields.items() if value is not None}

    def identity(self) -> str:
        """What identifies these weights in a sweep's fingerprint: the content's hash where there is a file."""
        return repr((self.source, self.sha256 or self.path, self.seed, self.untrained, self.steps))


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (computed once per file version: path, size and modification time)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_provenance(path: str | Path) -> WeightsProvenance:
    """Weights restored from the checkpoint file at ``path``."""
    return WeightsProvenance("checkpoint", str(path), file_sha256(path))


def loaded_from(source: Source, path: str, untrained: str | None = None, seed: int | None = None) -> WeightsProvenance:
    """Weights a model loaded itself (``init_from``, ``pretrained``): with the file's sha256 where ``path`` is one
    file, with ``untrained`` naming a part the source does not give (initial weights from ``seed``)."""
    sha = file_sha256(path) if Path(path).is_file() else None
    return WeightsProvenance(source, path, sha, seed if untrained else None, untrained)


def global_seed() -> int | None:
    """The seed ``seed_everything`` set for this process (None when nothing was seeded)."""
    value = os.environ.get(SEED_VARIABLE)
    return int(value) if value is not None else None


def weights_origin(module: nn.Module, seed: int | None) -> WeightsProvenance:
    """What ``module`` holds as constructed: its own ``weights_origin(seed)``, else initial weights from ``seed``."""
    own = getattr(module, "weights_origin", None)
    return own(seed) if callable(own) else WeightsProvenance("initial", seed=seed)


def weights_provenance(
    module: nn.Module, ckpt_path: str | Path | None, seed: int | None, fitted_steps: int = 0
) -> WeightsProvenance:
    """The weights a stage measures: the checkpoint it restores, else those of a fit in this process
    (``fitted_steps`` > 0), else what the module was built with."""
    if ckpt_path:
        return checkpoint_provenance(ckpt_path)
    if fitted_steps > 0:
        return WeightsProvenance("fit", steps=fitted_steps)
    return weights_origin(module, seed)
