"""A simulated person for kinesthetic recording on the ``pybullet`` arm.

In simulation nobody can grab the arm, so this thread plays the person: while the arm is in teach
mode it moves the simulated joints along a smooth (minimum-jerk) path through waypoints, the way
a hand guides a freedrive arm, and the teach-mode damper keeps the arm wherever the hand leaves it.
It works in the backend's joint space and only on the ``pybullet`` backend (whose world lives in
this process); it takes the arm's lock for each move so it never races the arm's own stepping.
"""
from __future__ import annotations

import threading

import numpy as np
from sim.bullet import p

from robot_irl.errors import InputError


def min_jerk(a: np.ndarray, b: np.ndarray, s: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at phase ``s`` in [0, 1] of a minimum-jerk move a→b lasting ``seconds``."""
    s = min(max(s, 0.0), 1.0)
    pos = 10 * s**3 - 15 * s**4 + 6 * s**5
    vel = (30 * s**2 - 60 * s**3 + 30 * s**4) / seconds
    return a + pos * (b - a), vel * (b - a)


class SimulatedHand:
    """Guide a pybullet ``Arm`` through ``waypoints`` ``[W, n]`` (rad), ``segment_s`` seconds each,
    starting from where the arm is when :meth:`start` runs; then hold the last waypoint."""

    def __init__(self, arm, waypoints: np.ndarray, *, segment_s: float = 1.0, rate_hz: float = 240.0) -> None:
        from robot_irl.control.pybullet_arm import PyBulletBackend
        if not isinstance(arm.backend, PyBulletBackend):
            raise InputError(f"arm backend is {type(arm.backend).__name__}", field="--sim-hand",
                             expected="the pybullet arm (a real arm is moved by a real person)")
        self.arm, self.segment_s, self.period = arm, float(segment_s), 1.0 / rate_hz
        self.waypoints = np.asarray(waypoints, float)
        self.t0: float | None = None
        self.start_q: np.ndarray | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-hand", daemon=True)
        self.error: BaseException | None = None

    @classmethod
    def wander(cls, arm, *, segments: int = 3, amplitude: float = 0.35, seed: int = 0, **kw) -> "SimulatedHand":
        """Random waypoints within ``amplitude`` rad of the arm's home pose, inside its limits."""
        rng = np.random.default_rng(seed)
        lim = arm.capabilities.limits
        home = arm.home_pose
        pts = home + rng.uniform(-amplitude, amplitude, size=(segments, len(home)))
        return cls(arm, np.clip(pts, lim[:, 0] + 0.1, lim[:, 1] - 0.1), **kw)

    def path(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Where the hand has the joints ``t`` seconds after :meth:`start` (position, velocity)."""
        assert self.start_q is not None
        pts = np.vstack([self.start_q, self.waypoints])
        i = int(t // self.segment_s)
        if i >= len(pts) - 1:
            return pts[-1].copy(), np.zeros(pts.shape[1])
        return min_jerk(pts[i], pts[i + 1], (t - i * self.segment_s) / self.segment_s, self.segment_s)

    def start(self) -> "SimulatedHand":
        self.start_q = self.arm.get_observation().q
        self.t0 = self.arm.clock.now()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "SimulatedHand":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def done(self) -> bool:
        return self.t0 is not None and self.arm.clock.now() - self.t0 >= self.segment_s * len(self.waypoints)

    def _run(self) -> None:
        backend = self.arm.backend
        try:
            while not self._stop.wait(self.period):
                with self.arm._lock:          # the Arm's own lock: no stepping while the hand moves
                    if not self.arm.teaching or backend.robot is None:
                        continue
                    backend.read()            # physics catches up to now before the hand moves
                    q, dq = self.path(self.arm.clock.now() - self.t0)
                    robot = backend.robot
                    for j, qj, vj in zip(robot.joints, q, dq):
                        p.resetJointState(robot.body, j, float(qj), float(vj), physicsClientId=robot.bullet.client)
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.error = e
