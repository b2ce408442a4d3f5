"""Tasks: what the arm should do, its variants, its goal, and when it has succeeded.

A task samples a start and a goal from its variant (seeded by the env's generator), sets up the
scene, gives the goal keypoints, and lays out the end-effector path its scripted expert follows.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from robot_irl.core.spec import COLORS
from robot_irl.errors import InputError, UnknownNameError
from sim.robots import Robot
from sim.scene import OBJECT_HALF, TABLE_TOP_Z, Scene, quat_matrix

SHAPES = ("cube", "cylinder")
OBJECT_COLORS = ("red", "green", "blue", "yellow")
# Goal regions in x (metres, robot base frame); the scene camera sees +x as image right.
GOAL_REGIONS: dict[str, tuple[float, float]] = {"left": (0.36, 0.47), "right": (0.63, 0.74)}
START_X = 0.55


@dataclass(frozen=True)
class Variant:
    """Structured task options, so a library holds many distinguishable demos."""

    shape: str = "cube"
    color: str = "red"
    goal_region: str = "right"
    start_range: float = 0.04   # half-width (m) of the box the start position is drawn from

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise UnknownNameError("object shape", self.shape, SHAPES)
        if self.color not in COLORS:
            raise UnknownNameError("object colour", self.color, OBJECT_COLORS)
        if self.goal_region not in GOAL_REGIONS:
            raise UnknownNameError("goal region", self.goal_region, GOAL_REGIONS)
        if not (0.0 <= self.start_range <= 0.1):
            raise InputError(f"start_range is {self.start_range}", field="variant.start_range", expected="0..0.1 m")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Variant":
        d = dict(d or {})
        valid = {f.name for f in fields(cls)}
        unknown = set(d) - valid
        if unknown:
            raise UnknownNameError("variant field", sorted(unknown)[0], valid)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    """The expert's end-effector waypoints and where the gripper opens (waypoint index)."""

    waypoints: list[np.ndarray]
    release_at: int | None = None


class Task(ABC):
    name: str
    verb: str
    has_object = True
    success_tolerance = 0.02
    max_steps = 80

    def __init__(self, robot: Robot, scene: Scene, variant: Variant) -> None:
        self.robot, self.scene, self.variant = robot, scene, variant
        self.goal_pos = np.zeros(3)
        self.start_pos = np.zeros(3)

    def text(self) -> str:
        v = self.variant
        return f"{self.verb} the {v.color} {v.shape} to the {v.goal_region}"

    def goal_x(self, rng: np.random.Generator) -> float:
        lo, hi = GOAL_REGIONS[self.variant.goal_region]
        return float(rng.uniform(lo, hi))

    def start(self, rng: np.random.Generator) -> np.ndarray:
        r = self.variant.start_range
        return np.array([START_X + rng.uniform(-r, r), rng.uniform(-r, r), 0.0])

    @abstractmethod
    def setup(self, rng: np.random.Generator) -> np.ndarray:
        """Place objects and goal; return the joint configuration to start from."""

    def after_reset(self) -> None:
        """Hook run once the robot is at its start configuration (e.g. to grasp)."""

    @abstractmethod
    def plan(self) -> Plan:
        """The end-effector path the scripted expert follows."""

    def goal_keypoints(self) -> np.ndarray:
        """[K, 3] keypoints as they will be when the task is done (EE at its final pose, pointing
        down; objects at the goal)."""
        final_ee = self.plan().waypoints[-1]
        R = quat_matrix(self.robot.ee_down_orientation)
        out = []
        for kp in self.scene.keypoint_defs:
            if kp.body == "robot":
                out.append(final_ee + R @ np.asarray(kp.offset))
            else:
                out.append(self.goal_pos + np.asarray(kp.offset))
        return np.array(out)

    def is_success(self, kps: np.ndarray, goal_kps: np.ndarray) -> bool:
        i = self.scene.spec.index("obj") if self.has_object else self.scene.spec.index("ee")
        done_holding = not (self.has_object and self.robot.holding)
        return bool(np.linalg.norm(kps[i] - goal_kps[i]) < self.success_tolerance and done_holding)

    def _add_object(self, position) -> None:
        self.scene.add_object("obj", self.variant.shape, self.variant.color, position, marker_id=1)


class ReachTask(Task):
    """Move the end effector straight to a goal above the table."""

    name, verb, has_object = "reach", "reach", False

    def text(self) -> str:
        return f"reach to the {self.variant.goal_region} above the {self.variant.color} {self.variant.shape}"

    def setup(self, rng):
        self.start_pos = self.start(rng) + np.array([0, 0, 0.28])
        self.goal_pos = np.array([self.goal_x(rng), rng.uniform(-0.1, 0.1), rng.uniform(0.1, 0.2)])
        self._add_object([0.55, 0.2, TABLE_TOP_Z + OBJECT_HALF])   # a distractor that names the variant
        self.scene.set_goal_patch([self.goal_pos[0], self.goal_pos[1], TABLE_TOP_Z + 0.0006])
        return self.robot.ik(self.start_pos)

    def plan(self):
        return Plan([self.start_pos, self.goal_pos])

    def is_success(self, kps, goal_kps):
        i = self.scene.spec.index("ee")
        return bool(np.linalg.norm(kps[i] - goal_kps[i]) < self.success_tolerance)


class PlaceTask(Task):
    """Carry the held object along x, then down in z onto the goal, and let go (an L-shaped path)."""

    name, verb = "place", "place"

    def setup(self, rng):
        s = self.start(rng)
        self.start_pos = np.array([s[0], s[1], 0.3])
        self.goal_pos = np.array([self.goal_x(rng), s[1], TABLE_TOP_Z + OBJECT_HALF])
        self.scene.set_goal_patch([self.goal_pos[0], self.goal_pos[1], TABLE_TOP_Z + 0.0006])
        q0 = self.robot.ik(self.start_pos)
        self._add_object(self.start_pos - np.array([0, 0, self.robot.grasp_offset[2]]))
        return q0

    def after_reset(self) -> None:
        self.robot.grasp(self.scene.objects["obj"].body)

    def plan(self):
        drop = self.goal_pos + np.array([0, 0, self.robot.grasp_offset[2] + 0.002])
        corner = np.array([drop[0], self.start_pos[1], self.start_pos[2]])
        return Plan([self.start_pos, corner, drop], release_at=2)


class PushTask(Task):
    """Push the object along the table onto the goal."""

    name, verb = "push", "push"
    success_tolerance = 0.03

    def setup(self, rng):
        s = self.start(rng)
        self.obj_start = np.array([START_X + rng.uniform(-0.02, 0.02), s[1], TABLE_TOP_Z + OBJECT_HALF])
        self.goal_pos = np.array([self.goal_x(rng), self.obj_start[1], TABLE_TOP_Z + OBJECT_HALF])
        self._add_object(self.obj_start)
        self.scene.set_goal_patch([self.goal_pos[0], self.goal_pos[1], TABLE_TOP_Z + 0.0006])
        direction = np.sign(self.goal_pos[0] - self.obj_start[0])
        self.behind = self.obj_start - np.array([direction * (OBJECT_HALF + 0.05), 0, 0])
        self.start_pos = self.behind + np.array([0, 0, 0.2])
        return self.robot.ik(self.start_pos)

    def plan(self):
        direction = np.sign(self.goal_pos[0] - self.obj_start[0])
        low = np.array([self.behind[0], self.behind[1], TABLE_TOP_Z + 0.03 + self._tip_height()])
        end = np.array([self.goal_pos[0] - direction * (OBJECT_HALF + 0.03 + self.robot.push_reach), low[1], low[2]])
        return Plan([self.start_pos, low, end])

    def _tip_height(self) -> float:
        return 0.0 if self.robot.name == "panda" else 0.045


TASKS: dict[str, type[Task]] = {"reach": ReachTask, "place": PlaceTask, "push": PushTask}
