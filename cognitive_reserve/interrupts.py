"""Restore weights when the process is told to stop (SIGINT / SIGTERM) in the middle of a sweep.

Without this, a SIGTERM from a cluster scheduler could reach a handler that saves a checkpoint
(Lightning's SLURM requeue does) while the weights are perturbed. Inside ``restore_on_signals``
such a signal first restores the weights, then runs the previous handler, then stops the sweep:
``KeyboardInterrupt`` for SIGINT, ``SweepInterrupted`` for SIGTERM — or, when SIGTERM had its
default action, terminates the process as it would have anyway.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from cognitive_reserve.restore import ParameterSnapshot

HANDLED = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by a signal after its weights were restored (a ``KeyboardInterrupt`` so
    training frameworks shut down gracefully)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"sweep interrupted by {signal.Signals(signum).name}; weights restored")
        self.signum = signum


@contextmanager
def restore_on_signals(snapshot: ParameterSnapshot) -> Iterator[None]:
    """Install the restoring handlers for the duration of the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}

    def handler(signum: int, frame: FrameType | None) -> None:
        snapshot.restore()
        before = previous[signum]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL and signum == signal.SIGTERM:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else SweepInterrupted(signum)

    for signum, before in previous.items():
        if before != signal.SIG_IGN:
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            if before is not None:
                signal.signal(signum, before)
