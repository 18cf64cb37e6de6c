"""Restore weights when the process is told to stop (SIGINT / SIGTERM) in the middle of a sweep.

Without this, a SIGTERM from a cluster scheduler could reach a handler that saves a checkpoint
(Lightning's SLURM requeue does) while the weights are perturbed. Inside ``restore_on_signals``
such a signal first restores the weights, then runs the previous handler, then stops the sweep:
``KeyboardInterrupt`` for SIGINT, ``SweepInterrupted`` for SIGTERM — or, when SIGTERM had its
default action, terminates the process as it would have anyway.

While ``defer_stops`` is on, a SIGTERM only runs the previous handler (which records it) and the sweep goes on
with its weights as they are: whoever deferred stops it at a trial boundary. The processes of a DDP run must
agree on where they stop, or one would wait forever in a collective the others left.
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
#: Whether a SIGTERM inside ``restore_on_signals`` is left to the previous handler (``defer_stops``).
_DEFERRED = {"on": False}


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by a signal after its weights were restored (a ``KeyboardInterrupt`` so
    training frameworks shut down gracefully)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"sweep interrupted by {signal.Signals(signum).name}; weights restored")
        self.signum = signum


def defer_stops(on: bool) -> None:
    """Leave a SIGTERM during a sweep to the previous handler (``on``), or stop the sweep at once (the default)."""
    _DEFERRED["on"] = on


@contextmanager
def restore_on_signals(snapshot: ParameterSnapshot) -> Iterator[None]:
    """Install the restoring handlers for the duration of the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}

    def handler(signum: int, frame: FrameType | None) -> None:
        before = previous[signum]
        if _DEFERRED["on"] and signum == signal.SIGTERM and callable(before):
            before(signum, frame)  # recorded: the sweep stops at a trial boundary
            return
        snapshot.restore()
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
