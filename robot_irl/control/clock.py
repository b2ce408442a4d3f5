"""Injectable time: every timing decision in the controller reads a :class:`Clock`, so tests of
watchdogs and rates run on a :class:`FakeClock` in microseconds instead of waiting in real time."""
from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic timeline shared by everything that stamps data."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a fake clock advances instead)."""


class MonotonicClock:
    """``time.monotonic``: CLOCK_MONOTONIC, one timeline for every process on the machine, so an
    arm server's observation stamps compare directly with its client's clock."""

    real = True

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """Time that moves only when told to; ``sleep`` advances it. Thread-safe."""

    real = False

    def __init__(self, start: float = 1000.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._t += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)


class Rate:
    """Fixed-rate loop timing: ``wait()`` sleeps until the next tick and returns how late this tick
    was (seconds). A tick late by up to ``catch_up`` periods is made up by shorter waits after it;
    later than that the schedule re-anchors instead of bursting, since a burst of targets is
    exactly what the safety filter's velocity cap would clamp.

    ``spin_s``: the last part of each wait busy-waits, trading a little CPU for sub-millisecond
    jitter (``time.sleep`` overshoots by up to a scheduler tick on a loaded machine)."""

    def __init__(self, hz: float, clock: Clock, spin_s: float = 0.0, catch_up: float = 2.0) -> None:
        if hz <= 0:
            raise ValueError("rate must be positive")
        self.period = 1.0 / hz
        self.clock = clock
        self.spin_s = spin_s if getattr(clock, "real", False) else 0.0
        self.catch_up = catch_up
        self._next = clock.now() + self.period
        self.missed = 0

    def wait(self) -> float:
        remaining = self._next - self.clock.now()
        if remaining > self.spin_s:
            self.clock.sleep(remaining - self.spin_s)
        while self.clock.now() < self._next:
            if self.spin_s == 0.0:
                self.clock.sleep(self._next - self.clock.now())
        now = self.clock.now()
        late = now - self._next
        if late > self.catch_up * self.period:
            self.missed += 1
            self._next = now + self.period
        else:
            self._next += self.period
        return late
