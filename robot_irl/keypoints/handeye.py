"""Camera-to-base (``T_base_cam``) from an episode where the arm carries a marker past the camera.

The marker sits on a robot link at a pose the keypoint spec states, so the robot's forward
kinematics (URDF + the recorded joint positions) put its four corners in the base frame in every
frame; the camera saw them at some pixels. Over ~20 or more distinct arm poses that is one
3D–2D problem for the camera pose (:func:`~robot_irl.keypoints.geometry.camera_to_base`; OpenCV
5.0.0.93 has no ``calibrateHandEye``, and one solvePnP over all corners needs none).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import ROBOT_BODY, KeypointDef, KeypointSpec, Marker
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.keypoints.detectors import (ArucoDetector, Frame, MarkerTemplate, aruco_dictionary, refine_edges,
                                           refine_template)
from robot_irl.keypoints.geometry import camera_to_base, marker_corners_link, transform

# URDFs of the robots the sim records, shipped with pybullet_data (a real arm: pass --urdf).
KNOWN_URDFS = {"iiwa": "kuka_iiwa/model.urdf", "panda": "franka_panda/panda.urdf"}


def robot_urdf(robot: str | None, urdf: str | Path | None = None) -> Path:
    """The URDF to use: the one given, else the known one for ``robot``."""
    if urdf is not None:
        path = Path(urdf)
        if not path.is_file():
            raise InputError("URDF file not found", file=path, field="urdf", expected="a readable .urdf file")
        return path
    if robot not in KNOWN_URDFS:
        raise InputError(f"no URDF known for robot {robot!r}", field="urdf",
                         expected=f"--urdf PATH, or a recorded robot among {sorted(KNOWN_URDFS)}")
    import pybullet_data
    return Path(pybullet_data.getDataPath()) / KNOWN_URDFS[robot]


class LinkKinematics:
    """World (= robot base) pose of one URDF link for batches of joint positions (pytorch-kinematics)."""

    def __init__(self, urdf: str | Path, link: str, joint_names: list[str]) -> None:
        import pytorch_kinematics as pk
        import torch

        self.urdf = Path(urdf)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # the parser warns about every unknown tag
                self.chain = pk.build_chain_from_urdf(self.urdf.read_bytes()).to(dtype=torch.float64)
        except Exception as e:  # the parser raises many types; the user needs to know the file is bad
            raise InputError(f"cannot parse URDF ({type(e).__name__}: {e})", file=self.urdf, field="urdf",
                             expected="a valid URDF robot description") from None
        frames = list(self.chain.frame_to_idx)
        if link not in self.chain.frame_to_idx:
            raise UnknownNameError("link", link, frames, file=self.urdf)
        self.link = link
        all_joints = self.chain.get_joint_parameter_names()
        unknown = [j for j in joint_names if j not in all_joints]
        if unknown:
            raise UnknownNameError("joint", unknown[0], all_joints, file=self.urdf)
        self._cols = [all_joints.index(j) for j in joint_names]
        self._n = len(all_joints)

    def poses(self, q: np.ndarray) -> np.ndarray:
        """``T_base_link [N, 4, 4]`` for joint positions ``q [N, n]`` (joints not recorded: 0)."""
        import torch

        full = torch.zeros((len(q), self._n), dtype=torch.float64)
        full[:, self._cols] = torch.as_tensor(np.asarray(q, np.float64))
        T = self.chain.forward_kinematics(full, frame_indices=torch.tensor([self.chain.frame_to_idx[self.link]]))
        return T[self.link].get_matrix().numpy()


@dataclass
class HandEyeResult:
    camera: CameraModel          # the input intrinsics with the solved T_base_cam
    rms_px: float                # reprojection RMS over every corner used
    frames: int                  # frames with the marker seen and joint positions known
    distinct_poses: int          # of those, arm poses ≥ 1 cm / 5° apart
    markers: list[str]

    def record(self, source: str) -> dict[str, Any]:
        """What to store beside the model: how ``T_base_cam`` was obtained."""
        return {"method": "marker on the arm + forward kinematics (one solvePnP over all corners)",
                "source": source, "rms_px": self.rms_px, "frames": self.frames,
                "distinct_poses": self.distinct_poses, "markers": self.markers}


def arm_markers(spec: KeypointSpec, names: list[str] | None = None) -> list[KeypointDef]:
    """The spec's marker keypoints on the robot (or the ``names`` asked for, which must be)."""
    markers = [k for k in spec if isinstance(k.feature, Marker) and k.body == ROBOT_BODY]
    if names:
        by = {k.name: k for k in markers}
        for n in names:
            if n not in by:
                raise UnknownNameError("marker keypoint on the robot", n, sorted(by))
        markers = [by[n] for n in names]
    if not markers:
        raise InputError("the keypoint spec has no marker on the robot", field="keypoint_spec",
                         expected="a Marker keypoint with body 'robot' (on a link the URDF has)")
    return markers


def count_distinct(T: np.ndarray, min_move: float = 0.01, min_turn: float = np.deg2rad(5.0)) -> int:
    """Greedy count of poses at least ``min_move`` m or ``min_turn`` rad from every kept one."""
    kept: list[np.ndarray] = []
    for P in T:
        if all(np.linalg.norm(P[:3, 3] - Q[:3, 3]) >= min_move or
               np.arccos(np.clip((np.trace(P[:3, :3].T @ Q[:3, :3]) - 1) / 2, -1, 1)) >= min_turn for Q in kept):
            kept.append(P)
    return len(kept)


def hand_eye_episodes(episodes: list, camera: str = "cam0", *, urdf: str | Path | None = None,
                      markers: list[str] | None = None, intrinsics: CameraModel | None = None,
                      corner_fit: str = "template", min_poses: int = 10) -> HandEyeResult:
    """``T_base_cam`` of ``camera`` from one or more episodes recorded with the same camera
    placement. Intrinsics: ``intrinsics`` or the (first) episode's camera model. Joint positions
    are taken at each frame's timestamp (linear interpolation of the ``state`` stream)."""
    if not episodes:
        raise InputError("no episode given", field="episode", expected="episodes showing the arm's marker")
    ep0 = episodes[0]
    cam = intrinsics or ep0.camera_model(camera)
    if cam is None:
        raise InputError("the camera has no intrinsics", file=ep0.id, field=f"cameras.{camera}.model",
                         expected="run `robot-irl calibrate VIDEO --episode ID` first (K, dist)")
    points, pixels, poses, used = [], [], [], set()
    for ep in episodes:
        if camera not in ep.cameras:
            raise UnknownNameError("camera", camera, ep.cameras, file=ep.id)
        spec = ep.keypoint_spec
        if spec is None:
            raise InputError("episode has no keypoint spec", file=ep.id, field="meta.keypoint_spec",
                             expected="a keypoint spec naming the marker on the arm")
        kdefs = arm_markers(spec, markers)
        cols = ep.columns("state")
        if "joint_pos" not in cols:
            raise InputError("no joint positions recorded", file=ep.id, field="streams.state.joint_pos",
                             expected="a 'joint_pos' column with joint names")
        joint_names = list(cols["joint_pos"].names or [])
        state = ep.arrays("state")
        ts_state, q_state = state["timestamp"], state["joint_pos"]
        ts = ep.timestamps(camera)
        inside = (ts >= ts_state[0]) & (ts <= ts_state[-1])
        q = np.stack([np.interp(ts, ts_state, q_state[:, j]) for j in range(q_state.shape[1])], axis=1)
        path = robot_urdf(ep.robot, urdf)
        kin = {link: LinkKinematics(path, link, joint_names) for link in {k.link for k in kdefs}}
        T_links = {link: k.poses(q) for link, k in kin.items()}
        det = ArucoDetector(kdefs, refine="none")
        templates = {k.name: MarkerTemplate(k.feature) for k in kdefs}
        cells = {k.name: aruco_dictionary(k.feature.dictionary).markerSize + 2 for k in kdefs}
        corners_link = {k.name: marker_corners_link(k) for k in kdefs}
        link_of = {k.name: k.link for k in kdefs}
        for t, bgr in enumerate(ep.video_frames(camera, rgb=False)):
            if not inside[t]:
                continue
            frame = Frame(bgr)
            for name, c in det.detect_corners(frame.gray).items():
                if corner_fit == "template":
                    c = refine_template(frame.gray, c, templates[name])
                elif corner_fit == "edges":
                    c = refine_edges(frame.gray, c, cells[name])
                T = T_links[link_of[name]][t]
                points.append(transform(T, corners_link[name]))
                pixels.append(c)
                poses.append(T)
                used.add(name)
    if not points:
        raise InputError("the arm's marker was not found in any frame", file=ep0.id, field=f"cameras.{camera}",
                         expected="a video where the marker on the arm faces the camera")
    distinct = count_distinct(np.array(poses))
    if distinct < min_poses:
        raise InputError(f"the marker was seen in only {distinct} distinct arm poses", file=ep0.id, field="episode",
                         expected=f"≥ {min_poses} poses ≥ 1 cm / 5° apart (~20 recommended): move the arm more")
    T_base_cam, rms = camera_to_base(points, pixels, cam.K, cam.dist)
    solved = CameraModel(K=cam.K, size=cam.size, T_base_cam=T_base_cam, dist=cam.dist, name=cam.name)
    return HandEyeResult(solved, rms, len(poses), distinct, sorted(used))
