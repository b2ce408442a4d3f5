"""The table-top scene: table, objects, goal patch, and the visual features (ArUco plates and
coloured spheres) that mark keypoints, with their exact ground truth."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sim.bullet import p
from scipy.spatial.transform import Rotation

from robot_irl.core.io import atomic_write_bytes
from robot_irl.core.spec import ROBOT_BODY, COLORS, Blob, KeypointDef, KeypointSpec, Marker
from robot_irl.errors import UnknownNameError
from sim.bullet import Bullet
from sim.robots import Robot

QUIET_CELLS = 1  # white border around the marker's black square, in marker cells


def cache_dir() -> Path:
    root = os.environ.get("ROBOT_IRL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "robot-irl")
    return Path(root)


def marker_texture(marker: Marker, cell_px: int = 16) -> Path:
    """A PNG of the ArUco marker with a one-cell white quiet zone, cached on disk."""
    if not hasattr(cv2.aruco, marker.dictionary):
        valid = [n for n in dir(cv2.aruco) if n.startswith("DICT_")]
        raise UnknownNameError("ArUco dictionary", marker.dictionary, valid)
    path = cache_dir() / "textures" / f"aruco_{marker.dictionary}_{marker.id}_{cell_px}.png"
    if not path.exists():
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, marker.dictionary))
        cells = d.markerSize + 2
        img = cv2.aruco.generateImageMarker(d, marker.id, cells * cell_px, borderBits=1)
        pad = QUIET_CELLS * cell_px
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_GRAY2RGB))
        atomic_write_bytes(path, buf.tobytes())
    return path


def marker_plate_half_size(marker: Marker) -> float:
    cells = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, marker.dictionary)).markerSize + 2
    return marker.size / 2.0 * (cells + 2 * QUIET_CELLS) / cells


def feature_rotation(kp: KeypointDef) -> np.ndarray:
    """Rotation (link frame) of a keypoint's feature: columns x = up × normal, y = up, z = normal,
    the frame in which OpenCV's IPPE_SQUARE places a marker's corners."""
    z = np.asarray(kp.normal, dtype=float)
    y = np.asarray(kp.up, dtype=float)
    z /= np.linalg.norm(z)
    y = y - z * (y @ z)
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def marker_corners_local(kp: KeypointDef) -> np.ndarray:
    """The 4 corners (top-left, top-right, bottom-right, bottom-left, as ArUco orders them) of a
    marker's black square in its link frame."""
    assert isinstance(kp.feature, Marker)
    h = kp.feature.size / 2.0
    corners = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]])
    return np.asarray(kp.offset) + corners @ feature_rotation(kp).T


def quat_matrix(q: np.ndarray) -> np.ndarray:
    return np.asarray(p.getMatrixFromQuaternion(q)).reshape(3, 3)


@dataclass
class SceneObject:
    name: str
    body: int
    shape: str
    color: str
    half_height: float


TABLE_TOP_Z = 0.0
OBJECT_HALF = 0.025


class Scene:
    """Table, objects and keypoint features around one robot."""

    def __init__(self, bullet: Bullet, robot: Robot, show_markers: bool = True, show_blobs: bool = True) -> None:
        self.bullet = bullet
        self.robot = robot
        self.show_markers = show_markers
        self.show_blobs = show_blobs
        self.table = bullet.create_box([0.5, 0.6, 0.02], [0.5, 0.0, TABLE_TOP_Z - 0.02], [0.75, 0.7, 0.6, 1])
        self.objects: dict[str, SceneObject] = {}
        self.goal_patch: int | None = None
        self.keypoint_defs: list[KeypointDef] = list(robot.keypoints())
        self._features: dict[str, int] = {}
        self._feature_poses_dirty = True

    # --- building ---
    def add_object(self, name: str, shape: str, color: str, position, marker_id: int) -> SceneObject:
        if color not in COLORS:
            raise UnknownNameError("object colour", color, COLORS)
        rgba = [*COLORS[color], 1.0]
        h = OBJECT_HALF
        if shape == "cube":
            body = self.bullet.create_box([h, h, h], position, rgba, mass=0.2)
        elif shape == "cylinder":
            body = self.bullet.create_cylinder(h, 2 * h, position, rgba, mass=0.2)
        else:
            raise UnknownNameError("object shape", shape, ["cube", "cylinder"])
        p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=self.bullet.client)
        obj = SceneObject(name, body, shape, color, h)
        self.objects[name] = obj
        self.keypoint_defs.append(KeypointDef(name, name, "base", (0.0, -h - 0.001, 0.0),
                                              Marker(id=marker_id, size=0.03), normal=(0.0, -1.0, 0.0),
                                              up=(0.0, 0.0, 1.0)))
        return obj

    def clear_objects(self) -> None:
        """Remove every object, its keypoints and their feature bodies (between episodes)."""
        for name, obj in self.objects.items():
            self.bullet.remove(obj.body)
            if name in self._features:
                self.bullet.remove(self._features.pop(name))
        self.keypoint_defs = [kp for kp in self.keypoint_defs if kp.body not in self.objects]
        self.objects.clear()

    def set_goal_patch(self, position, rgba=(0.2, 0.8, 0.3, 1.0)) -> None:
        if self.goal_patch is None:
            self.goal_patch = self.bullet.create_box([0.04, 0.04, 0.0005], position, list(rgba), collide=False)
        self.bullet.set_pose(self.goal_patch, position, (0, 0, 0, 1))

    def build_features(self) -> None:
        """Create a textured plate or sphere for each keypoint feature that is switched on."""
        for kp in self.keypoint_defs:
            if kp.name in self._features:
                continue
            if isinstance(kp.feature, Marker) and self.show_markers:
                body = self.bullet.create_textured_quad(marker_plate_half_size(kp.feature), marker_texture(kp.feature))
            elif isinstance(kp.feature, Blob) and self.show_blobs:
                body = self.bullet.create_visual_sphere(kp.feature.radius, [*kp.feature.rgb, 1.0])
            else:
                continue
            self._features[kp.name] = body
        self._feature_poses_dirty = True

    @property
    def spec(self) -> KeypointSpec:
        return KeypointSpec(tuple(self.keypoint_defs))

    def feature_body(self, name: str) -> int | None:
        return self._features.get(name)

    # --- ground truth ---
    def frame_poses(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        """World pose of every (body, link) a keypoint sits on, read once."""
        robot_links = sorted({kp.link for kp in self.keypoint_defs if kp.body == ROBOT_BODY})
        poses = dict(zip(((ROBOT_BODY, l) for l in robot_links),
                         self.bullet.link_poses(self.robot.body, [self.robot.link_index(l) for l in robot_links])))
        for name, obj in self.objects.items():
            poses[(name, "base")] = self.bullet.pose(obj.body)
        return poses

    def keypoints_3d(self) -> np.ndarray:
        """[K, 3] world (= robot base) positions of all keypoints, in spec order."""
        poses = self.frame_poses()
        out = np.empty((len(self.keypoint_defs), 3))
        for i, kp in enumerate(self.keypoint_defs):
            pos, orn = poses[(kp.body, kp.link)]
            out[i] = pos + quat_matrix(orn) @ np.asarray(kp.offset)
        return out

    def marker_corners_3d(self) -> dict[str, np.ndarray]:
        """World positions [4, 3] of each marker's corners (ArUco order)."""
        poses = self.frame_poses()
        out = {}
        for kp in self.keypoint_defs:
            if isinstance(kp.feature, Marker):
                pos, orn = poses[(kp.body, kp.link)]
                out[kp.name] = pos + marker_corners_local(kp) @ quat_matrix(orn).T
        return out

    def sync_features(self) -> None:
        """Move the feature bodies onto their links (only needed before a render)."""
        if not self._features:
            return
        poses = self.frame_poses()
        for kp in self.keypoint_defs:
            body = self._features.get(kp.name)
            if body is None:
                continue
            pos, orn = poses[(kp.body, kp.link)]
            R = quat_matrix(orn)
            world_pos = pos + R @ np.asarray(kp.offset)
            if isinstance(kp.feature, Marker):
                q = Rotation.from_matrix(R @ feature_rotation(kp)).as_quat()
            else:
                q = (0, 0, 0, 1)
            self.bullet.set_pose(body, world_pos, q)
