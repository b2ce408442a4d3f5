"""Typed errors of the controller layer, so callers can tell a dead link from a refused command."""
from __future__ import annotations

from robot_irl.errors import RobotIRLError


class ArmError(RobotIRLError):
    """Anything that went wrong talking to or driving an arm."""


class ArmConnectionError(ArmError):
    """The link to the arm (or its server) is down or never came up."""


class ArmTimeoutError(ArmConnectionError):
    """The arm (or its server) did not answer within the configured timeout: frozen or unreachable."""


class ArmDisconnectedError(ArmConnectionError):
    """The peer closed the connection (process killed, cable pulled)."""


class ArmStateError(ArmError):
    """A call that the arm's current state does not allow (not connected, teach mode on, ...)."""


class EmergencyStopError(ArmError):
    """The emergency stop is latched; the arm is stopped until :meth:`Arm.reset_estop` is called."""


class ArmStallError(ArmError):
    """The arm does not follow its targets (blocked by a collision, a clamp or a held object): the
    commanded position stayed away from the measured one for too long, or the two can no longer be
    reconciled. The arm was told to hold where it is before this was raised."""

    def __init__(self, message: str, joints: tuple[int, ...], divergence: float) -> None:
        super().__init__(message)
        self.joints = joints
        self.divergence = divergence
