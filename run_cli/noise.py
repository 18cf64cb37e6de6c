"""What every run printed that a user can do nothing about, silenced by exact message and module.

``quiet_known_noise``: torch's ``LeafSpec`` deprecation raised from Lightning's own code, and Lightning's
litlogger advertisement. ``quiet_expected_checkpoint_warnings``: two Lightning warnings that are expected, and
only then: a fit from another run's checkpoint (a branch) has other callbacks by design, and a fit continuing
its own run finds its checkpoints there. ``HeldMessages`` keeps log records back until they may print.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from run_cli.fit_directory import continues_run

#: Lightning's logger of ``rank_zero_info``.
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class HeldMessages(logging.Filter):
    """Keeps the records it is given instead of letting them print."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_known_noise() -> None:
    """Silence, by exact message and module, what every run printed that a user can do nothing about."""
    warnings.filterwarnings(  # torch deprecates the LeafSpec Lightning still builds; nothing to act on
        "ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities"
    )
    rank_zero_logger = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, _DropMessages) for f in rank_zero_logger.filters):
        rank_zero_logger.addFilter(_DropMessages("💡 Tip: For seamless cloud logging"))  # an advertisement


def quiet_expected_checkpoint_warnings(root: Path, ckpt_path: str | None) -> None:
    """Silence the two warnings a fit with ``ckpt_path`` is expected to raise (see the module docstring)."""
    if not ckpt_path:
        return
    if continues_run(root, ckpt_path):
        warnings.filterwarnings("ignore", r"Checkpoint directory .* exists and is not empty", UserWarning)
    else:
        warnings.filterwarnings(
            "ignore", r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint", UserWarning
        )
