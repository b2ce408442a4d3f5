"""Run folders: every train / run / diagnose / quickstart writes one.

Layout (see ../shared/design.md)::

    <run>/config.json    everything needed to rebuild the run
    <run>/metrics.json   flat {name: number} figures that reports and scripts read
    <run>/tb/            TensorBoard events
    <run>/plots/         PNG plots
    <run>/...            model weights and stage-specific files
    <run>/incomplete.json  present while the run is being written (and after an interrupted or
                         failed one): what it is and the command that finishes it

Why the marker: a training stopped by Ctrl-C or a crash leaves a folder that looks finished
(config, weights of the start); readers (``load_run``) refuse a folder that carries it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from robot_irl.core.io import atomic_write_json, to_jsonable
from robot_irl.errors import InputError


INCOMPLETE = "incomplete.json"


class IncompleteRunError(InputError):
    """The run folder is marked incomplete (its training was interrupted or failed): its weights
    are not a trained result. The message carries the command that finishes it."""


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any], *, kind: str) -> "RunDir":
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run.path / "config.json", {"kind": kind, **to_jsonable(config)})
        return run

    @property
    def tb_dir(self) -> Path:
        return self.path / "tb"

    @property
    def plots_dir(self) -> Path:
        p = self.path / "plots"
        p.mkdir(parents=True, exist_ok=True)
        return p

    @classmethod
    def claim(cls, path: str | Path, *, force: bool = False, resume: bool = False, option: str = "--out") -> "RunDir":
        """Check that ``path`` may be written by a new run: absent or empty, or an existing run
        folder with ``force`` (it is then cleared when :meth:`begin` is called) or ``resume``.
        Writes nothing, so a command can check before its slow work."""
        run = cls(path)
        p = run.path
        if p.exists() and not p.is_dir():
            raise InputError("exists and is not a folder", file=p, field=option, expected="a run folder path")
        empty = not p.exists() or not any(p.iterdir())
        if resume:
            if empty or not run.is_run_folder():
                raise InputError("nothing to resume: " + ("the folder is empty or absent" if empty else
                                                          "not a robot-irl run folder"), file=p, field="--resume",
                                 expected="a run folder an earlier `robot-irl train --out` wrote")
            return run
        if empty:
            return run
        if not run.is_run_folder():
            raise InputError("folder exists and is not a robot-irl run folder", file=p, field=option,
                             expected="a new or empty folder (this one is not replaced, even with --force)")
        if Path.cwd().resolve().is_relative_to(p.resolve()):
            raise InputError("is the current folder or holds it", file=p, field=option,
                             expected="a run folder outside the current folder (this one is not replaced)")
        if not force:
            hint = f"; or --resume to finish it ({run.incomplete()['resume']})" if run.incomplete() else ""
            raise InputError("a run folder is already there", file=p, field=option,
                             expected=f"a new folder, or --force to replace it{hint}")
        return run

    def is_run_folder(self) -> bool:
        """Written by robot-irl: marked incomplete, or a config.json with the ``kind`` RunDir.create writes."""
        if (self.path / INCOMPLETE).exists():
            return True
        try:
            return "kind" in json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError, TypeError):
            return False

    def begin(self, *, what: str, resume: str, clear: bool) -> None:
        """Start writing: clear an old run's files (``clear``, after :meth:`claim` with force),
        then mark the folder incomplete until :meth:`finish`."""
        if clear and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / INCOMPLETE, {"what": what, "resume": resume})

    def finish(self) -> None:
        """The run is complete: drop the incomplete marker."""
        (self.path / INCOMPLETE).unlink(missing_ok=True)

    def incomplete(self) -> dict[str, Any] | None:
        """The marker of an unfinished run (``what``, ``resume``), or None for a finished one."""
        return self._read(INCOMPLETE) if (self.path / INCOMPLETE).exists() else None

    def require_finished(self) -> None:
        """Raise :class:`IncompleteRunError` (naming the command that finishes it) for a run
        folder marked incomplete, or InputError for a missing folder or config."""
        marker = self.incomplete()
        if marker is not None:
            raise IncompleteRunError(f"{marker.get('what', 'the run')} did not finish (interrupted or failed)",
                                     file=self.path, field=INCOMPLETE,
                                     expected=f"a finished run; finish this one with: {marker.get('resume')}")
        self.config()

    def config(self) -> dict[str, Any]:
        return self._read("config.json")

    def metrics(self) -> dict[str, Any]:
        p = self.path / "metrics.json"
        return self._read("metrics.json") if p.exists() else {}

    def update_metrics(self, **figures: Any) -> dict[str, Any]:
        """Merge flat named figures into metrics.json (atomic)."""
        m = self.metrics()
        m.update(to_jsonable(figures))
        atomic_write_json(self.path / "metrics.json", m)
        return m

    def _read(self, name: str) -> dict[str, Any]:
        p = self.path / name
        if not self.path.is_dir():
            raise InputError("run folder does not exist", file=self.path, expected="a folder written by robot-irl")
        if not p.exists():
            raise InputError(f"missing {name}", file=p, expected="a run folder written by robot-irl")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at line {e.lineno})", file=p) from None
        if not isinstance(data, dict):
            raise InputError("top level is not an object", file=p, expected="a JSON object")
        return data
