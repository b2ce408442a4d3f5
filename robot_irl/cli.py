"""The `robot-irl` command: one subcommand per stage, a thin layer over the Python API.

Each stage owns a ``cli.py`` with ``register(subparsers)``; only stages that work end to end are
listed in ``COMMANDS``. Errors robot-irl raises on purpose print as one clear line (exit 2), not a
stack trace.

Why the table of commands: importing a stage's ``cli.py`` can pull in OpenCV, SciPy or gymnasium
(seconds on a loaded machine), so ``robot-irl --version``, ``robot-irl --help`` and every command's
input checks would wait for stages they never use. The top level lists the commands from
``COMMANDS`` alone and imports only the module that registers the command asked for
(``tests/test_cli.py`` checks the table against what the modules register).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module that registers it, one-line help), in pipeline order. A command is added here
# once it works end to end; the help must equal the one its module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("sim.cli", "list, render and roll out the simulated tasks"),
    "record": ("robot_irl.record.cli",
               "record demonstrations (sim expert, camera or video file, arm in teach mode) into the library"),
    "demos": ("robot_irl.library.cli", "list, inspect, replay, remove, repair, export and import demonstrations"),
    "calibrate": ("robot_irl.keypoints.cli",
                  "camera intrinsics from a ChArUco video and/or camera-to-base from an arm marker"),
    "extract": ("robot_irl.keypoints.cli", "keypoint trajectories from video (library episodes or a video file)"),
    "keypoints": ("robot_irl.keypoints.learned.cli",
                  "train a keypoint detector on library video without markers; report on it"),
    "dynamics": ("robot_irl.models.cli", "collect exploration data in the sim and train learned keypoint dynamics"),
    "train": ("robot_irl.irl.cli", "learn a cost from keypoint demos (model-based IRL)"),
    "eval": ("robot_irl.irl.cli", "evaluate a trained run on its held-out demos"),
    "arm": ("robot_irl.control.cli", "check an arm, write its calibration file, or serve a sim arm"),
    "run": ("robot_irl.control.cli", "drive an arm with a trained MBIRL run, record it as an episode"),
    "world": ("robot_irl.control.world_cli",
              "register the reference marker's world frame to the robot base (stored in the arm calibration)"),
    "clip": ("robot_irl.retrieval.cli", "train the project's own CLIP on library frames"),
    "search": ("robot_irl.retrieval.cli", "find demos by text and/or image"),
    "diagnose": ("robot_irl.diagnostics.cli", "2-D map of latents with numbers that say how far to trust it"),
    "quickstart": ("robot_irl.quickstart.cli", "run the pipeline end to end on the simulated default, with a report"),
    "report": ("robot_irl.quickstart.cli", "rebuild report.html from a run folder"),
}
STAGES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``command`` one whose only complete subcommands are those of the
    module that registers ``command`` (the others, or all for an unknown ``command`` such as "",
    are listed, not loaded)."""
    from robot_irl import __version__

    parser = argparse.ArgumentParser(
        prog="robot-irl",
        description="Learning from demonstration for robot arms: record demos, extract keypoints, "
                    "learn costs with model-based inverse RL, run them safely, search and debug.")
    parser.add_argument("--version", action="version", version=f"robot-irl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = STAGES if command is None else [COMMANDS[command][0]] if command in COMMANDS else []
    for module in modules:
        importlib.import_module(module).register(sub)
    for name, (_, text) in COMMANDS.items():   # listed for --help and for "invalid choice" messages
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    sub._choices_actions.sort(key=lambda a: list(COMMANDS).index(a.dest) if a.dest in COMMANDS else len(COMMANDS))
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    from robot_irl.errors import RobotIRLError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command(argv) or "").parse_args(argv)
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
