"""Where the library is: ``--library PATH``, else ``$ROBOT_IRL_LIBRARY``, else a per-user default.

The default follows the XDG base-directory convention on Linux and macOS
(``$XDG_DATA_HOME/robot-irl/library``, i.e. ``~/.local/share/robot-irl/library``) and
``%LOCALAPPDATA%\\robot-irl\\library`` on Windows. demos/README.md documents the same order.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = "ROBOT_IRL_LIBRARY"


def default_library_path() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "robot-irl" / "library"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "robot-irl" / "library"


def resolve_library_path(cli_path: str | Path | None = None) -> Path:
    """The library folder a command should use (first of: argument, environment, default)."""
    if cli_path:
        return Path(cli_path).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_library_path()
