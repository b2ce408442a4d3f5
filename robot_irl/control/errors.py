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
