"""A work cell seen by a camera, with no robot required: table, a reference ``world`` marker that
fixes the world frame, and objects that carry their ArUco marker as part of their own body.

Why a separate piece from :class:`sim.scene.Scene`: a person's demonstration has no robot in it,
and a robot run must render the same object and reference marker without syncing feature bodies
before every frame (the marker is a fixed, massless visual link of the object, so it moves with
the object whoever moves it: a hand setting poses, or a gripper's constraint under physics).

Frames: sim coordinates are the robot base frame of the robot cell. The world frame is the
reference marker's link frame: origin on the table under the marker's plate, z up, the plate
standing upright and facing the camera (-y), so solvePnP sees it face-on rather than at a
grazing angle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from robot_irl.core.spec import WORLD_BODY, KeypointDef, KeypointSpec, Marker
from sim.bullet import Bullet, p
from sim.camera import SceneCamera
from sim.scene import OBJECT_HALF, TABLE_TOP_Z, feature_rotation, marker_plate_half_size, marker_texture

#: the camera that watches the cell (a 3 cm object marker spans ~20 px; 480x360 keeps TinyRenderer's
#: cost per frame down, which dominates recording)
CELL_CAMERA = SceneCamera(eye=(0.58, -0.62, 0.42), target=(0.54, 0.0, 0.08), fov_y=42.0, size=(480, 360),
                          name="cell")


@dataclass(frozen=True)
class CellLayout:
    """Where the reference marker stands (base frame: x, y on the table and yaw in degrees), its
    marker, and the object's marker. The defaults keep both markers clear of the arm's links."""

    world_xy: tuple[float, float] = (0.34, -0.16)
    world_yaw_deg: float = 12.0
    world_marker: Marker = Marker(id=7, size=0.07)
    world_height: float = 0.06          # marker centre above the table (the world origin is below it)
    object_marker: Marker = Marker(id=1, size=0.03)
    top_marker: Marker | None = Marker(id=2, size=0.03)   # a second marker on the top face (None: side only)

    @property
    def T_base_world(self) -> np.ndarray:
        """The world frame in the base frame (truth, for checking a registration)."""
        T = np.eye(4)
        T[:3, :3] = Rotation.from_euler("z", self.world_yaw_deg, degrees=True).as_matrix()
        T[:3, 3] = [self.world_xy[0], self.world_xy[1], TABLE_TOP_Z]
        return T

    def world_keypoint(self) -> KeypointDef:
        return KeypointDef("world", WORLD_BODY, "base", (0.0, 0.0, self.world_height), self.world_marker,
                           normal=(0.0, -1.0, 0.0), up=(0.0, 0.0, 1.0))

    def object_keypoints(self, body: str = "obj") -> list[KeypointDef]:
        """The object's marker (on its camera-facing side), its centre, a point 5 cm above the
        centre, and the top face's marker. Why two markers: one small marker seen face-on has two
        nearly equal pose solutions (IPPE), and the mirror one put the centre 2.6 cm off in dev
        runs; two markers on one body are fitted together (one rigid pose over all their corners)."""
        h = OBJECT_HALF
        kps = [KeypointDef(f"{body}_marker", body, "base", (0.0, -h - 0.001, 0.0), self.object_marker,
                           normal=(0.0, -1.0, 0.0), up=(0.0, 0.0, 1.0)),
               KeypointDef(f"{body}_centre", body, "base", (0.0, 0.0, 0.0)),
               KeypointDef(f"{body}_top", body, "base", (0.0, 0.0, 0.05))]
        if self.top_marker is not None:
            kps.append(KeypointDef(f"{body}_marker_top", body, "base", (0.0, 0.0, h + 0.001), self.top_marker,
                                   normal=(0.0, 0.0, 1.0), up=(0.0, 1.0, 0.0)))
        return kps

    def spec(self, body: str = "obj") -> KeypointSpec:
        """What a camera in this cell extracts: the reference marker and the object."""
        return KeypointSpec((self.world_keypoint(), *self.object_keypoints(body)))


def _quad_visual(bullet: Bullet, kp: KeypointDef) -> tuple[int, int]:
    """A textured square showing ``kp``'s marker (visual shape id, texture id)."""
    assert isinstance(kp.feature, Marker)
    h = marker_plate_half_size(kp.feature)
    verts = [[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]]
    vis = p.createVisualShape(p.GEOM_MESH, vertices=verts, indices=[0, 1, 2, 0, 2, 3],
                              uvs=[[0, 0], [1, 0], [1, 1], [0, 1]], normals=[[0, 0, 1]] * 4,
                              physicsClientId=bullet.client)
    tex = p.loadTexture(str(marker_texture(kp.feature)), physicsClientId=bullet.client)
    return vis, tex


def _feature_quat(kp: KeypointDef) -> np.ndarray:
    return Rotation.from_matrix(feature_rotation(kp)).as_quat()


def add_table(bullet: Bullet) -> int:
    return bullet.create_box([0.5, 0.6, 0.02], [0.5, 0.0, TABLE_TOP_Z - 0.02], [0.75, 0.7, 0.6, 1])


def add_world_marker(bullet: Bullet, layout: CellLayout) -> int:
    """The reference marker standing on the table at the layout's pose (a static body)."""
    kp = layout.world_keypoint()
    vis, tex = _quad_visual(bullet, kp)
    T = layout.T_base_world
    R = T[:3, :3] @ feature_rotation(kp)
    pos = T[:3, :3] @ np.asarray(kp.offset) + T[:3, 3]
    body = p.createMultiBody(0.0, -1, vis, pos.tolist(), Rotation.from_matrix(R).as_quat().tolist(),
                             physicsClientId=bullet.client)
    p.changeVisualShape(body, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=bullet.client)
    return body


def add_marked_object(bullet: Bullet, layout: CellLayout, position, *, yaw_deg: float = 0.0,
                      rgba=(0.85, 0.2, 0.2, 1.0), mass: float = 0.2) -> int:
    """A cube (half side ``OBJECT_HALF``) whose markers are fixed visual links of its own body."""
    marks = [k for k in layout.object_keypoints() if k.feature is not None]
    quads = [_quad_visual(bullet, k) for k in marks]
    h = OBJECT_HALF
    box_vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[h, h, h], rgbaColor=list(rgba), physicsClientId=bullet.client)
    box_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[h, h, h], physicsClientId=bullet.client)
    orn = Rotation.from_euler("z", yaw_deg, degrees=True).as_quat().tolist()
    n = len(marks)
    body = p.createMultiBody(mass, box_col, box_vis, list(position), orn, linkMasses=[1e-4] * n,
                             linkCollisionShapeIndices=[-1] * n, linkVisualShapeIndices=[v for v, _ in quads],
                             linkPositions=[list(k.offset) for k in marks],
                             linkOrientations=[_feature_quat(k).tolist() for k in marks],
                             linkInertialFramePositions=[[0, 0, 0]] * n, linkInertialFrameOrientations=[[0, 0, 0, 1]] * n,
                             linkParentIndices=[0] * n, linkJointTypes=[p.JOINT_FIXED] * n, linkJointAxis=[[0, 0, 1]] * n,
                             physicsClientId=bullet.client)
    for i, (_, tex) in enumerate(quads):
        p.changeVisualShape(body, i, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=bullet.client)
    p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=bullet.client)
    return body


def object_points(bullet: Bullet, body: int, layout: CellLayout) -> np.ndarray:
    """True base-frame positions ``[K, 3]`` of the object's keypoints (layout order)."""
    pos, orn = bullet.pose(body)
    R = Rotation.from_quat(orn).as_matrix()
    return np.array([pos + R @ np.asarray(k.offset) for k in layout.object_keypoints()])


def render(bullet: Bullet, camera: SceneCamera) -> np.ndarray:
    w, h = camera.size
    return bullet.camera_image(camera.view_matrix, camera.projection_matrix, w, h, segmentation=False)[0]
