"""The `robot-irl` command: one subcommand per stage, a thin layer over the Python API.

Each stage owns a ``cli.py`` with ``register(subparsers)``; only stages that work end to end are
listed in ``STAGES``. Errors robot-irl raises on purpose print as one clear line (exit 2), not a
stack trace.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Stage CLI modules, in pipeline order. A module is added here once its subcommands work.
STAGES = [
    "sim.cli",
    "robot_irl.record.cli",
    "robot_irl.library.cli",
    "robot_irl.keypoints.cli",
    "robot_irl.models.cli",
    "robot_irl.irl.cli",
    "robot_irl.control.cli",
    "robot_irl.retrieval.cli",
    "robot_irl.diagnostics.cli",
    "robot_irl.quickstart.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-irl",
        description="Learning from demonstration for robot arms: record demos, extract keypoints, "
                    "learn costs with model-based inverse RL, run them safely, search and debug.")
    parser.add_argument("--version", action="version", version=f"robot-irl {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in STAGES:
        importlib.import_module(module).register(sub)
    return parser


def _version() -> str:
    from robot_irl import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    from robot_irl.errors import RobotIRLError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RobotIRLError as e:
        print(f"robot-irl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # e.g. `robot-irl demos list | head`
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"robot-irl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
