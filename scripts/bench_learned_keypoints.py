"""Benchmark of learned keypoints (no markers): accuracy against the sim's truth and a real video,
training time, and inference speed beside the marker detector.

Sim (acceptance 1): place-task episodes recorded twice from the same seeds, once plain (no
markers or blobs drawn) and once with markers, at 320x240. A detector is trained on the plain
frames of the training episodes; a linear map (ridge, with bias) from its K keypoints to the true
pixels of the end effector and the object is fitted on the training episodes and scored on the
held-out ones. Floor: the same map from an untrained (random-init) detector. Ceiling: the marker
pipeline (`extract`, default settings) on the marker renders of the held-out episodes, its own
pixels against the truth (frames it found; its detection rate beside).

Real (acceptance 2): ../shared/realvideo/apriltag_motor.mp4 with the tag painted out of every
frame (`cv2.inpaint` over its detected quad, grown by --inpaint-grow to cover the white margin);
a detector trained on those frames (cut to the box round what moves, --real-crop auto: found from the
frames' own motion, no label; 96 px wide, --real-k 24 keypoints, --real-context 3 dilated blocks in its
heat-map net, --real-sigma 0.03 Gaussian windows, --real-members 2 detectors trained apart with their
keypoints side by side, chosen in sessions 12-14 on this clip, notes/keypoints.md); a linear map to the
tag's detected centre fitted on the first half, median error (px at 640 wide) on the second half. The
random-init floor sees the same crop; `real_member_err_px_median` is each member's keypoints alone
(the one-detector baseline, same run).

Transfer (acceptance 3, with --transfer-detector DIR, once per --transfer-cameras camera):
scripts/eval_learned_transfer.py for --transfer-seeds (MBIRL on learned keypoints from 5 plain demos, 20
held-out goals given as target images, run through the runner, judged on simulator truth; the marker
pipeline on the same goals for the path-error ratio). `transfer_success` and `path_err_ratio_vs_markers`
are its figures (mean over those seeds), `transfer_marker_success` the marker runs' on the same task
check; `transfer_success_within_filter` / `_outside_filter` (and the markers') the success over the goals
whose expert pose the safety filter lets a run reach (`transfer_goals_within_filter` of them) and over the
others; without --transfer-detector they are null and `transfer_status` says so. The detectors are
arguments, not the sim section's own (that one sees one camera and is trained on right-region demos
only): scripts/train_view_detectors.py trains them.

    nice -n 10 /work/main/.venv/bin/python scripts/bench_learned_keypoints.py [--work /tmp/blk]
        [--seed 100] [--episodes 30] [--train 20] [--steps 1500] [--size 64] [--no-real]

Seeds: 0.. for development (what was tuned), >= 100 for report figures (the default).
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot_irl.keypoints.learned.detector import LearnedDetector  # noqa: E402
from robot_irl.keypoints.learned.frames import library_frames, sequence_frames  # noqa: E402
from robot_irl.keypoints.learned.probe import keypoint_report, probe_errors  # noqa: E402
from robot_irl.keypoints.learned.train import TrainConfig, train_detector  # noqa: E402
from robot_irl.library import Library  # noqa: E402

TRUTH = "keypoints_2d_cam0"
POINTS = ("ee", "obj")
SIZE = (320, 240)
REAL = Path(__file__).resolve().parents[2] / "shared" / "realvideo" / "apriltag_motor.mp4"


def ensure_library(path: Path, seed: int, n: int, plain: bool) -> list:
    """The recorded episodes of ``path`` (recorded first if the folder has fewer than ``n``)."""
    from robot_irl.record.sim import record_sim
    lib = Library.open(path, create=True)
    if len(lib.ids()) < n:
        record_sim(lib, "robot_irl/Place-v0", episodes=n, seed=seed, render_size=SIZE, plain=plain)
    eps = sorted(lib.select(None), key=lambda e: e.meta["seed"])
    return [e for e in eps if seed <= e.meta["seed"] < seed + n]


def truth_of(ep) -> np.ndarray:
    names = list(ep.columns("state")[TRUTH].names)
    return ep.arrays("state")[TRUTH][:, [names.index(p) for p in POINTS]]


def random_detector(like: LearnedDetector, seed: int) -> LearnedDetector:
    """The same network, untrained (the floor): torch's default init under ``seed``."""
    import torch

    from robot_irl.keypoints.learned.model import DetectorConfig, KeypointEnsemble
    torch.manual_seed(seed)
    net = KeypointEnsemble(DetectorConfig(**like.config["detector"])).eval()
    return LearnedDetector(net, like.config, Path("<random init>"))


def detect_all(det: LearnedDetector, eps: list) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    uv, conf, n, t0 = [], [], 0, time.perf_counter()
    for ep in eps:
        d = det.detect(ep.video_frames("cam0"), origin=ep.id)
        uv.append(d.uv)
        conf.append(d.peak)
        n += len(d.uv)
    return uv, conf, n / (time.perf_counter() - t0)


def marker_errors(eps: list) -> tuple[np.ndarray, float, float]:
    """Marker pipeline on marker renders: per-point pixel errors where found, detection rate, frames/s."""
    from robot_irl.keypoints.episodes import extract_episode
    errs, found, total, frames, t = [], 0, 0, 0, 0.0
    for ep in eps:
        t0 = time.perf_counter()
        track = extract_episode(ep, "cam0", progress=False)
        t += time.perf_counter() - t0
        frames += len(track)
        idx = [track.names.index(p) for p in POINTS]
        e = np.linalg.norm(track.uv[:, idx] - truth_of(ep), axis=-1)
        ok = np.isfinite(e)
        errs.append(e[ok])
        found += int(ok.sum())
        total += ok.size
    return np.concatenate(errs), found / total, frames / t


def sim_section(args, out: dict) -> None:
    plain = ensure_library(args.work / f"plain{args.seed}", args.seed, args.episodes, plain=True)
    marked = ensure_library(args.work / f"marker{args.seed}", args.seed, args.episodes, plain=False)
    train, test = plain[:args.train], plain[args.train:]
    print(f"sim: {len(train)} training / {len(test)} held-out plain episodes (seeds {args.seed}..)", flush=True)
    frames = library_frames(train, args.size)
    model = args.work / f"model_sim_{args.seed}_{args.size}_{args.steps}_k{args.k}"
    if not (model / "detector.pt").exists() or (model / "incomplete.json").exists():
        train_detector(frames, model, k=args.k, config=TrainConfig(steps=args.steps, seed=args.train_seed),
                       force=True, provenance={"demos": f"bench seeds {args.seed}.."}, progress=False)
    det = LearnedDetector.load(model)
    minutes = json.loads((model / "metrics.json").read_text())["train_minutes"]
    ytrain, ytest = [truth_of(e) for e in train], [truth_of(e) for e in test]
    W = SIZE[0]
    rows = {}
    for name, d in (("learned", det), ("random init", random_detector(det, args.train_seed))):
        xtr, _, _ = detect_all(d, train)
        xte, conf, fps = detect_all(d, test)
        err = probe_errors(xtr, ytrain, xte, ytest, W)
        rows[name] = (np.median(err) / W, np.median(err, axis=0), fps)
        if name == "learned":
            verdicts = keypoint_report(xte, conf, W, d.names, ytest, list(POINTS))
    merr, rate, mfps = marker_errors(marked[args.train:])
    print(f"\n{'detector':<22}{'median err / width':>20}{'ee px':>8}{'obj px':>8}{'frames/s':>10}")
    for name, (frac, per, fps) in rows.items():
        print(f"{name + ' (linear map)':<22}{frac:>20.4f}{per[0]:>8.2f}{per[1]:>8.2f}{fps:>10.1f}")
    print(f"{'markers (direct)':<22}{np.median(merr) / W:>20.4f}{'':>16}{mfps:>10.1f}   found {rate:.1%}")
    print("\nlearned keypoints on held-out episodes:")
    for v in verdicts:
        print(f"  {v.name}: {v.reason}; r={v.correlation:.2f} motion {v.motion_px:.1f}px jitter {v.jitter:.2f} "
              f"conf {v.confidence:.2f}")
    out.update(sim_err_frac_median=rows["learned"][0], random_err_frac_median=rows["random init"][0],
               marker_err_frac_median=float(np.median(merr) / W), marker_found_rate=rate,
               train_minutes=minutes, train_frames=len(frames), train_episodes=len(train), test_episodes=len(test),
               learned_fps=rows["learned"][2], marker_fps=mfps, useful_keypoints=sum(v.useful for v in verdicts))


def tag_quads(frames: list[np.ndarray]) -> list[np.ndarray | None]:
    import cv2
    d = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_16h5))
    out = []
    for f in frames:
        corners, ids, _ = d.detectMarkers(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))
        hit = [c.reshape(4, 2) for c, i in zip(corners, [] if ids is None else ids.ravel()) if i == 23]
        out.append(hit[0] if hit else None)
    return out


def inpaint(frame: np.ndarray, quad: np.ndarray, grow: float) -> np.ndarray:
    import cv2
    c = quad.mean(0)
    poly = (c + (quad - c) * (1 + grow)).round().astype(np.int32)
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, poly, 255)
    return cv2.inpaint(frame, mask, 5, cv2.INPAINT_TELEA)


def real_section(args, out: dict) -> None:
    from robot_irl.library.decode import decode
    frames = [f for _, f in decode(args.real)]
    quads = tag_quads(frames)
    seen = np.array([q is not None for q in quads])
    centre = np.array([q.mean(0) if q is not None else (np.nan, np.nan) for q in quads])
    painted = [inpaint(f, q, args.inpaint_grow) if q is not None else f for f, q in zip(frames, quads)]
    left = tag_quads(painted)
    print(f"\nreal: {len(frames)} frames, tag found in {seen.sum()}, after inpainting in "
          f"{sum(q is not None for q in left)}", flush=True)
    crop = None if args.real_crop == "none" else args.real_crop
    fs = sequence_frames(painted, args.real_size, segment=30, name=str(args.real), crop=crop)
    gap = f"_gap{args.real_max_gap}" if args.real_max_gap else ""
    cut = "" if fs.crop is None else "_crop" + "-".join(str(v) for v in fs.crop.to_list())
    ctx = f"_ctx{args.real_context}" if args.real_context else ""
    sig = f"_sigma{args.real_sigma:g}"
    mem = f"_m{args.real_members}" if args.real_members > 1 else ""
    model = args.work / f"model_real_{args.real_size}_{args.real_steps}_k{args.real_k}{gap}{ctx}{sig}{mem}{cut}"
    if not (model / "detector.pt").exists() or (model / "incomplete.json").exists():
        cfg = TrainConfig(steps=args.real_steps, seed=args.train_seed, max_gap=args.real_max_gap)
        train_detector(fs, model, k=args.real_k, context=args.real_context, sigma=args.real_sigma,
                       members=args.real_members, config=cfg, force=True, provenance={"demos": str(args.real)},
                       progress=False)
    det = LearnedDetector.load(model)
    uv = det.detect(painted, origin=str(args.real)).uv
    half = len(frames) // 2
    y = centre[:, None]

    def tag_errors(kp: np.ndarray) -> np.ndarray:
        return probe_errors([kp[:half][seen[:half]]], [y[:half][seen[:half]]], [kp[half:][seen[half:]]],
                            [y[half:][seen[half:]]], frames[0].shape[1])

    err = tag_errors(uv)
    alone = [float(np.median(tag_errors(uv[:, m * args.real_k:(m + 1) * args.real_k])))
             for m in range(args.real_members)]
    rnd = random_detector(det, args.train_seed).detect(painted).uv
    rerr = tag_errors(rnd)
    print(f"real: tag centre from learned keypoints (map fitted on the first half) median {np.median(err):.2f} px "
          f"on the second half; each member alone {', '.join(f'{a:.2f}' for a in alone)} px; random init "
          f"{np.median(rerr):.2f} px; tag moves {np.nanstd(centre, 0).mean():.1f} px std")
    out.update(real_err_px_median=float(np.median(err)), real_random_err_px_median=float(np.median(rerr)),
               real_train_minutes=json.loads((model / "metrics.json").read_text())["train_minutes"],
               real_member_err_px_median=alone, real_members=args.real_members,
               real_crop=None if fs.crop is None else fs.crop.to_list(), real_k=args.real_k,
               real_context=args.real_context, real_sigma=args.real_sigma,
               real_tag_left_after_inpaint=int(sum(q is not None for q in left)))


def transfer_section(args, out: dict) -> None:
    """Acceptance 3 through scripts/eval_learned_transfer.py (its defaults), markers on the same goals."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import eval_learned_transfer as elt
    from evalkit import parse_seeds
    seeds = parse_seeds(args.transfer_seeds)
    ns = argparse.Namespace(detector=[str(d) for d in args.transfer_detector], demos=5, goals=20, explore=400,
                            iters=400, damping=0.03, depth=None, camera=args.transfer_cameras, markers=True,
                            no_land=False, no_tilt=False)
    per = {s: elt.run_seed(ns, s, args.work / f"transfer{s}") for s in seeds}
    split = elt.pooled_split(per, seeds, markers=True)
    out.update(transfer_success=float(np.mean([per[s]["success_rate"] for s in seeds])),
               path_err_ratio_vs_markers=float(np.mean([per[s]["path_err_ratio_vs_markers"] for s in seeds])),
               transfer_seeds=seeds, transfer_detector=[str(d) for d in args.transfer_detector],
               transfer_cameras=args.transfer_cameras,
               transfer_path_err_truth_cm=float(np.mean([per[s]["path_err_truth_cm"] for s in seeds])),
               transfer_marker_path_err_truth_cm=float(np.mean([per[s]["marker_path_err_truth_cm"] for s in seeds])),
               transfer_marker_success=split.pop("marker_transfer_success"),
               **{"transfer_" + k: v for k, v in split.items()},
               transfer_status="success: task.is_success on simulator truth; path: robot keypoints' true path vs the "
                               "expert's, learned / markers (eval_transfer) on the same goals")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_learned_keypoints"),
                    help="recordings and models (kept between runs; delete to start again)")
    ap.add_argument("--seed", type=int, default=100, help="first episode seed (report seeds >= 100)")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--train", type=int, default=20, help="episodes to train on; the rest are held out")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--real-size", type=int, default=96)
    ap.add_argument("--real-steps", type=int, default=1500)
    ap.add_argument("--real-crop", default="auto",
                    help="'auto' (the box round what moves: the default), X,Y,W,H, or 'none' (the whole frame)")
    ap.add_argument("--real-k", type=int, default=24, help="keypoints of the real clip's detector (default 24)")
    ap.add_argument("--real-context", type=int, default=3,
                    help="dilated blocks in the real clip's keypointer (keypoints train --context; default 3)")
    ap.add_argument("--real-sigma", type=float, default=0.03,
                    help="Gaussian window of each keypoint, fraction of the input width (keypoints train --sigma; "
                         "default 0.03)")
    ap.add_argument("--real-members", type=int, default=2,
                    help="detectors trained apart, keypoints side by side (keypoints train --members; default 2)")
    ap.add_argument("--real-max-gap", type=int, default=0,
                    help="largest frame distance between a training pair's frames (0: any within a 30-frame segment)")
    ap.add_argument("--inpaint-grow", type=float, default=0.8,
                    help="grow the tag quad by this fraction of its half-size before inpainting (white margin)")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--no-sim", action="store_true", help="the real-video section only")
    ap.add_argument("--transfer-detector", type=Path, action="append",
                    help="a detector folder for the transfer section (acceptance 3), once per --transfer-cameras "
                         "camera (scripts/train_view_detectors.py)")
    ap.add_argument("--transfer-cameras", default="front,top", help="the sim cameras of --transfer-detector, in order")
    ap.add_argument("--transfer-seeds", default="100", help="seeds of the transfer section (report: >= 100)")
    args = ap.parse_args()
    out: dict = {"seed": args.seed, "episodes": args.episodes, "size": args.size, "steps": args.steps,
                 "load_avg_1min_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    if not args.no_sim:
        sim_section(args, out)
    if not args.no_real and args.real.exists():
        real_section(args, out)
    else:
        out["real_err_px_median"] = None
        print(f"\nreal: skipped ({'--no-real' if args.no_real else f'{args.real} absent'})")
    if args.transfer_detector:
        transfer_section(args, out)
    else:
        out.update(transfer_success=None, path_err_ratio_vs_markers=None,
                   transfer_status="not run: give --transfer-detector DIR (scripts/eval_learned_transfer.py)")
    out["load_avg_1min_end"] = os.getloadavg()[0]
    print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
