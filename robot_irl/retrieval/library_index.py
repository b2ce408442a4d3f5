"""The demo library as a search index: per-episode CLIP embeddings.

Embeddings of an episode's keyframes (evenly spaced plus motion keyframes: pauses of the end
effector and gripper switches) and of its task text are stored as the episode's derived data
`clip-<digest>` (one name per model, so two models' vectors never mix), fp16 plus frame indices,
times and row kinds, with the model id in its meta. The searchable index is a cache built from
them under <library>/index/clip/<model>/: episodes that gained embeddings are added to it;
removed ones make it rebuild. Trained models live in <library>/models/clip/<name>/ as
open_clip `local-dir:` folders.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.errors import InputError
from robot_irl.retrieval.captions import CaptionFacts
from robot_irl.retrieval.crop import WORKSPACE_BOX, Box, Rect, crop_frames, episode_rect
from robot_irl.retrieval.encoders import ClipEncoder
from robot_irl.retrieval.index import KINDS, EmbeddingIndex

if TYPE_CHECKING:
    from robot_irl.library import Episode, Library

CAMERA = "cam0"
DERIVED_VERSION = 1
N_EVEN = 8
N_MOTION = 4


def derived_name(model_id: str) -> str:
    return "clip-" + model_id.rsplit("/", 1)[-1]


def models_dir(lib: "Library") -> Path:
    return lib.path / "models" / "clip"


def index_dir(lib: "Library", model_id: str) -> Path:
    return lib.path / "index" / "clip" / re.sub(r"[^A-Za-z0-9_.-]", "_", model_id)


def latest_model(lib: "Library") -> Path | None:
    """The newest trained model folder in the library (names start with a UTC timestamp)."""
    root = models_dir(lib)
    found = sorted(d for d in root.iterdir() if (d / "open_clip_config.json").is_file()) if root.is_dir() else []
    return found[-1] if found else None


def library_encoder(lib: "Library", model: str | None = None, pretrained: str | None = None) -> ClipEncoder:
    """The encoder named by ``model``/``pretrained``, else the library's newest trained model."""
    from robot_irl.retrieval.encoders import load_encoder

    if model is None:
        found = latest_model(lib)
        if found is None:
            raise InputError("no CLIP model in this library: no trained CLIP to search with", file=models_dir(lib),
                             field="model", expected="`robot-irl clip train` (or train_library_clip) first, "
                             "or an explicit model: ARCH or local-dir:PATH")
        model = f"local-dir:{found}"
    return load_encoder(model, pretrained)


def new_model_dir(lib: "Library", arch: str) -> Path:
    """A new, empty folder for a model, created here so that two trainings started in the same
    second never write into one (it happened: two evaluation runs shared a folder); named by UTC
    time to the microsecond, so names sort by age for `latest_model`."""
    root = models_dir(lib)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        folder = root / f"{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S.%f}-{arch}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


# ---- what an episode shows ----------------------------------------------------------------
def _state(ep: "Episode") -> dict[str, np.ndarray] | None:
    if "state" not in ep.streams:
        return None
    cols = ep.columns("state")
    if "ee_pos" not in cols and "gripper" not in cols:
        return None
    return ep.arrays("state")


def keyframes(ep: "Episode", camera: str = CAMERA, n_even: int = N_EVEN, n_motion: int = N_MOTION) -> np.ndarray:
    """Sorted frame indices: n_even spread over the episode, plus the frames nearest the
    end effector's pauses (where grasps and releases happen) and gripper switches."""
    ts = ep.timestamps(camera)
    n = len(ts)
    if n == 0:
        return np.empty(0, np.int64)
    picks = set(np.linspace(0, n - 1, min(n, n_even)).round().astype(int).tolist())
    st = _state(ep)
    if st is not None:
        t = st["timestamp"]
        moments: list[float] = []
        if "ee_pos" in st and len(t) > 2:
            speed = np.linalg.norm(np.diff(st["ee_pos"], axis=0), axis=1) / np.maximum(np.diff(t), 1e-9)
            inner = np.flatnonzero((speed[1:-1] < speed[:-2]) & (speed[1:-1] <= speed[2:])) + 1
            moments += [float(t[i]) for i in inner[np.argsort(speed[inner])][:n_motion]]
        if "gripper" in st:
            g = np.sign(np.nan_to_num(st["gripper"].astype(float)))
            moments += [float(t[i + 1]) for i in np.flatnonzero(np.diff(g) != 0)]
        for m in moments:
            picks.add(int(np.clip(np.searchsorted(ts, m), 0, n - 1)))
    return np.array(sorted(picks), dtype=np.int64)


def phases(ep: "Episode", frame_times: np.ndarray) -> list[str | None]:
    """Motion phase per frame time from the gripper: approach before the first hold, carry while
    holding, retreat after; None when the episode never holds."""
    st = _state(ep)
    if st is None or "gripper" not in st:
        return [None] * len(frame_times)
    t, g = st["timestamp"], np.nan_to_num(st["gripper"].astype(float))
    hold = np.flatnonzero(g > 0)
    if len(hold) == 0:
        return [None] * len(frame_times)
    t0, t1 = t[hold[0]], t[hold[-1]]
    return ["approach" if x < t0 else "carry" if x <= t1 else "retreat" for x in frame_times]


def episode_facts(ep: "Episode") -> CaptionFacts:
    """Caption facts from the episode's meta: verb from the sim env (Place-v0 → place) or the
    task text's first word; object and goal from the variant."""
    env = ep.meta.get("env") or ""
    m = re.search(r"([A-Za-z]+)-v\d+$", env)
    verb = m.group(1).lower() if m else (ep.task.split() or ["do"])[0].lower()
    v = ep.variant
    return CaptionFacts.from_meta({"task": verb, "shape": v.get("shape"), "colour": v.get("color", v.get("colour")),
                                   "goal_region": v.get("goal_region"), "task_text": ep.task})


def frames_at(ep: "Episode", camera: str, indices: Sequence[int]) -> list[np.ndarray]:
    want = set(int(i) for i in indices)
    last = max(want)
    out = {i: f for i, f in enumerate(ep.video_frames(camera, 0, last + 1)) if i in want}
    return [out[int(i)] for i in indices]


# ---- embeddings as derived data -----------------------------------------------------------
def episode_embeddings(ep: "Episode", encoder: ClipEncoder,
                       camera: str = CAMERA) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute the episode's keyframe + task-text embeddings for this encoder, storing nothing:
    ``(arrays, meta)`` for :func:`write_embeddings`. The serial path and Ray workers (`clip embed
    --ray`) both run it, so their vectors are the same."""
    if camera not in ep.cameras:
        raise InputError(f"episode {ep.id} has no camera {camera}", field="camera",
                         expected="one of " + ", ".join(ep.cameras))
    kf = keyframes(ep, camera)
    if len(kf) == 0:
        raise InputError(f"episode {ep.id} has no frames", field=f"cameras.{camera}", expected="at least one frame")
    pixels = crop_frames(frames_at(ep, camera, kf), episode_rect(ep, camera, encoder.workspace_box))
    return embedding_arrays(ep, encoder, kf, encoder.encode_images(pixels), camera)


def embedding_arrays(ep: "Episode", encoder: ClipEncoder, kf: np.ndarray, img: np.ndarray,
                     camera: str = CAMERA) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Keyframe vectors already computed plus the task-text vector, as stored (fp16 rows, frame
    indices, times, row kinds) with the derived data's meta."""
    ts = ep.timestamps(camera)
    txt = encoder.encode_texts([ep.task]) if ep.task.strip() else np.empty((0, encoder.embed_dim), np.float32)
    arrays = {
        "embeddings": np.concatenate([img, txt]).astype(np.float16),
        "frames": np.concatenate([kf, np.full(len(txt), -1)]).astype(np.int32),
        "times": np.concatenate([ts[kf], np.full(len(txt), np.nan)]).astype(np.float64),
        "kinds": np.array([KINDS.index("keyframe")] * len(kf) + [KINDS.index("text")] * len(txt), np.int8),
    }
    meta = {"model_id": encoder.model_id, "camera": camera, "kinds": list(KINDS),
            "crop": episode_rect(ep, camera, encoder.workspace_box)}
    return arrays, meta


def write_embeddings(ep: "Episode", arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Store embeddings as the episode's derived data (one atomic replace): the driver's step."""
    ep.write_derived(derived_name(meta["model_id"]), arrays, meta=meta, version=DERIVED_VERSION)
    return arrays


def embed_episode(ep: "Episode", encoder: ClipEncoder, camera: str = CAMERA) -> dict[str, np.ndarray]:
    """Compute and store the episode's keyframe + task-text embeddings for this encoder."""
    return write_embeddings(ep, *episode_embeddings(ep, encoder, camera))


def store_embeddings(ep: "Episode", encoder: ClipEncoder, kf: np.ndarray, img: np.ndarray,
                     camera: str = CAMERA) -> dict[str, np.ndarray]:
    """Store keyframe vectors already computed (by a caller that decoded the frames once for
    several uses) plus the task-text vector as the episode's derived embeddings."""
    return write_embeddings(ep, *embedding_arrays(ep, encoder, kf, img, camera))


def stored_embeddings(ep: "Episode", model_id: str) -> dict[str, np.ndarray] | None:
    name = derived_name(model_id)
    if DERIVED_VERSION not in ep.derived().get(name, []):
        return None
    d = ep.read_derived(name, DERIVED_VERSION)
    if d.meta.get("model_id") != model_id:
        return None
    return d.arrays


@dataclass
class SyncReport:
    embedded: int = 0  # episodes embedded now
    added: int = 0  # episodes added to the cached index
    rebuilt: bool = False
    rows: int = 0


def library_index(lib: "Library", encoder: ClipEncoder, *, backend: str = "auto",
                  progress: bool = False) -> tuple[EmbeddingIndex, SyncReport]:
    """The library's index for this encoder, brought up to date: missing embeddings computed,
    new episodes added, a rebuild when episodes were removed. Saved back when it changed."""
    from tqdm.auto import tqdm

    rep = SyncReport()
    ids = lib.ids()
    if not ids:
        raise InputError("the library has no episodes", file=lib.path, field="library",
                         expected="recorded episodes (robot-irl record ...)")
    path = index_dir(lib, encoder.model_id)
    idx = (EmbeddingIndex.load(path, model_id=encoder.model_id) if (path / "index.json").is_file()
           else EmbeddingIndex(encoder.model_id, encoder.embed_dim, backend=backend))
    have = set(idx.episodes())
    if have - set(ids):
        idx, have, rep.rebuilt = EmbeddingIndex(encoder.model_id, encoder.embed_dim, backend=backend), set(), True
    todo = [e for e in ids if e not in have]
    for eid in tqdm(todo, desc="index episodes", unit="ep", disable=not progress):
        ep = lib.episode(eid)
        arrays = stored_embeddings(ep, encoder.model_id)
        if arrays is None:
            if CAMERA not in ep.cameras:   # e.g. an arm run recorded without video: nothing to search
                continue
            arrays = embed_episode(ep, encoder)
            rep.embedded += 1
        idx.add(arrays["embeddings"], eid, arrays["frames"], times=arrays["times"],
                kinds=[KINDS[k] for k in arrays["kinds"]])
        rep.added += 1
    if todo or rep.rebuilt:
        idx.save(path)
    rep.rows = len(idx)
    return idx, rep


def library_crop(lib: "Library", box: Box | None = WORKSPACE_BOX,
                 camera: str = CAMERA) -> Callable[[np.ndarray], Rect | None]:
    """For query images: the rectangle of `box` (the encoder's workspace_box) in the newest
    library episode whose camera frames have the image's size (a frame grabbed from the same
    camera); None (whole image) when no episode's camera has that size."""
    def rect(image: np.ndarray) -> Rect | None:
        size = (int(image.shape[1]), int(image.shape[0]))
        for row in reversed(lib.rows()):
            ep = lib.episode(row["id"])
            if camera in ep.cameras and ep.frame_size(camera) == size:
                return episode_rect(ep, camera, box)
        return None
    return rect


def iter_frames(lib: "Library", hits: Sequence[Any], camera: str = CAMERA) -> Iterator[np.ndarray | None]:
    """The best frame of each search hit (None when the hit has no keyframe)."""
    for h in hits:
        yield None if h.frame < 0 else lib.episode(h.episode_id).frame(camera, h.frame)
