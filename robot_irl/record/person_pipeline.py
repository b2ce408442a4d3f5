"""The person-demo pipeline on the simulator, end to end: person demos rendered with no robot →
OpenCV extraction in the reference marker's world frame → world-to-base registration (touched
corners) → a cost over the object's keypoints learned with the held-object dynamics → the
PyBullet arm finds, grasps, carries and releases the object through the safety filter, judged on
the object's keypoints extracted from the run's own video.

Composes stages (record, keypoints, irl, control) for ``scripts/eval_person.py`` and the tests;
it is the sim stand-in for a real cell, where the same functions take a camera and a real arm.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.control import FakeClock, SafetyConfig, make_arm
from robot_irl.control.carry import PERSON_KEY, CarryConfig, CarryRecord, PersonRun
from robot_irl.control.pybullet_arm import PyBulletConfig
from robot_irl.control.registration import WorldRegistration, touch
from robot_irl.control.sim_cell import carry_in_cell
from robot_irl.irl.demos import DemoSet
from robot_irl.irl.object_demos import ObjectDemos, object_demos_from_library
from robot_irl.models.held import TopDownGrasp, grasp_for, held_dynamics, start_joints

ROBOT = "iiwa"
#: the flange pointing at the upright reference marker (its z axis along base +y) while touching it
TOUCH_ORIENTATION = np.array([-0.70710678, 0.0, 0.0, 0.70710678])


#: rad per joint per Gauss-Newton update of the held-object planner (the inner loop's trust region)
HELD_INNER_MAX_STEP = 0.3


def held_learner_config(config: Any = None) -> Any:
    """``config`` (a LearnerConfig; default when None) with the inner loop's trust region for the
    held-object model, unless it sets one. Why: the inner loop solves each plan row's joints by
    Gauss-Newton; near the iiwa's wrist limits, where top-down carries work, an unbounded step sent
    one row of a plan to another arm configuration (2 rad away, the object 25 cm off its path) and
    back in the next, and the run swung the object through the air before reaching the goal (report
    seed 100: 7 of 20 carries, path error 16-90 cm, all still succeeding). A trust region of 0.3 rad
    per update keeps rows on the branch they start on (those carries: 0.6-0.9 cm)."""
    from robot_irl.irl import LearnerConfig
    from robot_irl.irl.inner import InnerConfig

    cfg = config or LearnerConfig()
    if cfg.inner.method != "gn" or cfg.inner.max_step is not None:
        return cfg
    return dataclasses.replace(cfg, inner=InnerConfig(**{**cfg.inner.to_dict(), "max_step": HELD_INNER_MAX_STEP}))


@dataclass
class PersonSetup:
    """What learning and running share: the robot, its grasp, the cell."""

    robot: str = ROBOT
    grasp_depth: float | None = None  # object centre below the flange (default: the sim robot's grasp, iiwa 10 cm)
    rows: int = 10
    touch_noise_m: float = 0.001    # a person's touch is not exact
    limit_margin: float = 0.06      # rad inside the URDF limits the plans keep (the filter keeps 0.05)
    layout: Any = None              # sim.cell.CellLayout (default layout when None)
    camera: Any = None              # sim.camera.SceneCamera (the cell camera when None)

    def __post_init__(self) -> None:
        from sim.cell import CELL_CAMERA, CellLayout

        self.layout = self.layout or CellLayout()
        self.camera = self.camera or CELL_CAMERA
        if self.grasp_depth is None:
            self.grasp_depth = grasp_for(self.robot).depth


def person_demos(lib: Any, query: str, registration: WorldRegistration | None, setup: PersonSetup,
                 keypoints: str = "extracted", names: list[str] | None = None) -> tuple[DemoSet, Any, ObjectDemos, dict]:
    """Person demos (``query``) → (the carries as a DemoSet with start joints, the held-object
    dynamics, the demos as learned, the run's demo info: what ``robot-irl run`` needs to carry the
    object, see :class:`robot_irl.control.carry.PersonRun`). ``keypoints="truth"``: the sim's true
    object keypoints (the ceiling; privileged)."""
    od = object_demos_from_library(lib, query, None if registration is None else registration.T_base_world,
                                   rows=setup.rows, keypoints=keypoints, names=names)
    grasp = TopDownGrasp(setup.grasp_depth)
    dyn = held_dynamics(setup.robot, grasp, od.spec, setup.limit_margin)
    d = od.demos
    q0 = start_joints(dyn, d.keypoints[:, 0], setup.robot)
    od.demos = DemoSet(d.keypoints, d.timestamps, q0=q0, names=d.names, source=d.source)
    judge = next((i for i, k in enumerate(od.spec) if k.feature is not None), 0)   # the marker's own point
    person = PersonRun(setup.robot, setup.grasp_depth, od.lift_m, od.rest_height, list(od.spec.names),
                       od.cell_spec, q0, judge)
    info = {PERSON_KEY: {**od.info(), **person.to_dict(),
                         "registration": None if registration is None else registration.to_dict()}}
    return od.demos, dyn, od, info


def learn(lib: Any, query: str, registration: WorldRegistration | None, setup: PersonSetup, cost: str = "timedep",
          config: Any = None, run_dir: Any = None, keypoints: str = "extracted") -> tuple[Any, ObjectDemos]:
    """Person demos (``query``) → (trained run over the object keypoints, the demos as learned)."""
    from robot_irl.irl import fit_cost

    demos, dyn, od, info = person_demos(lib, query, registration, setup, keypoints)
    trained = fit_cost(demos, dyn, cost, held_learner_config(config), run_dir=run_dir, demo_info=info)
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


def run_goal(trained: Any, setup: PersonSetup, registration: WorldRegistration,
             object_xy: np.ndarray, goal_xy: np.ndarray, *, yaw_deg: float = 0.0, frames: int = 3,
             config: CarryConfig | None = None) -> GoalResult:
    """One run in a fresh sim cell: the object at ``object_xy``, to be carried to ``goal_xy``."""
    arm = make_arm("pybullet", PyBulletConfig(robot=setup.robot), safety=SafetyConfig(), clock=FakeClock())
    person = PersonRun.from_run(trained)
    with arm:
        rec = carry_in_cell(arm, trained, person, registration, object_xy, goal_xy, yaw_deg=yaw_deg, frames=frames,
                            config=config, camera=setup.camera, layout=setup.layout)
    path = rec.run.keypoints if rec.run is not None else np.zeros((0, len(person.names), 3))
    return GoalResult(rec, path, rec.goal[0])
