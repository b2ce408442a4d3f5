"""Write a LeRobot v2.1 dataset (the layout of most datasets on the hub) from a v3.0 one, for the
import tests and for scripts/lerobot_check, which runs LeRobot's own v2.1→v3.0 converter on it to
prove the layout is the real one. One parquet and one H.264 mp4 per episode, ``meta/*.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from robot_irl.library.decode import decode_exact
from robot_irl.library.lerobot import feature_stats, image_stats

DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def _encode(path: Path, frames: list[np.ndarray], fps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt, s.options = frames[0].shape[1], frames[0].shape[0], "yuv420p", {"crf": "18"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def write_v21(src: Path, out: Path) -> Path:
    info = json.loads((src / "meta/info.json").read_text())
    fps = info["fps"]
    data = pq.read_table(src / "data/chunk-000/file-000.parquet")
    eps = pq.read_table(src / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    tasks = pq.read_table(src / "meta/tasks.parquet").to_pylist()   # [{task_index, task}]
    videos = [k for k, v in info["features"].items() if v["dtype"] == "video"]
    numeric = [k for k, v in info["features"].items() if v["dtype"] not in ("video", "string")]
    (out / "meta").mkdir(parents=True)
    ep_lines, stat_lines = [], []
    for r in eps:
        e, n = r["episode_index"], r["length"]
        t = data.filter(pc.equal(data.column("episode_index"), e))
        p = out / DATA.format(episode_chunk=0, episode_index=e)
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, p)
        stats = {}
        for k in numeric:
            col = t.column(k).combine_chunks()
            x = np.asarray(col.to_pylist(), dtype=np.float64).reshape(n, -1)
            stats[k] = feature_stats(x)
        for vk in videos:
            vsrc = src / info["video_path"].format(video_key=vk, chunk_index=r[f"videos/{vk}/chunk_index"],
                                                   file_index=r[f"videos/{vk}/file_index"])
            half = 0.5 / fps
            _, frames = decode_exact(vsrc, n, start_time=r[f"videos/{vk}/from_timestamp"] - half,
                                     end_time=r[f"videos/{vk}/to_timestamp"] - half)
            _encode(out / VIDEO.format(episode_chunk=0, video_key=vk, episode_index=e), frames, fps)
            stats[vk] = image_stats(frames)
        ep_lines.append({"episode_index": e, "tasks": list(r["tasks"]), "length": n})
        stat_lines.append({"episode_index": e, "stats": stats})
    (out / "meta/episodes.jsonl").write_text("".join(json.dumps(x) + "\n" for x in ep_lines))
    (out / "meta/episodes_stats.jsonl").write_text("".join(json.dumps(x) + "\n" for x in stat_lines))
    (out / "meta/tasks.jsonl").write_text("".join(json.dumps({"task_index": t["task_index"], "task": t["task"]}) + "\n"
                                                  for t in tasks))
    for vk in videos:
        info["features"][vk]["info"]["video.codec"] = "h264"
    info.update(codebase_version="v2.1", data_path=DATA, video_path=VIDEO if videos else None,
                total_chunks=1, total_videos=len(videos) * len(eps))
    for k in ("data_files_size_in_mb", "video_files_size_in_mb"):
        info.pop(k, None)
    (out / "meta/info.json").write_text(json.dumps(info, indent=2))
    return out
