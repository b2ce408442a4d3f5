"""`robot-irl keypoints train|report`: a keypoint detector learned from the library's own video
(no markers), and what each of its keypoints follows. `robot-irl extract --detector learned
--model DIR` (robot_irl/keypoints/cli.py) applies it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_irl.cliargs import add_library_arg, format_table
from robot_irl.errors import InputError

TRUTH_COLUMN = "keypoints_2d_{camera}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keypoints", help="train a keypoint detector on library video without markers; report on it",
                       description="Self-supervised keypoints (Transporter-style): K heat-map centres learned by "
                                   "rebuilding one frame from another of the same episode. Apply with "
                                   "`robot-irl extract --detector learned --model DIR`.")
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = s.add_parser("train", help="train a detector on the frames of library episodes",
                     description="Writes a model folder: config.json, detector.pt, metrics.json, tb/ (loss, "
                                 "frames with keypoints drawn), plots/loss.png.")
    t.add_argument("--demos", required=True, metavar="QUERY", help="episodes whose frames train it (query syntax)")
    t.add_argument("--out", required=True, help="model folder to write")
    t.add_argument("--k", type=int, default=8, help="number of keypoints (default 8)")
    t.add_argument("--size", type=int, default=64, help="input width in pixels (default 64; larger on a GPU)")
    t.add_argument("--context", type=int, default=0, metavar="N",
                   help="dilated blocks widening what each heat-map cell sees (0: 19 input px; 1: 35; 2: 67; 3: 131; "
                        "4: 259). For a part told from look-alikes only by its surroundings (real footage of a "
                        "turning part: 3). Default 0")
    t.add_argument("--sigma", type=float, default=0.06,
                   help="std of the Gaussian window each keypoint carries, as a fraction of the input width "
                        "(default 0.06). Smaller windows cannot tile a part that turns in place, so the keypoints "
                        "must follow its features (real footage of a turning part: 0.03)")
    t.add_argument("--members", type=int, default=1, metavar="N",
                   help="train N detectors one after the other (seeds --seed, --seed + 1, ...) and put out their "
                        "keypoints side by side, K x N in all: each settles on its own pieces of a part with "
                        "look-alikes, and a read-out of both is finer (real footage of a turning part: 2). "
                        "N times the training time. Default 1")
    t.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
    t.add_argument("--batch", type=int, default=16, help="pairs per step (default 16)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--camera", default="cam0", help="episode camera (default cam0)")
    t.add_argument("--crop", metavar="auto|X,Y,W,H",
                   help="cut every frame to this box first (pixels); 'auto': the box round what moves over the "
                        "selected frames. Spends the input size on the task instead of a still background; "
                        "keypoints are still reported in whole-frame pixels")
    add_library_arg(t)
    t.add_argument("--force", action="store_true", help="replace an existing model folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the metrics as JSON")
    t.set_defaults(func=run_train)
    r = s.add_parser("report", help="what each learned keypoint follows, how stable it is; a picture",
                     description="Per keypoint: best correlation with the episodes' tracked points where they "
                                 "have ground truth (sim episodes), motion, jitter, confidence and a verdict; "
                                 "writes report.json and keypoints.png into the model folder (or --out).")
    r.add_argument("--model", required=True, help="model folder from `keypoints train`")
    r.add_argument("--demos", required=True, metavar="QUERY", help="episodes to judge it on")
    r.add_argument("--camera", default="cam0")
    add_library_arg(r)
    r.add_argument("--out", help="folder for report.json and keypoints.png (default: the model folder)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_report)


def _select(library: str | None, query: str) -> tuple[object, list]:
    from robot_irl.library import Library
    lib = Library.open(library)
    eps = [lib.episode(query)] if query in lib.ids() else lib.select(query)
    if not eps:
        raise InputError(f"no episode matches {query!r}", file=lib.path, field="--demos",
                         expected="a query that selects episodes with video")
    return lib, eps


def run_train(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise InputError(f"--k {args.k}", field="--k", expected="an integer >= 1")
    if args.size < 16 or args.size % 4:
        raise InputError(f"--size {args.size}", field="--size", expected="a multiple of 4, at least 16")
    from robot_irl.runs import RunDir
    RunDir.claim(args.out, force=args.force)
    lib, eps = _select(args.library, args.demos)
    from robot_irl.keypoints.learned.frames import library_frames
    from robot_irl.keypoints.learned.train import TrainConfig, train_detector
    frames = library_frames(eps, args.size, args.camera, origin=f"--demos {args.demos!r}", crop=args.crop)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed)
    run = train_detector(frames, args.out, k=args.k, context=args.context, sigma=args.sigma, members=args.members,
                         config=cfg, force=args.force, progress=not args.quiet,
                         provenance={"demos": args.demos, "library": str(lib.path), "camera": args.camera})
    m = run.metrics()
    if args.json:
        print(json.dumps(m))
    else:
        crop = "-" if frames.crop is None else ",".join(str(v) for v in frames.crop.to_list())
        print(format_table(["model", "frames", "episodes", "crop", "steps", "loss first", "loss final", "minutes"],
                           [[str(run.path), m["frames"], len(eps), crop, m["steps"], m["loss_first"], m["loss_final"],
                             m["train_minutes"]]]))
    return 0


def run_report(args: argparse.Namespace) -> int:
    import numpy as np

    from robot_irl.core.io import atomic_write_json
    from robot_irl.keypoints.learned.detector import LearnedDetector
    from robot_irl.keypoints.learned.probe import keypoint_report
    from robot_irl.keypoints.learned.train import draw_keypoints
    det = LearnedDetector.load(args.model)
    _, eps = _select(args.library, args.demos)
    uv, conf, truth, truth_names = [], [], [], None
    for ep in eps:
        d = det.detect(ep.video_frames(args.camera), origin=ep.id)
        uv.append(d.uv)
        conf.append(d.peak)
        col = TRUTH_COLUMN.format(camera=args.camera)
        if col in ep.columns("state") and ep.frame_count(args.camera) == len(d.uv):
            truth.append(ep.arrays("state")[col])
            truth_names = list(ep.columns("state")[col].names)
    has_truth = len(truth) == len(eps)
    verdicts = keypoint_report(uv, conf, det.source_size[0], det.names, truth if has_truth else None, truth_names)
    out = Path(args.out) if args.out else det.path
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(eps[0].video_frames(args.camera)))
    import cv2
    pic = draw_keypoints(first[None], uv[0][:1], scale=2)[0]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
    from robot_irl.core.io import atomic_write_bytes
    atomic_write_bytes(out / "keypoints.png", buf.tobytes())
    report = {"model": str(det.path), "demos": args.demos, "episodes": len(eps), "truth": has_truth,
              "keypoints": [v.to_dict() for v in verdicts], "useful": [v.name for v in verdicts if v.useful]}
    atomic_write_json(out / "report.json", report)
    html = _write_html(out, report)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(["keypoint", "follows", "r", "motion px", "jitter", "confidence", "useful", "why"],
                           [[v.name, v.follows or "-", v.correlation if v.correlation is not None else "-",
                             v.motion_px, v.jitter, v.confidence, "yes" if v.useful else "no", v.reason]
                            for v in verdicts]))
        print(f"-> {out / 'report.json'}, {out / 'keypoints.png'}, {html}", file=sys.stderr)
    return 0


def _write_html(out: Path, report: dict) -> Path:
    """``report.html`` beside ``report.json``: the house's HTML report (``robot_irl.report``) of one
    stage, ``stages/keypoints.json``: the figures, the per-keypoint table and the picture."""
    from robot_irl.core.io import atomic_write_json
    from robot_irl.report import build_report
    stage = {"title": "What each learned keypoint follows",
             "text": f"Model {report['model']} on {report['episodes']} episode(s) of {report['demos']!r}"
                     + ("; 'follows' and r against the episodes' tracked points" if report["truth"]
                        else "; no tracked points to compare with (motion, jitter and confidence only)"),
             "episodes": report["episodes"], "keypoints": len(report["keypoints"]), "useful": len(report["useful"]),
             "tables": {"keypoints": report["keypoints"]}, "images": {"keypoints on the first frame": "keypoints.png"}}
    atomic_write_json(out / "stages" / "keypoints.json", stage)
    return build_report(out, title="learned keypoints")


def run_extract_learned(args: argparse.Namespace) -> int:
    """`robot-irl extract --detector learned --model DIR TARGET`: the same track, cleaning and
    storage as the marker path (library episodes: derived data ``keypoints``; a video file: .npz)."""
    if args.detector != "learned":
        raise InputError(f"--model given with --detector {args.detector}", field="--detector",
                         expected="--detector learned with --model DIR (or no --model)")
    if not args.model:
        raise InputError("--detector learned needs --model", field="--model",
                         expected="a model folder written by `robot-irl keypoints train`")
    from robot_irl.keypoints.learned.detector import LearnedDetector, extract_learned
    det = LearnedDetector.load(args.model)
    keep = _useful(det) if args.drop_flagged else None
    from robot_irl.keypoints.filtering import clean
    target = Path(args.target)
    if target.is_file():
        import numpy as np

        from robot_irl.library.decode import decode
        from robot_irl.keypoints.video import file_timestamps
        ts = file_timestamps(target, args.timestamps, args.fps)
        pairs = list(decode(target))
        ts = np.array([t for t, _ in pairs]) if ts is None else ts
        camera = None
        if args.camera_file and not args.no_3d and args.table_z is not None:
            from robot_irl.core.camera import CameraModel
            from robot_irl.library.schema import read_json
            camera = CameraModel.from_dict(read_json(Path(args.camera_file), "camera file"), file=args.camera_file)
        raw = extract_learned(det, (f for _, f in pairs), ts, camera=camera, plane_z=args.table_z, keep=keep,
                             origin=str(target))
        track = raw if args.no_clean else clean(raw, max_gap=args.max_gap)
        out = Path(args.out) if args.out else target.with_suffix(".keypoints.npz")
        track.save_parquet(out) if out.suffix == ".parquet" else track.save_npz(out)
        print(f"{target}: {len(track)} frames, learned keypoints {', '.join(track.names)} -> {out}")
        return 0
    from robot_irl.core.batch import BatchReport
    from robot_irl.keypoints.episodes import store
    from robot_irl.library import Library
    lib, query = (Library.open(target), None) if target.is_dir() else (Library.open(args.library), args.target)
    eps = [lib.episode(query)] if query and query in lib.ids() else lib.select(query)
    if not eps:
        raise InputError(f"no episode matches {args.target!r}", file=lib.path, field="target",
                         expected="a video file, a library folder, an episode id or a query that selects episodes")
    report = BatchReport("extracted")
    for ep in eps:
        with report.item(ep.id):
            camera = None if args.no_3d else ep.camera_model(args.camera)
            raw = extract_learned(det, ep.video_frames(args.camera), ep.timestamps(args.camera), camera=camera,
                                  plane_z=args.table_z, keep=keep, origin=f"{ep.id} camera {args.camera}")
            cleaned = None if args.no_clean else clean(raw, max_gap=args.max_gap)
            store(ep, raw, cleaned, args.camera)
            print(f"{ep.id}: {len(raw)} frames, learned keypoints {', '.join(raw.names)}")
    if len(eps) > 1 or report.failed:
        print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return report.exit_code


def _useful(det) -> list[str]:
    """The keypoints the model's report.json found useful (``keypoints report`` writes it)."""
    path = Path(det.path) / "report.json"
    if not path.exists():
        raise InputError("no report.json", file=path, field="--drop-flagged",
                         expected=f"a report first: robot-irl keypoints report --model {det.path} --demos QUERY")
    useful = json.loads(path.read_text()).get("useful")
    if not useful:
        raise InputError("the report flags every keypoint", file=path, field="useful",
                         expected="at least one keypoint that follows something (train longer or on more motion)")
    return list(useful)
