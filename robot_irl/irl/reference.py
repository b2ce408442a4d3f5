"""The MBIRL paper's own placing benchmark (shared/mbirl-reference/, read-only, not in the repo).

The folder holds the released code's URDF (iiwa7 with an F/T sensor link and keypoint links), the
6 demos its generator writes, and a README with the figures the released code gives. Loading it
here lets the benchmark and the tests run our learner on exactly the paper's task and put our
numbers beside the released ones. Found via ``$ROBOT_IRL_MBIRL_REFERENCE`` or ``../shared/`` next
to the repository.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_irl.errors import InputError
from robot_irl.irl.demos import DemoSet
from robot_irl.models.frames import KeypointFrame
from robot_irl.models.kinematic import KinematicDynamics

URDF = "iiwa7_ft_with_obj_keypts.urdf"
DEMOS = "placing_demos.npz"
FRAMES = [KeypointFrame("kp1", "kp_link_1", (0.0, 0.0, 0.0)), KeypointFrame("kp2", "kp_link_2", (0.0, 0.0, 0.0))]
TRAIN, TEST = [0, 1, 2], [3, 4]  # the released split (demo 5 unused)
_COSTS = {"Weighted": "weighted", "TimeDep": "timedep", "RBF": "rbf", "no action (u = 0)": "no_action"}


def reference_dir() -> Path | None:
    """The reference folder if present, else None."""
    env = os.environ.get("ROBOT_IRL_MBIRL_REFERENCE")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "mbirl-reference"
    return path if (path / DEMOS).is_file() and (path / URDF).is_file() else None


@dataclass
class Reference:
    dynamics: KinematicDynamics
    train: DemoSet
    test: DemoSet
    released: dict[str, dict[str, float]]  # cost -> {train_loss, test_loss, test_final_cm}


def released_figures(readme: Path) -> dict[str, dict[str, float]]:
    """The released code's figures, read from the README's table (rows '| TimeDep | 195.8 | 123.8 | 4.70 | ...')."""
    out: dict[str, dict[str, float]] = {}
    num = r"\s*([0-9.]+|—|-)\s*"
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*([^|]+?)\s*\|" + num + r"\|" + num + r"\|" + num + r"\|", line)
        if m and m.group(1) in _COSTS:
            vals = [float(v) if v not in ("—", "-") else float("nan") for v in m.groups()[1:]]
            out[_COSTS[m.group(1)]] = dict(zip(("train_loss", "test_loss", "test_final_cm"), vals))
    missing = sorted(set(_COSTS.values()) - set(out))
    if missing:
        raise InputError(f"no released figures for {missing}", file=readme, field="figures table",
                         expected="rows '| Weighted | train | test | final | ...' for every cost")
    return out


def load_reference(path: str | Path) -> Reference:
    """Dynamics (the released URDF, keypoint links) and the released train/test demo split."""
    path = Path(path)
    with np.load(path / DEMOS) as z:
        for key in ("keypoints", "q0", "timestamps"):
            if key not in z.files:
                raise InputError(f"missing '{key}'", file=path / DEMOS, field=key, expected="the released demos")
        demos = DemoSet(z["keypoints"], z["timestamps"], q0=z["q0"],
                        names=[str(n) for n in z["names"]] if "names" in z.files else None, source=str(path / DEMOS))
    dyn = KinematicDynamics(path / URDF, FRAMES)
    return Reference(dyn, demos.subset(TRAIN), demos.subset(TEST), released_figures(path / "README.md"))
