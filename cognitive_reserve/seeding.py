"""Per-trial seeds: a pure function of (base seed, perturbation, level index, trial index).

Seeds never depend on the training RNG, the device count or the rank, so two runs — or two
models with the same parameter shapes — get exactly the same masks and noise (paired trials).
"""

from __future__ import annotations

import hashlib

import torch


def trial_seed(base_seed: int, perturbation: str, level_index: int, trial_index: int) -> int:
    """A 63-bit seed derived by hashing the four coordinates of one trial."""
    key = f"{base_seed}/{perturbation}/{level_index}/{trial_index}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
