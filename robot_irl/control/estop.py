"""Emergency stop: a latch that a signal handler, a keyboard thread or code can trip.

Tripping only sets an event (safe inside a signal handler); the :class:`Arm` that watches the
latch stops its backend from its watchdog thread or on its next call, and refuses to move until
the latch is reset by a person (:meth:`EStop.reset`)."""
from __future__ import annotations

import logging
import select
import signal
import threading
from typing import IO

log = logging.getLogger("robot_irl.control.estop")


class EStop:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self._previous: dict[int, object] = {}
        self._keyboard: threading.Thread | None = None
        self._stop_keyboard = threading.Event()

    @property
    def tripped(self) -> bool:
        return self._event.is_set()

    def trip(self, reason: str = "requested") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def reset(self) -> None:
        self.reason = ""
        self._event.clear()

    def install_signal(self, signum: int = signal.SIGUSR1) -> None:
        """Trip on ``signum`` (``kill -USR1 <pid>`` from another terminal). Main thread only."""
        self._previous[signum] = signal.signal(signum, lambda s, f: self.trip(f"signal {signal.Signals(s).name}"))

    def uninstall_signals(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def watch_keyboard(self, stream: IO[str]) -> None:
        """Trip when a line arrives on ``stream`` (press Enter in the terminal running the arm).
        Uses ``select`` so the thread notices :meth:`close` within 0.1 s."""
        def loop() -> None:
            while not self._stop_keyboard.is_set():
                ready, _, _ = select.select([stream], [], [], 0.1)
                if ready:
                    line = stream.readline()
                    if line == "":          # stdin closed: nobody can press a key any more
                        return
                    self.trip("keyboard")
        self._keyboard = threading.Thread(target=loop, name="estop-keyboard", daemon=True)
        self._keyboard.start()

    def close(self) -> None:
        self._stop_keyboard.set()
        if self._keyboard is not None:
            self._keyboard.join(timeout=1.0)
            self._keyboard = None
        self.uninstall_signals()
