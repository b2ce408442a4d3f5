"""What a backend (simulator, network client, vendor SDK) must provide to become an :class:`Arm`.

Backends speak raw joint angles and trust their caller: they never see a target that did not pass
the :class:`~robot_irl.control.safety.SafetyFilter`, because only :class:`Arm` holds one and the
registry hands out nothing else."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from robot_irl.control.types import Capabilities, Observation


class ArmBackend(ABC):
    #: the home pose used when no calibration file gives one (rad, raw)
    default_home: np.ndarray

    @abstractmethod
    def connect(self) -> Capabilities:
        """Open the link and return what the arm can do."""

    @abstractmethod
    def read(self) -> Observation:
        """The latest measured state, stamped with the time it was measured."""

    @abstractmethod
    def command(self, q: np.ndarray) -> None:
        """Stream one absolute joint-position target; the backend interpolates at its native rate."""

    @abstractmethod
    def hold(self) -> np.ndarray | None:
        """Keep the current measured position (still accepting targets afterwards). Returns the raw
        joint target the arm now holds, when the backend chose it, so the next target's step is
        capped from exactly what the arm was last told."""

    @abstractmethod
    def stop(self) -> np.ndarray | None:
        """Halt motion and end the current control session; the next target starts a new one.
        Returns the raw position the arm was stopped at, when known (as :meth:`hold`)."""

    @abstractmethod
    def set_teach_mode(self, on: bool) -> None:
        """Freedrive (gravity-compensated, back-drivable) on or off, for kinesthetic recording."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the arm; safe to call twice and after a failed connect."""

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray | None:
        """End-effector position (base frame, m) for raw joint angles, if the backend can tell."""
        return None

    def render(self, camera) -> np.ndarray | None:
        """An RGB frame [H, W, 3] of a simulated scene camera (``sim.camera.SceneCamera``) showing
        the arm now, if the backend simulates one (only the in-process PyBullet arm does)."""
        return None
