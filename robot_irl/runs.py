"""Run folders: every train / run / diagnose / quickstart writes one.

Layout (see ../shared/design.md)::

    <run>/config.json    everything needed to rebuild the run
    <run>/metrics.json   flat {name: number} figures that reports and scripts read
    <run>/tb/            TensorBoard events
    <run>/plots/         PNG plots
    <run>/...            model weights and stage-specific files
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robot_irl.core.io import atomic_write_json, to_jsonable
from robot_irl.errors import InputError


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
