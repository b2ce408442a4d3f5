"""A small stage runner: ordered stages, each timed, its result saved as JSON, skipped on rerun.

A stage is a function ``fn(ctx) -> dict`` returning flat figures plus optional ``images``
(name → path under the run folder), ``tables`` and ``text``; the runner stores that dict at
``<out>/stages/<name>.json`` with the stage's wall time. A rerun skips a stage whose JSON exists
unless ``force``; a failing stage raises :class:`StageError` naming it, and what earlier stages
wrote stays usable.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from robot_irl.core.io import atomic_write_json, to_jsonable
from robot_irl.errors import RobotIRLError


class StageError(RobotIRLError):
    """A stage of the pipeline failed; names the stage and keeps the cause."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(f"stage '{stage}' failed: {type(cause).__name__}: {cause} "
                         f"(earlier stages' outputs are kept; rerun to resume from this stage)")


@dataclass
class Context:
    """What every stage sees: the run folder, options, and earlier stages' results."""

    out: Path
    fast: bool = False
    full: bool = False
    seed: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    console: Console = field(default_factory=lambda: Console(stderr=True))

    def path(self, *parts: str) -> Path:
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    fn: Callable[[Context], dict[str, Any]]


def stage_file(out: Path, name: str) -> Path:
    return out / "stages" / f"{name}.json"


def load_stage(out: Path, name: str) -> dict[str, Any] | None:
    p = stage_file(out, name)
    return json.loads(p.read_text()) if p.exists() else None


def run_stages(stages: list[Stage], ctx: Context, *, force: bool = False) -> dict[str, dict[str, Any]]:
    console = ctx.console
    total = time.perf_counter()
    for i, stage in enumerate(stages, 1):
        done = None if force else load_stage(ctx.out, stage.name)
        if done is not None:
            ctx.results[stage.name] = done
            console.print(f"[dim][{i}/{len(stages)}] {stage.title}: done earlier "
                          f"({done.get('seconds', 0):.1f} s), skipped[/dim]")
            continue
        console.rule(f"[bold][{i}/{len(stages)}] {stage.title}")
        t0 = time.perf_counter()
        try:
            result = stage.fn(ctx) or {}
        except Exception as e:  # noqa: BLE001 - any failure is reported with the stage's name
            (ctx.out / "stages").mkdir(parents=True, exist_ok=True)
            (ctx.out / "stages" / f"{stage.name}.error.txt").write_text(traceback.format_exc())
            raise StageError(stage.name, e) from e
        result = {"title": stage.title, **to_jsonable(result), "seconds": round(time.perf_counter() - t0, 2)}
        atomic_write_json(stage_file(ctx.out, stage.name), result)
        err = ctx.out / "stages" / f"{stage.name}.error.txt"
        if err.exists():
            err.unlink()
        ctx.results[stage.name] = result
        console.print(f"[green]✓[/green] {stage.title} in {result['seconds']:.1f} s")
    console.print(f"[bold]pipeline finished in {time.perf_counter() - total:.1f} s[/bold]")
    return ctx.results
