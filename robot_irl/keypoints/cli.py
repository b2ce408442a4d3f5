"""`robot-irl calibrate` and `robot-irl extract`: thin wrappers over robot_irl.keypoints."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from robot_irl.core.camera import CameraModel
from robot_irl.core.cluster import add_ray_option
from robot_irl.core.io import atomic_write_json
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError
from robot_irl.keypoints.calibrate import BoardSpec, calibrate_charuco
from robot_irl.keypoints.filtering import clean
from robot_irl.keypoints.pipeline import MODES, ExtractConfig, extract_video, table_heights
from robot_irl.keypoints.video import file_timestamps

VIDEO_SUFFIXES = {".mkv", ".mp4", ".avi", ".mov", ".webm", ".m4v"}


def register(subparsers: argparse._SubParsersAction) -> None:
    c = subparsers.add_parser(
        "calibrate", help="camera intrinsics from a ChArUco video and/or camera-to-base from an arm marker",
        description="VIDEO: detect a ChArUco board and calibrate K, dist (RMS reprojection error in px). "
                    "--hand-eye: solve T_base_cam from episodes where a marker on the arm is seen over ~20 "
                    "poses, with forward kinematics of the recorded joint positions (URDF). Results go to "
                    "-o JSON and, with --episode, into the episodes' camera meta.")
    c.add_argument("video", nargs="?", help="video file showing the board from varied angles (intrinsics)")
    c.add_argument("-o", "--out", help="output JSON (default camera.json when no --episode is given)")
    c.add_argument("--episode", action="append", metavar="ID|QUERY",
                   help="store the result in the camera meta of this episode (an id, or a query selecting "
                        "several; repeatable); --hand-eye uses their video and joint positions")
    c.add_argument("--library", default=None, help="library path (else $ROBOT_IRL_LIBRARY, else per-user default)")
    c.add_argument("--camera", default="cam0", help="episode camera name (default cam0)")
    c.add_argument("--hand-eye", action="store_true",
                   help="camera-to-base (T_base_cam) from the --episode videos: marker on the arm + forward kinematics")
    c.add_argument("--urdf", help="robot URDF for --hand-eye (default: the recorded robot's, for sim robots)")
    c.add_argument("--marker-keypoint", action="append", metavar="NAME",
                   help="marker keypoint(s) on the arm to use (default: every marker on the robot)")
    c.add_argument("--corner-fit", default="template", choices=["template", "edges", "none"],
                   help="marker corner refinement for --hand-eye (edges for real cameras)")
    c.add_argument("--min-poses", type=int, default=10, help="fewest distinct arm poses --hand-eye accepts")
    c.add_argument("--board", default="7x5", help="squares across x down (default 7x5)")
    c.add_argument("--square", type=float, default=0.03, help="square side in metres (default 0.03)")
    c.add_argument("--marker", type=float, default=0.022, help="marker side in metres (default 0.022)")
    c.add_argument("--dict", default="DICT_4X4_50", help="ArUco dictionary (default DICT_4X4_50)")
    c.add_argument("--step", type=int, default=1, help="use every N-th frame (default 1)")
    c.add_argument("--name", default="cam0", help="camera name stored in the JSON")
    c.set_defaults(func=run_calibrate)

    e = subparsers.add_parser("extract", help="keypoint trajectories from video (library episodes or a video file)",
                              description="Detect, track and lift the keypoint spec's features to 3D. TARGET is a "
                                          "video file (writes .npz or .parquet), a library folder (all episodes), "
                                          "or an episode id / query in --library (writes derived data 'keypoints').")
    e.add_argument("target", help="video file, library folder, or episode id / query")
    e.add_argument("--library", default=None, help="library path (else $ROBOT_IRL_LIBRARY, else per-user default)")
    e.add_argument("--detector", choices=(*MODES, "learned"), default="auto",
                   help="auto: per keypoint from the spec + flow bridging; aruco/blob: that detector only; "
                        "flow: detect every --redetect-every frames, optical flow between; learned: a detector "
                        "from `robot-irl keypoints train` (--model), no markers needed")
    e.add_argument("--model", metavar="DIR", help="--detector learned: the model folder `robot-irl keypoints train` "
                                                  "wrote (--table-z lifts its keypoints to 3D on that plane)")
    e.add_argument("--drop-flagged", action="store_true",
                   help="--detector learned: leave out the keypoints `robot-irl keypoints report` flagged as following nothing")
    e.add_argument("--camera", default="cam0", help="episode camera name (default cam0)")
    e.add_argument("--second-camera", metavar="NAME",
                   help="episode camera to combine with --camera: triangulates keypoints without markers")
    e.add_argument("--second-video", help="a second, synchronised video of the scene (with a video file target)")
    e.add_argument("--second-camera-file", help="camera JSON of --second-video (K, dist, size, T_base_cam)")
    e.add_argument("--second-timestamps", help=".npy timestamps of --second-video (default: --timestamps / --fps)")
    e.add_argument("--spec", help="keypoint spec JSON (needed for a video file; for episodes it replaces their own "
                   "for this extraction and is kept in the result; `demos spec --set` stores one)")
    e.add_argument("--camera-file", help="camera JSON (CameraModel: K, dist, size, T_base_cam) for a video file")
    e.add_argument("--fps", type=float, help="frame rate when the video file has none")
    e.add_argument("--timestamps", help=".npy with one timestamp (s) per frame for a video file")
    e.add_argument("--out", help="output for a video file: .npz (default <video>.keypoints.npz) or .parquet")
    e.add_argument("--preview", help="write an overlay MP4 of the saved keypoints with their status (one episode "
                                     "or video)")
    e.add_argument("--refine", default="none", choices=["subpix", "apriltag", "none", "contour"],
                   help="OpenCV corner refinement before --corner-fit (default none)")
    e.add_argument("--corner-fit", default="template", choices=["template", "edges", "none"],
                   help="marker corners: align the whole pattern (default), fit border lines, or keep OpenCV's")
    e.add_argument("--max-gap", type=int, default=10,
                   help="longest gap (frames) cleaning may fill (only where the motion model predicts it within 3 px)")
    e.add_argument("--no-clean", action="store_true", help="store the raw extraction only")
    e.add_argument("--calib", metavar="F", help="video file: intrinsics from an OpenCV FileStorage YAML/XML/JSON "
                                                "(K, D); 3D comes out in the camera frame")
    e.add_argument("--calib-size", metavar="WxH", help="the image size --calib was made at, when the file does "
                                                       "not say (K is scaled to the video's size)")
    e.add_argument("--world-board", metavar="COLSxROWS:SQUARE:MARKER[:DICT]",
                   help="a ChArUco board lying still in view gives the world frame (a camera without a robot "
                        "pose; 3D in the board's frame), e.g. 7x5:0.03:0.022:DICT_4X4_50 (metres)")
    e.add_argument("--fov", type=float, metavar="DEG",
                   help="video file without a calibration: approximate intrinsics from this horizontal field of "
                        "view (degrees; centred principal point, no distortion; written into the output's meta)")
    e.add_argument("--flow-max-gap", type=int, default=15, help="frames flow may carry a marker past detections")
    e.add_argument("--fb-max", type=float, default=0.7, help="flow forward-backward limit (px) per step")
    e.add_argument("--redetect-every", type=int, default=10, help="--detector flow: run the detectors every N frames")
    e.add_argument("--redetect-scale", type=float, default=2.0,
                   help="auto: search a missed marker again around where flow carries it, upscaled (1: off)")
    e.add_argument("--table-z", type=float, help="table height (base frame, m): blobs on objects lie on it")
    e.add_argument("--no-3d", action="store_true", help="pixels only (no camera needed)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--resume", action="store_true",
                   help="library episodes: skip those that already hold keypoints (an interrupted run goes on "
                        "where it stopped; without it every selected episode is extracted again)")
    add_ray_option(e)
    e.set_defaults(func=run_extract)


def _episodes(args: argparse.Namespace) -> list:
    if not args.episode:
        return []
    from robot_irl.library import Library
    lib = Library.open(args.library)
    out, seen = [], set()
    for q in args.episode or []:
        eps = [lib.episode(q)] if q in lib.ids() else lib.select(q)
        if not eps:
            raise InputError(f"no episode matches {q!r}", file=lib.path, field="--episode",
                             expected="an episode id or a query that selects episodes")
        out += [e for e in eps if e.id not in seen]
        seen.update(e.id for e in eps)
    return out


def run_calibrate(args: argparse.Namespace) -> int:
    if not args.video and not args.hand_eye:
        raise InputError("nothing to calibrate", field="video", expected="a ChArUco board video and/or --hand-eye")
    episodes = _episodes(args)
    if args.hand_eye and not episodes:
        raise InputError("--hand-eye needs episodes", field="--episode",
                         expected="--episode ID|QUERY: recordings where the arm's marker is seen in ~20 poses")
    intrinsics, record = None, {}
    if args.video:
        try:
            sx, sy = (int(v) for v in args.board.lower().split("x"))
        except ValueError:
            raise InputError(f"--board {args.board!r}", field="board", expected="COLSxROWS, e.g. 7x5") from None
        cal = calibrate_charuco(args.video, BoardSpec(sx, sy, args.square, args.marker, args.dict), step=args.step,
                                name=args.name if not episodes else args.camera)
        intrinsics = cal.camera
        record = {"method": "charuco", "source": str(args.video), "rms_px": cal.rms, "views": cal.views,
                  "frames": cal.frames, "views_rejected": cal.views_rejected, "coverage": cal.coverage,
                  "max_tilt_deg": cal.max_tilt_deg, "board": args.board, "square": args.square, "marker": args.marker,
                  "dictionary": args.dict}
        print(f"calibrated from {cal.views} of {cal.frames} frames: RMS {cal.rms:.3f} px, "
              f"fx {cal.camera.K[0, 0]:.2f} fy {cal.camera.K[1, 1]:.2f} cx {cal.camera.K[0, 2]:.2f} "
              f"cy {cal.camera.K[1, 2]:.2f}")
        print(f"views: {cal.views_rejected} dropped as outliers (blur, skew), image coverage {cal.coverage:.0%}, "
              f"largest board tilt {cal.max_tilt_deg:.0f} deg")
        for line in cal.advice():
            print(f"warning: {line}", file=sys.stderr)
    extrinsics = None
    if args.hand_eye:
        from robot_irl.keypoints.handeye import hand_eye_episodes
        he = hand_eye_episodes(episodes, args.camera, urdf=args.urdf, markers=args.marker_keypoint,
                               intrinsics=intrinsics, corner_fit=args.corner_fit, min_poses=args.min_poses)
        extrinsics = he.record(", ".join(e.id for e in episodes))
        t = he.camera.T_base_cam[:3, 3]
        print(f"T_base_cam from {he.frames} frames ({he.distinct_poses} distinct arm poses, markers "
              f"{', '.join(he.markers)}): RMS {he.rms_px:.3f} px, camera at ({t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}) m")
        result = he.camera
    else:
        result = intrinsics
    for ep in episodes:
        old, cal_old = ep.camera_model(args.camera), ep.calibration(args.camera) or {}
        model = result
        if extrinsics is None:  # intrinsics only: the camera stays where the episode says it is
            T = old.T_base_cam if old is not None else np.eye(4)
            model = CameraModel(K=result.K, size=result.size, T_base_cam=T, dist=result.dist, name=args.camera)
            entry = {**record, "T_base_cam_known": old is not None and "extrinsics" in cal_old}
            if "extrinsics" in cal_old:
                entry["extrinsics"] = cal_old["extrinsics"]
        else:
            base = record if record else {k: v for k, v in cal_old.items() if k not in ("updated", "extrinsics")}
            entry = {**base, "extrinsics": extrinsics, "T_base_cam_known": True}
        ep.update_camera_model(args.camera, model, calibration=entry)
        print(f"stored in episode {ep.id} camera {args.camera}")
    out = args.out or (None if episodes else "camera.json")
    if out:
        data = result.to_dict()
        data.update({k: record.get(k) for k in ("rms_px", "views", "frames", "views_rejected", "coverage",
                                                 "max_tilt_deg")})
        data["T_base_cam_known"] = extrinsics is not None
        if extrinsics is not None:
            data["extrinsics"] = extrinsics
        atomic_write_json(out, data)
        print(f"-> {out}")
    if extrinsics is None:
        print("T_base_cam is not known from intrinsics: run `robot-irl calibrate --hand-eye --episode ID` "
              "on a recording of the arm's marker before asking for 3D.")
    return 0


def _config(args: argparse.Namespace, spec: KeypointSpec) -> ExtractConfig:
    from robot_irl.keypoints.worldboard import parse_board
    return ExtractConfig(detector=args.detector, refine=args.refine, corner_fit=args.corner_fit,
                         flow_max_gap=args.flow_max_gap, fb_max=args.fb_max, redetect_every=args.redetect_every,
                         redetect_scale=args.redetect_scale, want_3d=False if args.no_3d else None,
                         plane_heights=table_heights(spec, args.table_z) if args.table_z is not None else {},
                         world_board=parse_board(args.world_board) if args.world_board else None)


def _summary(name: str, track) -> str:
    parts = [f"{n}: " + " ".join(f"{s}={c}" for s, c in counts.items() if c) for n, counts in track.counts().items()]
    return f"{name}: {len(track)} frames; " + "; ".join(parts)


# Options that only mean something for one kind of target; given for the other, they are named.
_FILE_ONLY = ("camera_file", "fps", "timestamps", "out", "second_video", "second_camera_file",
              "second_timestamps", "calib", "calib_size", "fov")
_LIBRARY_ONLY = ("second_camera", "ray")
# Options of the marker path that the learned detector (one camera, plane lifting) does not take.
_NOT_LEARNED = ("ray", "preview", "second_camera", "second_video", "world_board", "calib", "calib_size", "fov")


def _note_ignored(args: argparse.Namespace, names: tuple[str, ...], target: str) -> None:
    given = [n for n in names if getattr(args, n) is not None]
    if given:
        opts = ", ".join("--" + n.replace("_", "-") for n in given)
        print(f"note: {opts} {'does' if len(given) == 1 else 'do'} nothing for {target}; ignored", file=sys.stderr)


def _preview_path(preview: str | None, ep_id: str, several: bool) -> str | None:
    """One episode: the --preview path itself; several: one file each, ``<stem>_<id><suffix>``."""
    if preview is None or not several:
        return preview
    p = Path(preview)
    return str(p.with_name(f"{p.stem}_{ep_id}{p.suffix or '.mp4'}"))


def _episode_error(error: Exception, camera: str) -> Exception:
    """Errors from frames read out of an episode name its camera video, not the frame source
    ``<frames>`` (the batch report puts the episode id in front)."""
    if isinstance(error, InputError) and "<frames>" in str(error):
        return InputError(str(error).replace("<frames>", f"camera {camera} video"))
    return error


def extract_task(episode_path: str, args: argparse.Namespace, override: KeypointSpec | None, preview: str | None,
                 progress: bool) -> tuple:
    """One episode's extraction, storing nothing: ``(raw, cleaned, warnings)``. The serial loop
    and Ray workers both run it (a worker opens the episode by its path on the shared library)."""
    from robot_irl.keypoints.episodes import extract_tracks
    from robot_irl.library import Episode
    ep = Episode(episode_path)
    spec = override or ep.keypoint_spec
    cfg = _config(args, spec) if spec is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw, cleaned = extract_tracks(ep, args.camera, cfg, clean=not args.no_clean, max_gap=args.max_gap,
                                          preview=preview, progress=progress, second_camera=args.second_camera,
                                          spec=override)
        except Exception as e:
            raise _episode_error(e, args.camera) from e
    return raw, cleaned, [str(w.message) for w in caught]


def run_extract(args: argparse.Namespace) -> int:
    if args.detector == "learned" or args.model:
        from robot_irl.keypoints.learned.cli import run_extract_learned
        _note_ignored(args, _NOT_LEARNED, "--detector learned")
        if args.resume:
            print("note: --resume does nothing for --detector learned; ignored", file=sys.stderr)
        return run_extract_learned(args)
    target = Path(args.target)
    if target.is_file() and target.suffix.lower() in VIDEO_SUFFIXES:
        _note_ignored(args, _LIBRARY_ONLY, "a video file")
        return _extract_file(args, target)
    from robot_irl.core.batch import BatchReport
    from robot_irl.keypoints.episodes import DERIVED_NAME, store
    from robot_irl.library import Library
    if target.is_dir():
        lib, query = Library.open(target), None
    else:
        lib = Library.open(args.library)
        query = args.target
    episodes = [lib.episode(query)] if query and query in lib.ids() else lib.select(query)
    if not episodes:
        raise InputError(f"no episode matches {args.target!r}", file=lib.path, field="target",
                         expected="a video file, a library folder, an episode id or a query that selects episodes")
    _note_ignored(args, _FILE_ONLY, "library episodes (they carry their camera and timestamps)")
    override = KeypointSpec.from_dict(_read_json(args.spec), file=args.spec) if args.spec else None
    several = len(episodes) > 1
    if args.preview and several:
        print(f"{len(episodes)} episodes: one preview each, named {_preview_path(args.preview, '<id>', True)}",
              file=sys.stderr)
    if args.resume:
        held = [ep for ep in episodes if DERIVED_NAME in ep.derived()]
        if held:
            print(f"--resume: {len(held)} of {len(episodes)} episode(s) already hold keypoints; skipped",
                  file=sys.stderr)
        episodes = [ep for ep in episodes if DERIVED_NAME not in ep.derived()]
    previews = {ep.id: _preview_path(args.preview, ep.id, several) for ep in episodes}
    by_id = {ep.id: ep for ep in episodes}

    def commit(ep_id: str, result: tuple) -> None:
        """The driver stores each result: it is the library's only writer."""
        raw, cleaned, caught = result
        ep = by_id[ep_id]
        store(ep, raw, cleaned, args.camera)
        track, preview = (cleaned if cleaned is not None else raw), previews[ep_id]
        print(_summary(ep.id, track) + (f" (preview {preview})" if preview else ""))
        for message in caught:   # one line naming the episode, not a source line of the library
            print(f"warning: {ep.id}: {message.replace('<frames>: ', '')}", file=sys.stderr)

    if args.ray:
        from robot_irl.core.cluster import RayCluster
        with RayCluster.start(args.ray) as cluster:
            report = cluster.map(extract_task, episodes, key=lambda ep: ep.id, verb="extracted", unit="ep",
                                 args=lambda ep: (str(ep.path), args, override, previews[ep.id], False),
                                 commit=commit, progress=not args.quiet)
    else:
        report = BatchReport("extracted")
        for ep in episodes:
            with report.item(ep.id):
                commit(ep.id, extract_task(str(ep.path), args, override, previews[ep.id], not args.quiet))
    if several or report.failed:
        print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return report.exit_code


def _camera_file(path: str | None, no_3d: bool) -> CameraModel | None:
    if not path:
        return None
    data = _read_json(path)
    camera = CameraModel.from_dict(data, file=path)
    if ("T_base_cam" not in data or data.get("T_base_cam_known") is False) and not no_3d:
        raise InputError("camera has intrinsics only, no T_base_cam", file=path, field="T_base_cam",
                         expected="the camera pose in the robot base frame (calibrate --hand-eye), or --no-3d")
    return camera


def _calib_file(args: argparse.Namespace, video: Path) -> tuple[CameraModel | None, dict]:
    """Intrinsics for a video file from someone's calibration file, scaled to the video's size, or
    approximate ones from a field of view (``--fov``)."""
    from robot_irl.keypoints.calibfile import approximate_intrinsics, load_intrinsics
    from robot_irl.library.decode import probe
    given = [f for f, v in (("--calib", args.calib), ("--fov", args.fov), ("--camera-file", args.camera_file))
             if v is not None]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)} given", field=given[0], expected="one camera source")
    if args.fov is not None:
        info = probe(video)
        camera, record = approximate_intrinsics((info.width, info.height), args.fov)
        return (None if args.no_3d else camera), record
    size = None
    if args.calib_size:
        try:
            w, h = (int(x) for x in args.calib_size.lower().split("x"))
        except ValueError:
            raise InputError(f"--calib-size {args.calib_size!r}", field="--calib-size",
                             expected="WIDTHxHEIGHT in pixels, e.g. 1280x720") from None
        size = (w, h)
    info = probe(video)
    camera, record = load_intrinsics(args.calib, (info.width, info.height), size)
    return (None if args.no_3d else camera), record


def _extract_file(args: argparse.Namespace, video: Path) -> int:
    if not args.spec:
        raise InputError("a video file needs --spec", field="--spec", expected="a keypoint spec JSON")
    spec = KeypointSpec.from_dict(_read_json(args.spec), file=args.spec)
    if args.calib_size and not args.calib:
        raise InputError("--calib-size without --calib", field="--calib-size",
                         expected="--calib F with it (the size F was made at)")
    camera, calib = (_calib_file(args, video) if args.calib or args.fov is not None
                     else (_camera_file(args.camera_file, args.no_3d), None))
    timestamps = file_timestamps(video, args.timestamps, args.fps)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        if args.second_video:
            if camera is None or not args.second_camera_file:
                raise InputError("two videos need both cameras' models", field="--camera-file/--second-camera-file",
                                 expected="camera JSONs with K, dist and T_base_cam for both videos")
            from robot_irl.keypoints.multiview import extract_two_cameras
            second = Path(args.second_video)
            track = extract_two_cameras(video, timestamps, camera, second,
                                        file_timestamps(second, args.second_timestamps or args.timestamps, args.fps),
                                        _camera_file(args.second_camera_file, False), spec,
                                        config=_config(args, spec), preview=args.preview, progress=not args.quiet)
        else:
            track = extract_video(video, timestamps, spec, camera, config=_config(args, spec),
                                  progress=not args.quiet)
    if not args.no_clean:
        track = clean(track, max_gap=args.max_gap)
    if calib is not None:
        track.meta["calibration"] = calib
        if not str(track.meta.get("xyz_frame", "")).startswith("world"):
            track.meta["xyz_frame"] = "camera (intrinsics only, no world frame), metres" + (
                " (approximate intrinsics from --fov)" if calib.get("approximate") else "")
    if args.preview and not args.second_video:   # what is saved, after cleaning
        from robot_irl.keypoints.video import write_track_preview
        write_track_preview(video, track, args.preview)
    out = Path(args.out) if args.out else video.with_suffix(".keypoints.npz")
    track.save_parquet(out) if out.suffix == ".parquet" else track.save_npz(out)
    print(_summary(str(video), track) + f" -> {out}")
    if track.meta.get("missing_all"):
        print(f"never seen: {', '.join(track.meta['missing_all'])}")
    return 0


def _read_json(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError("file not found", file=path, field="path", expected="an existing JSON file") from None
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e})", file=path, field="json", expected="a JSON object") from None
