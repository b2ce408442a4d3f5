"""Command-line arguments and checks the stage commands share; standard library only.

Why a module of its own: a check that runs while the arguments are parsed answers before the
command imports its stage (torch, OpenCV, SciPy: seconds on a loaded machine), so a mistyped
path is refused at once. Nothing here may import numpy or a stage package.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

LIBRARY_HELP = "demo library folder (default: $ROBOT_IRL_LIBRARY, else ~/.local/share/robot-irl/library)"


def add_library_arg(p: argparse.ArgumentParser) -> None:
    """``--library PATH`` (resolved later by robot_irl.library.location)."""
    p.add_argument("--library", metavar="PATH", help=LIBRARY_HELP)


def existing_file(text: str) -> Path:
    """argparse ``type=``: a path to a readable file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file" if not path.exists() else f"{text}: not a file")
    return path


def positive_float(text: str) -> float:
    """argparse ``type=``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not > 0")
    return value


def fmt3(value: object) -> str:
    """A figure for people: 3 significant digits (whole numbers from 1000 up), text as is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_table(header: list[str], rows: list[list[object]]) -> str:
    """A plain-text table: the first column and columns of text left-aligned, number columns
    right-aligned (numbers by fmt3)."""
    cells = [header] + [[fmt3(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [i > 0 and all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
               for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in cells)
