"""A training ``DataLoader`` that a fit resumed mid-epoch continues exactly where the checkpoint left it.

Lightning saves ``state_dict()`` of a training loader with every checkpoint and hands it back through
``load_state_dict`` before the resumed fit asks for its first batch. The state is where the epoch was: the
random number generator state the epoch's iterator was created with (its shuffling order and worker seeds
come from it) and how many batches it had given. A resumed epoch draws the same order from that state, then
reads and drops the batches already trained on (a read, no training: cheap next to the training they cost).
The global generator is left as it was, so a resume does not disturb what else draws from it.

The iterator of an epoch is made when its first batch is asked for (the moment PyTorch's own iterator draws
its shuffling seed), so a fresh epoch draws exactly what a plain ``DataLoader`` would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """``DataLoader`` with ``state_dict``/``load_state_dict``: the epoch's generator state and batches given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch_rng: torch.Tensor | None = None
        self._given = 0
        self._resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        return self._batches(resume)

    def _batches(self, resume: dict[str, Any] | None) -> Iterator[Any]:
        skip = resume["batches"] if resume and resume.get("rng") is not None else 0
        if 0 < skip < len(self):  # (a finished epoch: the next one starts afresh)
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(resume["rng"])
                self._epoch_rng, iterator = torch.get_rng_state(), super().__iter__()
                for _ in range(skip):
                    next(iterator)
        else:
            skip = 0
            self._epoch_rng, iterator = torch.get_rng_state(), super().__iter__()
        self._given = skip
        for batch in iterator:
            self._given += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the current epoch is: its generator state at the start and the batches given so far."""
        return {"rng": self._epoch_rng, "batches": self._given}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` at the next ``iter()``: the same order, the given batches dropped."""
        self._resume = dict(state)
