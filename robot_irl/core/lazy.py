"""Package attributes imported on first use (PEP 562).

Why: `robot-irl` registers every stage's subcommands by importing `<stage>.cli`, which imports
the stage package first; an `__init__` that imported its modules eagerly loaded torch and
open_clip (~3.5 s) for `robot-irl --help` or `robot-irl demos list`. A package lists what it
exports and from which module; the module is imported when a name is first read, and the value
is then kept on the package like an ordinary import.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package` (its `__name__`), exporting each name from the
    submodule it maps to (relative to the package)."""
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
