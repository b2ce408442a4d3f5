"""Scripted experts: follow the task's end-effector path at a constant speed, turn each point of it
into joint targets by inverse kinematics, and act in bounded joint deltas like any policy."""
from __future__ import annotations

import numpy as np

from sim.env import ArmEnv


class ScriptedExpert:
    """Moves the end effector along ``task.plan()`` at ``speed`` m/s; opens the gripper once the
    release waypoint is reached and the arm has settled there."""

    def __init__(self, env: ArmEnv, speed: float = 0.12, settle_steps: int = 3) -> None:
        self.env = env
        self.speed = speed
        self.settle_steps = settle_steps
        self.reset()

    def reset(self) -> None:
        plan = self.env.task.plan()
        self.waypoints = plan.waypoints
        self.release_at = plan.release_at
        self.segment = 0
        self.s = 0.0           # distance travelled along the current segment
        self.settled = 0

    def _target(self) -> tuple[np.ndarray, bool]:
        """Advance along the path by one step's travel; return the EE target and whether the end
        (or the release point) is reached."""
        step = self.speed * self.env.control_dt
        while self.segment < len(self.waypoints) - 1:
            a, b = self.waypoints[self.segment], self.waypoints[self.segment + 1]
            length = float(np.linalg.norm(b - a))
            if self.s + step <= length:
                self.s += step
                return a + (b - a) * (self.s / max(length, 1e-9)), False
            step -= length - self.s
            self.segment, self.s = self.segment + 1, 0.0
        return self.waypoints[-1], True

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        env = self.env
        target, at_end = self._target()
        q_goal = env.robot.ik(target)
        delta = np.clip(q_goal - env.joint_target, -env.robot.max_delta, env.robot.max_delta)
        grip = 1.0
        if at_end:
            self.settled += 1
            if self.release_at is not None and self.settled > self.settle_steps:
                grip = -1.0
        return np.r_[delta, grip]


def expert_for(env) -> ScriptedExpert:
    """The scripted expert of a (possibly wrapped) ArmEnv."""
    return ScriptedExpert(env.unwrapped)
