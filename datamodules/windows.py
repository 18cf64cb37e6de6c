"""Windows over one token stream, each token predicted exactly once, with the bytes it stands for.

A stream is ``<|endoftext|> doc₁ <|endoftext|> doc₂ <|endoftext|> …`` (``L`` = ``size``, ``s`` = ``stride``).
Window 0 predicts tokens ``1 … L``; window ``k ≥ 1`` predicts only the tokens no earlier window predicted,
``L+(k-1)·s+1 … L+k·s`` (the last window: up to the stream's end). Every token after the leading
``<|endoftext|>`` is predicted exactly once; targets a window reads only as context are ``IGNORE_INDEX``.
Each window carries the UTF-8 byte count of the text its predicted tokens stand for (end-of-text tokens
stand for 0 bytes), so bits per byte is exact on any subset of windows.

Window ``k`` reads ``L`` tokens from position ``k·s``. Without a ``stride`` the windows are disjoint
blocks (``s = L``): block ``k`` reads tokens ``k·L … k·L+L-1`` and predicts ``k·L+1 … k·L+L``; the last,
partial block is padded on the right. With a ``stride`` (``s ≤ L``: sliding windows, the paper code's
evaluation protocol) every token has at least ``L - s`` tokens of context, and the last window reads the
``L`` tokens that end just before its last target instead (all earlier ones near the start).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

#: Target value of padding positions and of context-only positions (ignored by the loss and the metrics).
IGNORE_INDEX = -100


class TokenWindows(Dataset):
    """``{input_ids, targets, language, num_bytes}`` windows of one token stream (see the module docstring).

    ``stride`` None: disjoint blocks (stride ``size``); a ``stride``: sliding windows.
    """

    def __init__(
        self, stream: torch.Tensor, byte_lengths: torch.Tensor, size: int, language: int, stride: int | None = None
    ) -> None:
        self.stream = stream
        self.size = size
        self.language = language
        step = size if stride is None else stride
        count = 1 + math.ceil(max(len(stream) - 1 - size, 0) / step) if len(stream) > 1 else 0
        index = torch.arange(count)
        #: Stream positions of each window's predicted tokens: ``first_target … last_target``.
        self.last_target = torch.clamp(size + index * step, max=len(stream) - 1)
        self.first_target = torch.where(index == 0, 1, size + (index - 1) * step + 1)
        #: Stream position of each window's first input token.
        self.start = index * step if stride is None else torch.clamp(self.last_target - size, min=0)
        predicted_bytes = _predicted_bytes(stream, byte_lengths)
        self.num_bytes = predicted_bytes[self.last_target] - predicted_bytes[self.first_target - 1]

    def __len__(self) -> int:
        return len(self.last_target)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        start, last = int(self.start[index]), int(self.last_target[index])
        window = self.stream[start : last + 1].long()
        inputs = torch.zeros(self.size, dtype=torch.long)
        targets = torch.full((self.size,), IGNORE_INDEX, dtype=torch.long)
        inputs[: len(window) - 1] = window[:-1]
        targets[: len(window) - 1] = window[1:]
        targets[: int(self.first_target[index]) - 1 - start] = IGNORE_INDEX  # predicted by an earlier window
        return {"input_ids": inputs, "targets": targets, "language": self.language, "num_bytes": self.num_bytes[index]}


def _predicted_bytes(stream: torch.Tensor, byte_lengths: torch.Tensor) -> torch.Tensor:
    """``[i]``: UTF-8 bytes of the stream's tokens ``1 … i`` (token 0 is never predicted)."""
    return torch.cat([torch.zeros(1, dtype=torch.int64), byte_lengths[stream[1:].long()].cumsum(0)])
