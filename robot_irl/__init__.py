"""robot-irl: learning from demonstration for robot arms."""
from robot_irl.version import __version__

__all__ = ["__version__", "load_run"]


def load_run(path):
    """Open a trained MBIRL run folder (the same call `robot-irl eval` and the arm runner use)."""
    from robot_irl.irl import load_run as _load_run
    return _load_run(path)
