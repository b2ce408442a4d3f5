"""``robot-irl run --dry-run``: play a learned plan on the arm's sim twin and write it as a GIF.

The twin is the run's own robot model (the URDF its keypoint dynamics were built from) loaded
into a headless PyBullet client and posed along the planned joint path, so the preview works the
same for a simulated and a physical arm and shows exactly the kinematics the plan was made with.
The planned keypoint path, the keypoints now and the goal are drawn over every frame (projected
through the scene camera's model), which also keeps the preview readable for a URDF without
meshes (franky-sim's FR3)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from robot_irl.errors import InputError
from sim.bullet import Bullet
from sim.camera import SceneCamera

GOAL_RGB, PATH_RGB, NOW_RGB = (0, 200, 0), (255, 160, 0), (0, 0, 255)   # green, orange, blue


def _pixel(uv: np.ndarray) -> tuple[int, int] | None:
    return (int(round(uv[0])), int(round(uv[1]))) if np.all(np.isfinite(uv)) and np.all(np.abs(uv) < 1e5) else None


def _overlay(frame: np.ndarray, path_uv: np.ndarray, now_uv: np.ndarray, goal_uv: np.ndarray, label: str) -> np.ndarray:
    out = frame.copy()
    for k in range(goal_uv.shape[0]):
        pts = [p for p in (_pixel(u) for u in path_uv[:, k]) if p is not None]
        if len(pts) > 1:
            cv2.polylines(out, [np.array(pts, np.int32)], False, PATH_RGB, 1, cv2.LINE_AA)
        if (g := _pixel(goal_uv[k])) is not None:
            cv2.drawMarker(out, g, GOAL_RGB, cv2.MARKER_CROSS, 10, 2)
        if (c := _pixel(now_uv[k])) is not None:
            cv2.circle(out, c, 4, NOW_RGB, 2, cv2.LINE_AA)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + 8), (40, 40, 40), -1)
    cv2.putText(out, label, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def framing_camera(points: np.ndarray, camera: SceneCamera, margin: float = 1.25) -> SceneCamera:
    """``camera``'s view direction and size, moved so that every point of ``points [..., 3]`` (the
    robot's base, the keypoints now, the planned path, the goal) is in the picture and fills it:
    a fixed scene camera cut off a high start pose and left half the preview empty."""
    pts = np.asarray(points, float).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    center = 0.5 * (pts.min(0) + pts.max(0))
    radius = max(float(np.max(np.linalg.norm(pts - center, axis=1))), 0.1)
    view = np.asarray(camera.target, float) - np.asarray(camera.eye, float)
    view /= np.linalg.norm(view)
    w, h = camera.size
    half = np.radians(camera.fov_y) / 2
    half = min(half, np.arctan(np.tan(half) * w / h))        # the narrower of the two fields of view
    dist = margin * radius / np.sin(half)
    eye = center - dist * view
    return SceneCamera(tuple(eye), tuple(center), camera.up, camera.fov_y, camera.size, camera.near,
                       max(camera.far, dist + 2 * radius), camera.name)


def twin_frames(trained: Any, q_path: np.ndarray, keypoints: np.ndarray, goal: np.ndarray,
                camera: SceneCamera) -> list[np.ndarray]:
    """Frames [H+1] of the run's robot model posed at each row of ``q_path [H+1, n_model]`` (model
    joints), with the planned ``keypoints [H+1, K, 3]`` and ``goal [K, 3]`` drawn over them, seen
    along ``camera``'s direction from where the whole motion fills the frame (:func:`framing_camera`)."""
    dyn = trained.dynamics
    urdf = getattr(dyn, "urdf", None)
    if urdf is None or not Path(urdf).is_file():
        raise InputError(f"the run's dynamics have no robot model file ({urdf})", field="run dynamics urdf",
                         expected="a run trained with kinematic dynamics on an existing URDF")
    bullet = Bullet()
    try:
        body = bullet.load_urdf(str(urdf))
        index = {name: j for j, name, *_ in bullet.joint_info(body)}
        fixed = {n: v for n, v in getattr(dyn, "fixed_joint_values", {}).items() if n in index}
        if fixed:
            bullet.reset_joints(body, [index[n] for n in fixed], list(fixed.values()))
        joints = [index[n] for n in dyn.joints]
        links = sorted(index.values())
        seen = [np.zeros((1, 3)), keypoints.reshape(-1, 3), np.asarray(goal, float).reshape(-1, 3)]
        for q in q_path:                        # every link at every planned pose is in the picture
            bullet.reset_joints(body, joints, q)
            seen.append(np.array([pos for pos, _ in bullet.link_poses(body, links)]))
        camera = framing_camera(np.concatenate(seen), camera)
        model = camera.model()
        path_uv, goal_uv = model.project(keypoints), model.project(goal)
        w, h = camera.size
        frames = []
        for i, q in enumerate(q_path):
            bullet.reset_joints(body, joints, q)
            rgb, _ = bullet.camera_image(camera.view_matrix, camera.projection_matrix, w, h, segmentation=False)
            err_cm = 100 * float(np.max(np.linalg.norm(keypoints[i] - goal, axis=-1)))
            frames.append(_overlay(rgb, path_uv, path_uv[i], goal_uv,
                                   f"plan step {i}/{len(q_path) - 1}  err {err_cm:.1f} cm"))
        return frames
    finally:
        bullet.close()


def write_plan_preview(trained: Any, q_path: np.ndarray, keypoints: np.ndarray, goal: np.ndarray,
                       out: str | Path, camera: SceneCamera, fps: float = 5.0) -> Path:
    """Write the twin playing the plan as a looping GIF at ``out`` (the last frame held for 1 s)."""
    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise InputError(f"preview file {out.name}", file=out, field="--preview", expected="a .gif path")
    frames = twin_frames(trained, q_path, keypoints, goal, camera)
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    durations = [int(1000 / fps)] * (len(images) - 1) + [1000]
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return out
