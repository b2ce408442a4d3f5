"""Benchmark the demo library's write path against plain cv2.VideoWriter, and episode load time.

Both sides get the same ready-made frames (nothing is rendered) and write the same codec and
container; ours also checks every frame, timestamps it, writes chunk files, verifies each chunk's
frame count and commits the episode. Runs alternate (plain, ours, plain, ours, ...) and each side
keeps its median, so the machine's background load hits both alike.

    nice .venv/bin/python scripts/bench_library.py            # prints figures, last line JSON

JSON: record_fps_640x480 (camera path: mp4v, BGR frames as cv2.VideoCapture gives them),
writer_ratio (plain time / ours at 640x480 mp4v; >= 0.9 means ours costs <= 1.1x), the same for
320x240 and for the sim path (FFV1 lossless, RGB frames), and load times.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from robot_irl.library import Column, Library
from robot_irl.library.video import CODECS


def frames_for(w: int, h: int, n: int) -> list[np.ndarray]:
    """Camera-like BGR frames: smooth shading, a moving disc, mild sensor noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 110)], -1).astype(np.int16)
    out = []
    for i in range(n):
        f = base + rng.integers(-3, 4, size=base.shape, dtype=np.int16)
        f = np.clip(f, 0, 255).astype(np.uint8)
        cv2.circle(f, (int(w * (0.2 + 0.6 * i / n)), h // 2), h // 8, (40, 40, 220), -1)
        out.append(f)
    return out


def plain(path: Path, frames: list[np.ndarray], codec: str, fps: float) -> float:
    h, w = frames[0].shape[:2]
    t = time.perf_counter()
    wr = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*CODECS[codec].fourcc), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return time.perf_counter() - t


def ours(lib: Library, frames: list[np.ndarray], codec: str, fps: float, *, rgb: bool) -> tuple[float, str]:
    h, w = frames[0].shape[:2]
    t = time.perf_counter()
    with lib.writer(task="bench", source="sim" if rgb else "camera", fps=fps) as wr:
        wr.add_camera("cam0", (w, h), codec=codec)
        for i, f in enumerate(frames):
            wr.write_frame("cam0", f, i / fps, bgr=not rgb)
        ep = wr.commit()
    return time.perf_counter() - t, ep.id


def bench_size(lib: Library, tmp: Path, w: int, h: int, n: int, codec: str, rgb: bool, reps: int) -> dict:
    frames = frames_for(w, h, n)
    feed = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames] if rgb else frames
    tp, to = [], []
    for r in range(reps):
        tp.append(plain(tmp / f"plain{r}.{CODECS[codec].ext}", frames, codec, 30.0))
        t, eid = ours(lib, feed, codec, 30.0, rgb=rgb)
        to.append(t)
        lib.remove([eid])
    p, o = statistics.median(tp), statistics.median(to)
    return {"plain_fps": n / p, "ours_fps": n / o, "ratio": p / o}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90, help="frames per run")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs per side (median kept)")
    args = ap.parse_args()
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lib = Library.open(tmp / "lib", create=True)
        for codec, rgb, label in (("mp4v", False, "camera mp4v"), ("ffv1", True, "sim ffv1")):
            for w, h in ((320, 240), (640, 480)):
                r = bench_size(lib, tmp, w, h, args.frames, codec, rgb, args.reps)
                print(f"{label:11} {w}x{h}: ours {r['ours_fps']:7.1f} fps, plain cv2.VideoWriter "
                      f"{r['plain_fps']:7.1f} fps, plain time / ours {r['ratio']:.3f}")
                key = f"{w}x{h}" + ("" if codec == "mp4v" else "_ffv1")
                res[f"record_fps_{key}"] = round(r["ours_fps"], 1)
                res[f"plain_fps_{key}"] = round(r["plain_fps"], 1)
                res[f"writer_ratio_{key}"] = round(r["ratio"], 3)
        # load time: a 300-step episode with one 320x240 camera and a 20-column-wide state stream
        frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_for(320, 240, 300)]
        with lib.writer(task="load bench", source="sim", fps=10) as wr:
            wr.add_camera("cam0", (320, 240))
            wr.add_stream("state", {"joint_pos": Column((7,)), "keypoints_3d": Column((4, 3))})
            for i, f in enumerate(frames):
                wr.write_frame("cam0", f, i * 0.1)
                wr.write_row("state", i * 0.1, joint_pos=np.zeros(7), keypoints_3d=np.zeros((4, 3)))
            eid = wr.commit().id
        t = time.perf_counter()
        ep = Library.open(lib.path).episode(eid)
        ep.arrays("state")
        ep.timestamps("cam0")
        res["load_meta_state_s"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        n = sum(1 for _ in ep.video_frames("cam0"))
        res["load_video_fps_320x240"] = round(n / (time.perf_counter() - t), 1)
    print(f"episode load (open + state + timestamps, 300 steps): {res['load_meta_state_s'] * 1000:.1f} ms; "
          f"decoding its 320x240 FFV1 video: {res['load_video_fps_320x240']:.0f} frames/s")
    res["writer_ratio"] = res["writer_ratio_640x480"]
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
