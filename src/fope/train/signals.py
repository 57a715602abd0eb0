"""Graceful stop on SIGINT / SIGTERM: the loop checkpoints at the next micro-batch boundary and returns.

The first SIGINT or SIGTERM only records the request (the loop polls :attr:`StopRequest.requested` after
every micro-batch, abandons the unfinished step and checkpoints the last completed one). After it, SIGINT
is reset to the operating system's default action, so a second Ctrl-C ends the process at once, even in
the middle of a long operator (the shell reports exit status 130). Checkpoints and every run file are
written atomically, so this abort never leaves a damaged run directory.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


class StopRequest:
    """Context manager that records SIGINT/SIGTERM instead of dying (main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            print(
                f"\nfope: {signal.Signals(signum).name} received: stopping after the current micro-batch with "
                "a checkpoint (Ctrl-C again to abort at once)",
                file=sys.stderr,
                flush=True,
            )
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the next Ctrl-C kills at once (exit status 130)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
