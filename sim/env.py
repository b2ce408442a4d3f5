"""The gymnasium environment: one robot, one task, one camera, composed.

Actions are bounded joint-position deltas for the arm plus one gripper value (> 0 hold, < 0 let go;
only the place task uses it). The env keeps an absolute joint target, adds the clipped delta,
clips to the joint limits, and reports the target in ``info["joint_target"]``.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.spec import KeypointSpec, Marker
from sim.bullet import Bullet
from sim.camera import SceneCamera, get_camera
from sim.robots import make_robot
from sim.scene import Scene, quat_matrix
from sim.tasks import TASKS, Variant
from robot_irl.errors import UnknownNameError


class ArmEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str = "place", robot: str = "iiwa", variant: dict[str, Any] | None = None,
                 camera: str | SceneCamera = "front", render_size: tuple[int, int] = (320, 240),
                 control_dt: float = 0.1, substeps: int = 24, markers: bool = True, blobs: bool = True,
                 render_mode: str | None = "rgb_array", max_steps: int | None = None) -> None:
        if task not in TASKS:
            raise UnknownNameError("task", task, TASKS)
        self.task_name = task
        self.variant = Variant.from_dict(variant)
        self.camera = camera.with_size(render_size) if isinstance(camera, SceneCamera) else get_camera(camera, render_size)
        self.substeps = int(substeps)
        self.control_dt = float(control_dt)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.control_dt)}
        self.bullet = Bullet(timestep=self.control_dt / self.substeps)
        self.robot = make_robot(robot, self.bullet)
        self.scene = Scene(self.bullet, self.robot, show_markers=markers, show_blobs=blobs)
        self.task = TASKS[task](self.robot, self.scene, self.variant)
        self.max_steps = max_steps or self.task.max_steps
        # Build one episode's scene so the spaces know the keypoint count.
        self._setup_episode(np.random.default_rng(0))
        n, K = self.robot.n_dof, len(self.scene.keypoint_defs)
        lim = self.robot.joint_limits
        d = self.robot.max_delta
        self.action_space = gym.spaces.Box(np.r_[-d * np.ones(n), -1.0], np.r_[d * np.ones(n), 1.0], dtype=np.float64)
        inf = np.inf
        self.observation_space = gym.spaces.Dict({
            "joint_pos": gym.spaces.Box(lim[:, 0], lim[:, 1], dtype=np.float64),
            "joint_vel": gym.spaces.Box(-inf, inf, (n,), dtype=np.float64),
            "ee_pos": gym.spaces.Box(-inf, inf, (3,), dtype=np.float64),
            "ee_quat": gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float64),
            "keypoints": gym.spaces.Box(-inf, inf, (K, 3), dtype=np.float64),
            "goal": gym.spaces.Box(-inf, inf, (K, 3), dtype=np.float64),
        })
        self._seg: np.ndarray | None = None
        self._seg_step = -1

    # --- gymnasium API ---
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "variant" in options:
            self.variant = Variant.from_dict(options["variant"])
            self.task.variant = self.variant
        self._setup_episode(self.np_random)
        return self._obs(), self._info()

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape}")
        delta = np.clip(np.nan_to_num(a[:-1]), self.action_space.low[:-1], self.action_space.high[:-1])
        lim = self.robot.joint_limits
        self.joint_target = np.clip(self.joint_target + delta, lim[:, 0], lim[:, 1])
        self.robot.set_targets(self.joint_target)
        if a[-1] < 0 and self.robot.holding:
            self.robot.release()
        self.bullet.step(self.substeps)
        self.steps += 1
        obs = self._obs()
        success = self.task.is_success(obs["keypoints"], self.goal)
        err = float(np.linalg.norm(obs["keypoints"] - self.goal, axis=1).mean())
        truncated = self.steps >= self.max_steps
        info = self._info(success=success, delta=delta)
        return obs, -err, success, truncated, info

    def render(self) -> np.ndarray:
        rgb, seg = self._render(segmentation=True)
        self._seg, self._seg_step = seg, self.steps
        return rgb

    def render_view(self, camera: SceneCamera | str) -> np.ndarray:
        """RGB of the current scene through another camera (a name from ``sim.camera.CAMERAS`` at
        this env's render size, or a :class:`SceneCamera` at its own): a second view of the same
        instant, e.g. for keypoints seen from two sides."""
        cam = camera if isinstance(camera, SceneCamera) else get_camera(camera, self.camera.size)
        self.scene.sync_features()
        w, h = cam.size
        return self.bullet.camera_image(cam.view_matrix, cam.projection_matrix, w, h, False)[0]

    def close(self) -> None:
        self.bullet.close()

    # --- ground truth for the camera ---
    @property
    def keypoint_spec(self) -> KeypointSpec:
        return self.scene.spec

    def camera_model(self) -> CameraModel:
        return self.camera.model()

    def keypoints_3d(self) -> np.ndarray:
        return self.scene.keypoints_3d()

    def keypoints_2d(self) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth pixels ``[K, 2]`` of every keypoint in the current frame, and whether each
        is visible (its feature is what the camera sees at that pixel, and a marker faces the
        camera). Renders a segmentation mask if the current frame has none."""
        if self._seg is None or self._seg_step != self.steps:
            self.render()
        cam = self.camera_model()
        kps = self.scene.keypoints_3d()
        uv = cam.project(kps)
        w, h = cam.size
        poses = self.scene.frame_poses()
        visible = np.zeros(len(kps), dtype=bool)
        for i, kp in enumerate(self.scene.keypoint_defs):
            if not np.all(np.isfinite(uv[i])):
                continue
            u, v = int(round(uv[i, 0])), int(round(uv[i, 1]))
            body = self.scene.feature_body(kp.name)
            if body is None or not (0 <= u < w and 0 <= v < h) or self._seg[v, u] != body:
                continue
            if isinstance(kp.feature, Marker):
                normal = quat_matrix(poses[(kp.body, kp.link)][1]) @ np.asarray(kp.normal)
                visible[i] = float(normal @ (np.asarray(self.camera.eye) - kps[i])) > 0
            else:
                visible[i] = True
        return uv, visible

    # --- internals ---
    def _setup_episode(self, rng: np.random.Generator) -> None:
        self.robot.release()
        self.scene.clear_objects()
        self.robot.reset(self.robot.rest_pose)   # seeds IK away from joint limits
        q0 = self.task.setup(rng)
        self.robot.reset(q0)
        self.task.after_reset()
        self.scene.build_features()
        self.joint_target = q0.copy()
        self.goal = self.task.goal_keypoints()
        self.steps = 0
        self._seg = None

    def _render(self, segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        self.scene.sync_features()
        w, h = self.camera.size
        return self.bullet.camera_image(self.camera.view_matrix, self.camera.projection_matrix, w, h, segmentation)

    def _obs(self) -> dict[str, np.ndarray]:
        q, dq = self.robot.joint_state()
        ee_pos, ee_quat = self.robot.ee_pose()
        lim = self.robot.joint_limits
        return {"joint_pos": np.clip(q, lim[:, 0], lim[:, 1]), "joint_vel": dq, "ee_pos": ee_pos, "ee_quat": ee_quat,
                "keypoints": self.scene.keypoints_3d(), "goal": self.goal.copy()}

    def _info(self, success: bool = False, delta: np.ndarray | None = None) -> dict[str, Any]:
        return {"joint_target": self.joint_target.copy(), "is_success": success, "task_text": self.task.text(),
                "variant": self.variant.to_dict(), "holding": self.robot.holding,
                "delta": np.zeros(self.robot.n_dof) if delta is None else delta}
