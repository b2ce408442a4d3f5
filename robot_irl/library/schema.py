"""The episode format's version and the checks that keep a reader from misreading a file.

``meta.json`` of every episode and ``library.json`` of every library carry ``schema_version``.
A reader accepts exactly the versions it can read: the current one as is, an older one only through
a migration listed in :data:`MIGRATIONS`; anything else is refused with a message that names the
file, so an old or newer file is never read with the wrong layout.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot_irl.errors import InputError

SCHEMA_VERSION = 2
LIBRARY_FORMAT = "robot-irl demo library"
SOURCES = ("sim", "camera", "arm", "lerobot")
# a demonstration; a run of a learned policy recorded for evaluation; the arm moved through
# exploration plans (frames and joints, no task shown: data for detectors and dynamics, never demos)
KINDS = ("demo", "run", "explore")
DTYPES = ("float64", "float32", "int64", "int32", "uint8", "bool")


def _meta_1_to_2(meta: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the episode ``kind``: every version-1 episode was a demonstration."""
    return {**meta, "schema_version": 2, "kind": meta.get("kind", "demo")}


def _library_1_to_2(info: dict[str, Any]) -> dict[str, Any]:
    """library.json itself did not change; its version says its episodes were migrated."""
    return {**info, "schema_version": 2}


# Version n → function turning a version-n dict into version n+1, for episode meta.json /
# recording.json (MIGRATIONS) and for library.json (LIBRARY_MIGRATIONS).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _meta_1_to_2}
LIBRARY_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _library_1_to_2}


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object, naming the file when it is missing, unreadable or not an object."""
    if not path.is_file():
        raise InputError(f"missing {what}", file=path, expected=f"{path.name} written by robot-irl")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"invalid JSON ({e})", file=path, expected="a JSON object") from None
    if not isinstance(data, dict):
        raise InputError("top level is not an object", file=path, expected="a JSON object")
    return data


def check_version(data: dict[str, Any], file: Path,
                  migrations: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Return ``data`` at :data:`SCHEMA_VERSION`, migrating older versions step by step (episode
    meta by default, ``migrations`` for another kind of file), or refuse a newer one by name."""
    migrations = MIGRATIONS if migrations is None else migrations
    v = data.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise InputError(f"schema_version is {v!r}", file=file, field="schema_version",
                         expected=f"an integer (this robot-irl reads {SCHEMA_VERSION})")
    if v > SCHEMA_VERSION:
        raise InputError(f"schema_version {v} is newer than this robot-irl reads (it reads up to "
                         f"{SCHEMA_VERSION}); upgrade robot-irl",
                         file=file, field="schema_version", expected=f"<= {SCHEMA_VERSION}")
    while v < SCHEMA_VERSION:
        if v not in migrations:
            raise InputError(f"schema_version {v} has no migration to {SCHEMA_VERSION}; re-record or "
                             "convert it with the robot-irl release that wrote it", file=file,
                             field="schema_version", expected=str(SCHEMA_VERSION))
        data = migrations[v](data)
        v = data["schema_version"]
    return data


class Fields:
    """Typed getters over one JSON object that name the file and the dotted field on error."""

    def __init__(self, data: dict[str, Any], file: Path, prefix: str = "") -> None:
        self.data, self.file, self.prefix = data, file, prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _fail(self, key: str, msg: str, expected: str) -> InputError:
        return InputError(msg, file=self.file, field=self._name(key), expected=expected)

    def get(self, key: str, kinds: tuple[type, ...], expected: str, *, optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise self._fail(key, "missing", expected)
        v = self.data[key]
        if v is None and optional:
            return None
        if isinstance(v, bool) and bool not in kinds:
            raise self._fail(key, f"is {v!r}", expected)
        if not isinstance(v, kinds):
            raise self._fail(key, f"is {v!r}", expected)
        return v

    def str(self, key: str, *, optional: bool = False, choices: tuple[str, ...] | None = None) -> Any:
        v = self.get(key, (str,), "a string" + (f" in {list(choices)}" if choices else ""), optional=optional)
        if v is not None and choices is not None and v not in choices:
            raise self._fail(key, f"is {v!r}", f"one of {list(choices)}")
        return v

    def int(self, key: str, *, minimum: int = 0) -> int:
        v = self.get(key, (int,), f"an integer >= {minimum}")
        if v < minimum:
            raise self._fail(key, f"is {v}", f"an integer >= {minimum}")
        return v

    def number(self, key: str, *, positive: bool = False, optional: bool = False) -> Any:
        v = self.get(key, (int, float), "a finite number" + (" > 0" if positive else ""), optional=optional)
        if v is not None and (not math.isfinite(v) or (positive and v <= 0)):
            raise self._fail(key, f"is {v!r}", "a finite number" + (" > 0" if positive else ""))
        return v

    def bool(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, (bool,), "true or false", optional=optional)

    def obj(self, key: str, *, optional: bool = False) -> Any:
        v = self.get(key, (dict,), "an object", optional=optional)
        return None if v is None else Fields(v, self.file, self._name(key) + ".")

    def list(self, key: str) -> list[Any]:
        return self.get(key, (list,), "a list")

    def str_list(self, key: str) -> list[str]:
        v = self.list(key)
        if not all(isinstance(s, str) for s in v):
            raise self._fail(key, f"is {v!r}", "a list of strings")
        return v
