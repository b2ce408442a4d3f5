"""The person-demo pipeline on the simulator, end to end: person demos rendered with no robot →
OpenCV extraction in the reference marker's world frame → world-to-base registration (touched
corners) → a cost over the object's keypoints learned with the held-object dynamics → the
PyBullet arm finds, grasps, carries and releases the object through the safety filter, judged on
the object's keypoints extracted from the run's own video.

Composes stages (record, keypoints, irl, control) for ``scripts/eval_person.py`` and the tests;
it is the sim stand-in for a real cell, where the same functions take a camera and a real arm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.control import FakeClock, SafetyConfig, make_arm
from robot_irl.control.carry import CarryConfig, CarryRecord, SimGripper, carry, observe_object
from robot_irl.control.pybullet_arm import PyBulletConfig
from robot_irl.control.registration import WorldRegistration, touch
from robot_irl.core.camera import CameraModel
from robot_irl.irl.demos import DemoSet
from robot_irl.irl.object_demos import ObjectDemos, object_demos_from_library
from robot_irl.models.held import TopDownGrasp, held_frames
from robot_irl.record.person import CAMERA

ROBOT = "iiwa"
#: the flange pointing at the upright reference marker (its z axis along base +y) while touching it
TOUCH_ORIENTATION = np.array([-0.70710678, 0.0, 0.0, 0.70710678])


@dataclass
class PersonSetup:
    """What learning and running share: the robot, its grasp, the cell."""

    robot: str = ROBOT
    grasp_depth: float = 0.1        # iiwa: object centre 10 cm below the flange (sim.robots.Iiwa.grasp_offset)
    rows: int = 10
    touch_noise_m: float = 0.001    # a person's touch is not exact
    limit_margin: float = 0.06      # rad inside the URDF limits the plans keep (the filter keeps 0.05)
    layout: Any = None              # sim.cell.CellLayout (default layout when None)
    camera: Any = None              # sim.camera.SceneCamera (the cell camera when None)

    def __post_init__(self) -> None:
        from sim.cell import CELL_CAMERA, CellLayout

        self.layout = self.layout or CellLayout()
        self.camera = self.camera or CELL_CAMERA

    @property
    def intrinsics(self) -> CameraModel:
        m = self.camera.model()
        return CameraModel(K=m.K, size=m.size, name=CAMERA)


def held_dynamics(setup: PersonSetup, od_spec: Any):
    """The robot's kinematic model with the object's keypoints on the flange (top-down grasp)."""
    from robot_irl.models import KinematicDynamics
    from sim.bullet import Bullet
    from sim.robots import make_robot

    b = Bullet()
    try:
        r = make_robot(setup.robot, b)
        urdf, ee, joints = r.urdf_path, r.ee_link_name, list(r.joint_names)
    finally:
        b.close()
    frames = held_frames(ee, TopDownGrasp(setup.grasp_depth), {k.name: tuple(k.offset) for k in od_spec})
    dyn = KinematicDynamics(urdf, frames, joints=joints)
    # Plan inside the safety filter's joint-limit margin: a top-down carry works near the iiwa's
    # wrist limits, and a plan that asks past the margin is clamped by the filter row after row,
    # bending the executed path away from the planned one (seen on dev seed 0: 44-121 clamps a carry).
    dyn.lower, dyn.upper = dyn.lower + setup.limit_margin, dyn.upper - setup.limit_margin
    return dyn


def start_joints(dyn: Any, x0: np.ndarray, robot: str = ROBOT) -> np.ndarray:
    """Joints ``[N, n]`` holding each demo's object at its carry start, by IK from the robot's rest pose."""
    import torch
    from sim.robots import ROBOTS

    with torch.no_grad():
        q_init = dyn.as_tensor(ROBOTS[robot].rest_pose)[None].expand(len(x0), -1)
        return dyn.inverse_kinematics(dyn.as_tensor(x0), q_init, iters=200).numpy()


def learn(lib: Any, query: str, registration: WorldRegistration | None, setup: PersonSetup, cost: str = "timedep",
          config: Any = None, run_dir: Any = None, keypoints: str = "extracted") -> tuple[Any, ObjectDemos]:
    """Person demos (``query``) → (trained run over the object keypoints, the demos as learned).
    ``keypoints="truth"``: from the sim's true object keypoints (the ceiling; privileged)."""
    from robot_irl.irl import LearnerConfig, fit_cost

    od = object_demos_from_library(lib, query, None if registration is None else registration.T_base_world,
                                   rows=setup.rows, keypoints=keypoints)
    dyn = held_dynamics(setup, od.spec)
    d = od.demos
    demos = DemoSet(d.keypoints, d.timestamps, q0=start_joints(dyn, d.keypoints[:, 0], setup.robot),
                    names=d.names, source=d.source)
    od.demos = demos
    cfg = config or LearnerConfig()
    trained = fit_cost(demos, dyn, cost, cfg, run_dir=run_dir, demo_info={"person": od.info()})
    return trained, od


def touch_registration(arm: Any, setup: PersonSetup, rng: np.random.Generator) -> WorldRegistration:
    """Touch the reference marker's four corners with the flange in teach mode (the sim's hand
    puts the arm there, with a person's millimetre of error) and fit the registration."""
    from sim.scene import marker_corners_local

    kp = setup.layout.world_keypoint()
    corners_world = marker_corners_local(kp)
    T = setup.layout.T_base_world
    targets = corners_world @ T[:3, :3].T + T[:3, 3]
    backend = arm.backend
    arm.teach(True)
    touched = []
    try:
        for c in targets:
            want = c + rng.normal(0.0, setup.touch_noise_m, 3)
            aim = want.copy()
            for _ in range(8):   # the hand corrects until the tip is on the corner (IK alone is mm off here)
                q = backend.robot.ik(aim, TOUCH_ORIENTATION)
                backend.world.reset_joints(backend.robot.body, backend.robot.joints, q)
                aim = aim + (want - backend.robot.ee_pose()[0])
            touched.append(backend.forward_kinematics(arm.get_observation().q))
    finally:
        arm.teach(False)
        backend.robot.reset(np.asarray(backend.default_home))
    return touch(corners_world, np.array(touched))


@dataclass
class GoalResult:
    record: CarryRecord
    path: np.ndarray               # [T, K, 3] object keypoints during the carry (model FK of measured joints)
    goal_centre: np.ndarray


def run_goal(trained: Any, od: ObjectDemos, setup: PersonSetup, registration: WorldRegistration,
             object_xy: np.ndarray, goal_xy: np.ndarray, *, yaw_deg: float = 0.0, frames: int = 3,
             config: CarryConfig | None = None) -> GoalResult:
    """One run in a fresh sim cell: the object at ``object_xy``, to be carried to ``goal_xy``."""
    from sim.cell import add_marked_object, add_table, add_world_marker
    from sim.person import REST_Z

    cfg = config or CarryConfig()
    arm = make_arm("pybullet", PyBulletConfig(robot=setup.robot), safety=SafetyConfig(), clock=FakeClock())
    names = [k.name for k in od.spec]
    spec = setup.layout.spec()
    with arm:
        w = arm.backend.world
        add_table(w)
        add_world_marker(w, setup.layout)
        body = add_marked_object(w, setup.layout, [object_xy[0], object_xy[1], REST_Z], yaw_deg=yaw_deg)  # truth: on the table
        arm.clock.sleep(0.3)
        arm.get_observation()

        def observe() -> np.ndarray:
            shots = []
            for _ in range(frames):
                shots.append(arm.render(setup.camera))
                arm.clock.sleep(1.0 / cfg.rate_hz)
                arm.get_observation()
            return observe_object(shots, np.arange(frames) / cfg.rate_hz, spec, setup.intrinsics, registration, names)

        goal_centre = np.array([goal_xy[0], goal_xy[1], od.rest_height])   # on the table, as the demos saw it
        judge = next((i for i, k in enumerate(od.spec) if k.feature is not None), 0)   # the marker's own point
        rec = carry(arm, trained, SimGripper(arm.backend, body), observe, goal_centre, lift_m=od.lift_m, config=cfg,
                    judge=judge, ik_seeds=od.demos.q0)
    path = rec.run.keypoints if rec.run is not None else np.zeros((0, len(names), 3))
    return GoalResult(rec, path, goal_centre)
