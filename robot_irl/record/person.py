"""Person demonstrations: an object moved by a person's hand, filmed with a reference marker in
view and no robot (``tag:person``, ``extra.demonstrator = "person"``).

What marks one: the tag :data:`PERSON_TAG` (so ``tag:person`` selects them in any query) and
``extra.demonstrator``; their keypoint spec holds a marker on body ``world`` (the reference that
fixes the world frame, issue 13) and the object's keypoints, none on the robot; they have no joint
log. ``record --source camera --person`` records a real one; :func:`record_person_sim` renders
them in the simulator (``sim.person``: an invisible hand, human-like path), with the truth
stored beside the video for scoring only (column ``object_world_truth``, never read by learning).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robot_irl.core.spec import WORLD_BODY, KeypointSpec, Marker
from robot_irl.errors import InputError
from robot_irl.irl.object_demos import TRUTH_COLUMN
from robot_irl.library import Column, Episode, Library

PERSON_TAG = "person"
PERSON_EXTRA = {"demonstrator": "person"}
CAMERA = "cam0"


def check_person_spec(spec: KeypointSpec | None, where: str) -> None:
    """A person demo's spec must name a reference marker on body ``world`` (else its 3D cannot be
    put in a world frame the robot can be registered to) and at least one object keypoint."""
    if spec is None:
        raise InputError("no keypoint spec", file=where, field="--keypoint-spec",
                         expected="a spec with a marker on body 'world' and the object's keypoints (demos/README.md)")
    if not any(k.body == WORLD_BODY and isinstance(k.feature, Marker) for k in spec):
        raise InputError(f"the keypoint spec has no reference marker (keypoints {spec.names})", file=where,
                         field="keypoint_spec", expected=f"a marker keypoint on body '{WORLD_BODY}' (the reference "
                         "that fixes the world frame); add it and set it with `robot-irl demos spec ID --set SPEC.json`")
    if not any(k.body not in (WORLD_BODY, "robot") for k in spec):
        raise InputError("the keypoint spec has no object keypoint", file=where, field="keypoint_spec",
                         expected="keypoints on the object's body (a marker or blob on it)")


def record_person_sim(lib: Library, *, episodes: int, seed: int, fps: float = 10.0, tags: list[str] | None = None,
                      progress: Callable[[Episode], None] | None = None, **render_opts: Any) -> list[Episode]:
    """Render ``episodes`` person demos (seeds ``seed, seed+1, ...``) into the library as camera
    recordings: intrinsics only (3D comes from the reference marker), no robot, no joint log."""
    from robot_irl.core.camera import CameraModel
    from sim.person import render_person_demo

    out = []
    for i in range(episodes):
        demo = render_person_demo(seed + i, fps=fps, **render_opts)
        spec = demo.layout.spec()
        model = demo.camera.model()
        intrinsics = CameraModel(K=model.K, size=model.size, name=CAMERA)
        names = tuple(k.name for k in demo.layout.object_keypoints())
        K = len(names)
        variant = {"start": [round(float(v), 4) for v in demo.start_xy], "goal": [round(float(v), 4) for v in demo.goal_xy]}
        with lib.writer(task="move the red cube to the goal", source="sim", fps=fps, env="person", seed=seed + i,
                        variant=variant, tags=sorted({PERSON_TAG, *(tags or [])}), keypoint_spec=spec,
                        extra={**PERSON_EXTRA, "renderer": "sim.person (invisible hand)",
                               "T_base_world_truth": demo.layout.T_base_world.tolist()}) as w:
            w.add_camera(CAMERA, model.size, codec="ffv1", model=intrinsics)
            w.add_stream("state", {TRUTH_COLUMN: Column((K, 3), "float64", "m", names)})
            for t, frame, truth in zip(demo.timestamps, demo.frames, demo.object_world):
                w.write_frame(CAMERA, frame, float(t))
                w.write_row("state", float(t), **{TRUTH_COLUMN: truth})
            ep = w.commit()
        out.append(ep)
        if progress:
            progress(ep)
    return out
