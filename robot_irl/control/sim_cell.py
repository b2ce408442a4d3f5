"""A person run on the PyBullet arm: the cell (table, reference marker, the marked object) put into
the arm's world, the cell camera as the run's eyes, and the carry of :mod:`robot_irl.control.carry`.

Why a module of its own: ``robot-irl run`` (a person run on ``--arm pybullet``) and the person eval
(:mod:`robot_irl.record.person_pipeline`) run the same carry in the same simulated cell; a physical
cell has a real camera and object instead, and would call :func:`robot_irl.control.carry.carry`
with its own ``observe``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robot_irl.control.carry import CarryConfig, CarryRecord, PersonRun, SimGripper, carry, observe_object
from robot_irl.control.registration import WorldRegistration
from robot_irl.core.camera import CameraModel
from robot_irl.errors import InputError


def place_object(arm: Any, object_xy: np.ndarray, *, yaw_deg: float = 0.0, layout: Any = None) -> int:
    """Table, reference marker and the marked cube (resting at ``object_xy``, base frame) into a
    PyBullet arm's world; the cube's body id."""
    from sim.cell import CellLayout, add_marked_object, add_table, add_world_marker
    from sim.person import REST_Z

    w = getattr(getattr(arm, "backend", None), "world", None)
    if w is None:
        raise InputError("this arm has no simulated world to put the object in", field="--arm",
                         expected="--arm pybullet (a physical cell has its own object and camera)")
    layout = layout or CellLayout()
    add_table(w)
    add_world_marker(w, layout)
    body = add_marked_object(w, layout, [float(object_xy[0]), float(object_xy[1]), REST_Z], yaw_deg=yaw_deg)
    arm.clock.sleep(0.3)
    arm.get_observation()
    return body


def camera_observer(arm: Any, person: PersonRun, registration: WorldRegistration | None, *, camera: Any = None,
                    frames: int = 3, rate_hz: float = 10.0) -> Callable[[], np.ndarray]:
    """``observe()``: a short still clip from the sim cell camera → the object's keypoints (base
    frame) by the demos' own extraction (their spec, world frame, the registration)."""
    from sim.cell import CELL_CAMERA

    cam = camera or CELL_CAMERA
    m = cam.model()
    intrinsics = CameraModel(K=m.K, size=m.size, name=cam.name)

    def observe() -> np.ndarray:
        shots = []
        for _ in range(frames):
            shots.append(arm.render(cam))
            arm.clock.sleep(1.0 / rate_hz)
            arm.get_observation()
        return observe_object(shots, np.arange(frames) / rate_hz, person.cell_spec, intrinsics, registration,
                              person.names)
    return observe


def carry_in_cell(arm: Any, trained: Any, person: PersonRun, registration: WorldRegistration | None,
                  object_xy: np.ndarray, goal_xy: np.ndarray, *, yaw_deg: float = 0.0, frames: int = 3,
                  config: CarryConfig | None = None, camera: Any = None, layout: Any = None) -> CarryRecord:
    """The object put at ``object_xy`` in the arm's (simulated) world, then found, grasped, carried
    under ``trained`` to rest at ``goal_xy`` (its centre at the demos' rest height, base frame),
    released and judged by the camera."""
    cfg = config or CarryConfig()
    body = place_object(arm, object_xy, yaw_deg=yaw_deg, layout=layout)
    observe = camera_observer(arm, person, registration, camera=camera, frames=frames, rate_hz=cfg.rate_hz)
    goal_centre = np.array([goal_xy[0], goal_xy[1], person.rest_height_m])   # on the table, as the demos saw it
    return carry(arm, trained, SimGripper(arm.backend, body), observe, goal_centre, lift_m=person.lift_m, config=cfg,
                 judge=person.judge, ik_seeds=person.ik_seeds)
