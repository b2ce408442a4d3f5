"""franky-sim's MuJoCo FR3 with a clamp on joint 1: its range in the scene is narrowed to
±CLAMP rad around its start, so the arm cannot follow a target past it (a mechanical stop the
safety filter does not know about). Run as a script by tests/test_control_franka.py."""
from __future__ import annotations

import sys

import franky_sim
from franky_sim.mujoco_simulator import MujocoSimulator

CLAMP = 0.03

if __name__ == "__main__":
    with MujocoSimulator(enable_visualization=False) as sim:
        robot = sim.add_robot()
        joints = [j for j in sim.scene.iter("joint") if j.get("name", "").endswith("fr3_joint1")]
        if len(joints) != 1:
            sys.exit(f"expected one fr3_joint1 in the scene, found {len(joints)}")
        joints[0].set("range", f"{-CLAMP} {CLAMP}")
        joints[0].set("limited", "true")
        with franky_sim.SimulationServer(sim, hostname_candidates=["127.0.0.1"]) as server:
            print(f"Connect to the server using '{robot.hostname}' as the robot IP address", flush=True)
            server.run_forever()
