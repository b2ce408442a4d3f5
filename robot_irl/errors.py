"""Typed errors shared by every stage.

Every error a user can cause says *where* (file, field) and *what was expected*, so a message
alone is enough to fix the input. Stages raise subclasses of :class:`RobotIRLError`; the CLI
prints them without a stack trace.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class RobotIRLError(Exception):
    """Base class of every error robot-irl raises on purpose."""


class InputError(RobotIRLError, ValueError):
    """Bad user input: names the file (if any), the field and what was expected."""

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None,
                 expected: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.expected = expected
        parts = []
        if self.file:
            parts.append(f"{self.file}")
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class UnknownNameError(InputError, KeyError):
    """A name (env id, robot, camera, keypoint, link, ...) that is not one of the valid ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], *, file: str | Path | None = None) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(str(v) for v in valid)
        super().__init__(f"unknown {kind} '{name}'", file=file, field=kind,
                         expected="one of: " + ", ".join(self.valid))

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]
