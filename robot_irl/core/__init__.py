"""The bottom layer: types every stage and the simulator share (keypoint spec, camera model,
geometry). It imports nothing from the rest of robot_irl and nothing from `sim`."""
from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import Blob, KeypointDef, KeypointSpec, Marker

__all__ = ["Blob", "CameraModel", "KeypointDef", "KeypointSpec", "Marker"]
