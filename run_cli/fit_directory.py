"""A ``fit`` into a ``default_root_dir`` that already holds a run (a ``checkpoints/*.ckpt``).

Writing a second run there left ``last.ckpt`` of the first next to ``last-v1.ckpt`` of the second, and every
later ``--ckpt_path .../last.ckpt`` loaded the older model. ``check_fit_directory`` refuses such a fit unless it
continues that run (``--ckpt_path last``) or starts over (``--start_over true``: the old directory is moved
aside to ``<default_root_dir>.old-<n>``, never deleted).
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.utilities.rank_zero import rank_zero_only

from cognitive_reserve.errors import ConfigError

#: ``ckpt_path`` values Lightning resolves inside the run's own checkpoint directory.
OWN_CHECKPOINTS = ("last", "best", "hpc")


def check_fit_directory(root: Path, ckpt_path: str | None, start_over: bool) -> Path | None:
    """Refuse a ``fit`` that would write a second run into ``root`` beside an earlier one (stale ``last.ckpt``
    next to ``last-v1.ckpt``); returns where ``--start_over`` moves the earlier run (None: nothing to move).

    Continuing the run (``--ckpt_path last``, or a checkpoint inside ``root``) is allowed. Only global rank 0
    moves anything: the other processes of a distributed fit skip a start-over (rank 0 does it for them).
    """
    continues = continues_run(root, ckpt_path)
    if start_over:
        if continues:
            raise ConfigError(
                "start_over", True, f"contradicts --ckpt_path {ckpt_path}, which continues the run in {root}"
            )
        working = Path.cwd().resolve()
        if root.resolve() in (working, *working.parents):
            raise ConfigError(
                "start_over", True, f"trainer.default_root_dir={str(root)!r} holds the working directory: not moved"
            )
        if rank_zero_only.rank != 0 or not root.is_dir() or not any(root.iterdir()):
            return None
        return aside_path(root)
    checkpoints = sorted(p.name for p in (root / "checkpoints").glob("*.ckpt"))
    if checkpoints and not continues:
        shown = ", ".join(checkpoints[:3]) + (", ..." if len(checkpoints) > 3 else "")
        raise ConfigError(
            "trainer.default_root_dir",
            str(root),
            f"already holds a run (checkpoints/{shown}); continue it with --ckpt_path last, or train afresh with "
            f"--start_over true (moves it aside to {aside_path(root)})",
        )
    return None


def aside_path(root: Path) -> Path:
    """``<root>.old-<n>`` with the first free ``n`` (1, 2, ...)."""
    n = 1
    while root.with_name(f"{root.name}.old-{n}").exists():
        n += 1
    return root.with_name(f"{root.name}.old-{n}")


def continues_run(root: Path, ckpt_path: str | None) -> bool:
    """Whether ``ckpt_path`` resumes the run in ``root`` (``last``, or one of its own checkpoint files)."""
    if not ckpt_path:
        return False
    return ckpt_path in OWN_CHECKPOINTS or Path(str(ckpt_path)).resolve().is_relative_to(root.resolve())
