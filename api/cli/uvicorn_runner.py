"""Running uvicorn so that SIGINT/SIGTERM end it gracefully *and* let the caller clean up afterwards."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after shutdown, which kills the process before the
        # caller's `finally` (stopping embedded PostgreSQL/Redis) runs; handle it and return instead.
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.handle_exit(signum, frame)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_until_signalled(config: uvicorn.Config) -> None:
    _Server(config).run()
