"""Arms: one controller interface (:class:`Arm`), a safety filter every target passes, and
backends for PyBullet (in process and over loopback), Franka (franky) and UR (ur-rtde)."""
from robot_irl.control.arm import Arm
from robot_irl.control.calibration import ArmCalibration
from robot_irl.control.clock import FakeClock, MonotonicClock, Rate
from robot_irl.control.errors import (ArmConnectionError, ArmDisconnectedError, ArmError, ArmStateError,
                                      ArmTimeoutError, EmergencyStopError)
from robot_irl.control.estop import EStop
from robot_irl.control.registry import BACKEND_NAMES, backend_config, make_arm
from robot_irl.control.safety import SafetyConfig, SafetyFilter
from robot_irl.control.types import Capabilities, Clamp, Command, Observation

__all__ = ["Arm", "ArmCalibration", "FakeClock", "MonotonicClock", "Rate", "ArmConnectionError",
           "ArmDisconnectedError", "ArmError", "ArmStateError", "ArmTimeoutError", "EmergencyStopError", "EStop",
           "BACKEND_NAMES", "backend_config", "make_arm", "SafetyConfig", "SafetyFilter", "Capabilities", "Clamp",
           "Command", "Observation"]
