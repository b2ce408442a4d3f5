#!/usr/bin/env python
"""The shared real video through the person-demo steps as far as they go without a robot (issue 20).

``../shared/realvideo/apriltag_motor.mp4``: a hand turns a small motor whose face carries an
AprilTag (16h5 #23). There is no reference marker in it and no robot: 3D comes out in the camera
frame (intrinsics from the published calibration, made at 1280x720; the tag's printed size is
not known, 25 mm assumed as in notes/keypoints.md). Steps:

1. object track: the tag's centre and two of its corners (the corners carry the turn), extracted
   with OpenCV, cleaned, in the camera frame;
2. world to robot: there is no world marker, so the camera frame stands in for the world frame and
   is placed in front of the iiwa by a *typed, hypothetical* registration (camera x → base x,
   camera y (down) → base -z, camera z (forward) → base y, the track's start at (0.5, 0, 0.25));
   nothing measured, said as such;
3. learning: the whole clip is one demo (the hand never lets go), aligned by progress (path length
   of a corner: the hand turns in bursts), and a timedep cost is learned over the three points with
   the held-object dynamics (the points held at the iiwa's flange by a top-down grasp).

Prints what was learned: how well the learned cost reproduces the clip (path / final error), how
uneven the hand's speed was (what progress alignment removes), and per coordinate the fraction
of the remaining gap the cost closes in each third of the motion (the learned time profile).
Skips with a reason when the shared folder is absent. Last line: one JSON object.

Usage: nice -n 10 .venv/bin/python scripts/person_realvideo.py [--tag-size 0.025] [--iters 300] [--rows 10]
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "realvideo")
    ap.add_argument("--tag-size", type=float, default=0.025)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--rows", type=int, default=10)
    a = ap.parse_args()
    video, calib = a.shared / "apriltag_motor.mp4", a.shared / "apriltag_motor_calib.yml"
    if not video.is_file() or not calib.is_file():
        print(f"skipped: no shared real video at {video}")
        print(json.dumps({"skipped": True, "reason": f"{video} absent"}))
        return 0
    import torch

    from robot_irl.core.spec import KeypointSpec
    from robot_irl.irl import DemoSet, LearnerConfig, fit_cost
    from robot_irl.irl.object_demos import progress_resample
    from robot_irl.keypoints import clean, extract_video
    from robot_irl.keypoints.calibfile import load_intrinsics
    from robot_irl.library.decode import probe
    from robot_irl.models import KinematicDynamics
    from robot_irl.models.held import TopDownGrasp, held_frames
    from sim.bullet import Bullet
    from sim.robots import ROBOTS, make_robot

    tag = {"kind": "marker", "id": 23, "dictionary": "DICT_APRILTAG_16h5", "size": a.tag_size}
    spec = KeypointSpec.from_dict({"keypoints": [
        {"name": "tag", "body": "motor", "feature": tag},
        {"name": "tag_c0", "body": "motor", "feature": {**tag, "point": "corner0"}},
        {"name": "tag_c1", "body": "motor", "feature": {**tag, "point": "corner1"}}]})
    info = probe(video)
    cam, _ = load_intrinsics(calib, (info.width, info.height), (1280, 720))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        track = clean(extract_video(video, None, spec, cam, progress=False))
    x_cam = track.xyz                                    # [T, 3, 3] camera frame
    ok = np.isfinite(x_cam).all((1, 2))
    t, x_cam = track.timestamps[ok], x_cam[ok]
    speed = np.linalg.norm(np.diff(x_cam[:, 1], axis=0), axis=1) / np.diff(t)
    turn = np.degrees(np.arctan2(*(x_cam[:, 1] - x_cam[:, 0])[:, :2].T[::-1]))
    turn = np.unwrap(np.radians(turn))
    # step 2: the hypothetical typed placement of the camera frame in front of the robot
    R = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    x_base = x_cam @ R.T
    x_base = x_base - x_base[0, 0] + np.array([0.5, 0.0, 0.25])
    demo = progress_resample(x_base, a.rows, centre=1)
    # step 3: held-object dynamics (the three points at the flange, offsets as seen in the first frame)
    b = Bullet()
    try:
        r = make_robot("iiwa", b)
        urdf, ee, joints = r.urdf_path, r.ee_link_name, list(r.joint_names)
    finally:
        b.close()
    obj = {n: tuple(np.array([1.0, -1.0, -1.0]) * (x_base[0, k] - x_base[0, 0])) for k, n in enumerate(spec.names)}
    dyn = KinematicDynamics(urdf, held_frames(ee, TopDownGrasp(0.1), obj), joints=joints)
    with torch.no_grad():
        q0 = dyn.inverse_kinematics(dyn.as_tensor(demo[None, 0]), dyn.as_tensor(ROBOTS["iiwa"].rest_pose)[None],
                                    iters=300).numpy()
    start_fit_cm = float(np.abs(dyn.keypoints(dyn.as_tensor(q0))[0].numpy() - demo[0]).max() * 100)
    ds = DemoSet(demo[None], np.linspace(0, 1, a.rows), q0=q0, names=["apriltag_motor"], source=str(video))
    learned = fit_cost(ds, dyn, "timedep", LearnerConfig(outer_iters=a.iters))
    default = fit_cost(ds, dyn, "default", LearnerConfig(outer_iters=1))
    W = learned.cost.weights(a.rows - 1).detach().numpy()     # [H, 9] per row and coordinate
    thirds = np.array_split(np.arange(len(W)), 3)
    prof = {ax: [round(float(W[i][:, [d, 3 + d, 6 + d]].mean()), 3) for i in thirds] for d, ax in enumerate("xyz")}
    m, md = learned.evaluate(ds), default.evaluate(ds)
    out = {"frames_used": int(ok.sum()), "frames": len(track), "duration_s": float(t[-1] - t[0]),
           "depth_m_median": float(np.nanmedian(x_cam[:, 0, 2])),
           "tag_travel_cm": float(np.linalg.norm(np.diff(x_cam[:, 0], axis=0), axis=1).sum() * 100),
           "turn_deg": float(np.degrees(turn[-1] - turn[0])),
           "corner_speed_cv": float(np.std(speed) / max(np.mean(speed), 1e-9)),
           "ik_start_fit_cm": start_fit_cm,
           "learned_path_err_cm": m["path_err_cm"], "learned_final_err_cm": m["final_err_cm"],
           "default_path_err_cm": md["path_err_cm"], "weights_by_third": prof,
           "frame": "camera frame placed in front of the robot by a typed, hypothetical registration",
           "tag_size_m": a.tag_size}
    print(f"real clip: {out['frames_used']}/{out['frames']} frames with 3D (camera frame), {out['duration_s']:.1f} s, "
          f"depth {out['depth_m_median']:.2f} m; tag travelled {out['tag_travel_cm']:.1f} cm, turned "
          f"{out['turn_deg']:.0f} deg; corner speed varies by {out['corner_speed_cv']:.0%} (coefficient of variation)")
    print(f"learned timedep cost reproduces the clip to {m['path_err_cm']:.2f} cm (path), {m['final_err_cm']:.2f} cm "
          f"(end); the default cost's path is {md['path_err_cm']:.2f} cm off")
    for ax, v in prof.items():
        print(f"  weight on {ax} in the first / middle / last third of the motion: {v[0]:.3f} / {v[1]:.3f} / {v[2]:.3f}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
