"""One process at a time per point directory: an advisory lock (``flock``) on ``<point>/study/lock``.

While the lock is held the file names its owner (host, pid, job id, since); a clean release empties it.
So text found in a free lock file is the trace of a process that died holding it: a stale lock, taken
over (and said so). The kernel frees a dead process's lock by itself, and processes started with the
lock's descriptor (the point's ``run.py``) hold it with their parent: the point stays locked until they
end too. Standard library only: this runs at the start of every job.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


def owner(job_id: str) -> dict[str, Any]:
    """Who takes a lock: this host and process, the job, the time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "job_id": job_id, "since": time.time()}


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "an unknown process"
    return f"pid {holder.get('pid')} on {holder.get('host')} (job {holder.get('job_id')})"


class PointLock:
    """The lock of one point directory; ``stale`` is the previous owner's record when one was taken over."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None
        self.stale: dict[str, Any] | None = None
        self.holder: dict[str, Any] | None = None

    def acquire(self, me: dict[str, Any], wait_s: float = 2.0) -> bool:
        """Take the lock (retrying for ``wait_s``: a status check holds it for an instant); False when
        another live process holds it (``holder`` says who)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.holder = _read(fd)
                    os.close(fd)
                    return False
                time.sleep(0.05)
        self.stale = _read(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return True

    def release(self) -> None:
        """Empty the file (a clean end leaves no stale trace) and let go."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def lock_holder(path: str | Path) -> dict[str, Any] | None:
    """Who holds the lock now (their record, ``{}`` when unreadable), or None when nobody does."""
    path = Path(path)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> dict[str, Any] | None:
    text = os.pread(fd, 65536, 0).decode(errors="replace").strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"record": text}
    return record if isinstance(record, dict) else {"record": text}
