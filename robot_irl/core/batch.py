"""Batch work over many items (episodes): go on past a failing item, report every failure by its
id, and give one exit code for the whole batch.

Why one helper: a batch that stopped at the first bad episode (``extract LIBRARY``) lost the work on
every episode after it and named no episode; each batch command (extraction, Ray jobs, imports)
must say which items failed and why, the same way. Failures are exceptions raised by the work on one
item; KeyboardInterrupt and other BaseExceptions stop the batch (they are not an item's fault).

    report = BatchReport("extracted")
    for ep in episodes:
        with report.item(ep.id):
            work(ep)
    print(report.summary()); return report.exit_code

or ``run_batch(episodes, work, key=lambda ep: ep.id)``. Results computed elsewhere (Ray futures)
go in with :meth:`BatchReport.ok` / :meth:`BatchReport.fail`.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from robot_irl.errors import RobotIRLError

T = TypeVar("T")

EXIT_OK = 0
EXIT_SOME_FAILED = 1


def describe(error: BaseException) -> str:
    """One line for a failure: robot-irl's own errors as they read, others with their type (a bug
    or a library's error, worth the name)."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(error, RobotIRLError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class BatchReport:
    """What a batch did: ids that succeeded (with their results) and ids that failed (with why)."""

    verb: str = "processed"                           # "extracted", "imported": for the summary line
    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    stream: TextIO | None = None                      # failures are printed here as they happen (stderr)

    def ok(self, key: str, result: Any = None) -> None:
        self.done[key] = result

    def fail(self, key: str, error: BaseException | str) -> None:
        why = error if isinstance(error, str) else describe(error)
        self.failed[key] = why
        print(f"failed: {key}: {why}", file=self.stream or sys.stderr)

    @contextlib.contextmanager
    def item(self, key: str) -> Iterator[None]:
        """Work on one item: an Exception inside is recorded as its failure, not raised."""
        try:
            yield
        except Exception as e:   # noqa: BLE001 (every failure of one item is reported, the batch goes on)
            self.fail(key, e)
        else:
            self.done.setdefault(key, None)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failed else EXIT_OK

    def summary(self) -> str:
        n = len(self.done) + len(self.failed)
        line = f"{self.verb} {len(self.done)} of {n}"
        if self.failed:
            line += f"; {len(self.failed)} failed: " + "; ".join(f"{k} ({v})" for k, v in self.failed.items())
        return line


def run_batch(items: Iterable[T], work: Callable[[T], Any], *, key: Callable[[T], str], verb: str = "processed",
              stream: TextIO | None = None) -> BatchReport:
    """``work(item)`` for every item, past failures; results by key in ``report.done``."""
    report = BatchReport(verb, stream=stream)
    for it in items:
        k = key(it)
        with report.item(k):
            report.ok(k, work(it))
    return report
