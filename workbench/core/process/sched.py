"""Scheduling: the workbench's own bulk work yields the CPU to the server it watches."""

from __future__ import annotations

import os
import threading

BACKGROUND_NICE = 19


def lower_thread_priority(increment: int = BACKGROUND_NICE) -> None:
    """Make the calling thread (a Linux task of its own) nicer than the rest of the process.

    The log tailer and printers can always catch up later from the file; the child and the
    pump must never wait for them on a busy 2-core box.
    """
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except (AttributeError, OSError):  # not Linux, or not allowed: stay as we are
        pass
