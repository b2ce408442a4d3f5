"""Embedding a library for search, episode by episode, in this process or as Ray tasks
(``robot-irl clip embed [--ray [ADDRESS]]``).

Why a step of its own: `search` and `clip train` embed what is missing on the way, in one process;
a library of 10k+ episodes wants that work spread over a cluster first. Each episode is one task:
the worker opens it on the shared library path, decodes and crops its keyframes, and returns the
vectors (``library_index.episode_embeddings``, the same function the serial path runs); the driver
alone writes them (the episode's derived ``clip-<digest>``) and then brings the index up to date,
which only reads what is stored. Episodes that already hold embeddings for the model are skipped
unless ``force``, so an interrupted run picks up where it stopped.

Same vectors either way: the work runs on ``threads`` torch threads (1 by default) in the driver
and in every worker, and each episode is encoded as its own batch, so ``--ray`` gives bit-equal
embeddings (the test checks it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_irl.core.batch import BatchReport
from robot_irl.errors import InputError

if TYPE_CHECKING:
    from robot_irl.library import Library
    from robot_irl.retrieval.encoders import ClipEncoder

_ENCODER: dict[str, Any] = {}   # this process's encoder for the last model it embedded with (a Ray worker embeds many)


@dataclass
class EmbedSummary:
    """What `clip embed` did."""

    model_id: str
    selected: int
    embedded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)     # already held this model's embeddings
    no_video: list[str] = field(default_factory=list)    # no camera to embed (e.g. an arm run without video)
    failed: dict[str, str] = field(default_factory=dict)
    not_indexed: list[str] = field(default_factory=list)  # library episodes still without embeddings: index not updated
    index_rows: int | None = None
    index_kind: str | None = None
    where: str = "serial"

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "selected": self.selected, "embedded": len(self.embedded),
                "skipped": len(self.skipped), "no_video": len(self.no_video), "failed": self.failed,
                "not_indexed": len(self.not_indexed), "index_rows": self.index_rows, "index_kind": self.index_kind, "where": self.where}


def process_encoder(model: str, pretrained: str | None, seed: int) -> "ClipEncoder":
    """This process's encoder for ``model``, built on first use and kept: a Ray worker builds it once
    for every task of every command it serves, not once per task (building the library CLIP is
    ~0.1-0.3 s, a tenth of a task of 250 frames). Kept here, in a module Ray imports by name, and
    not in a task function's own globals: a function shipped by value (a script's) gets fresh
    globals with each ``RayCluster.map``, so a cache there is rebuilt by every run (bench_scale's
    embedding did that: +2 encoder builds in each timed run)."""
    from robot_irl.retrieval.encoders import load_encoder

    key = repr((model, pretrained, seed))
    if _ENCODER.get("key") != key:
        _ENCODER.clear()
        _ENCODER.update(key=key, encoder=load_encoder(model, pretrained, seed=seed))
    return _ENCODER["encoder"]


def embed_task(episode_path: str, model: str, pretrained: str | None, seed: int, model_id: str,
               threads: int | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One episode's embeddings, storing nothing (the serial loop and Ray workers both run it).
    ``model`` is what the driver loaded (local-dir:PATH on the shared filesystem, or an
    architecture with its seed); ``model_id`` is checked so a node with other weights fails loudly."""
    import torch

    from robot_irl.library import Episode
    from robot_irl.retrieval.library_index import episode_embeddings

    enc = process_encoder(model, pretrained, seed)
    if enc.model_id != model_id:
        raise InputError(f"this node loads {model!r} as {enc.model_id}, the driver as {model_id}", field="model",
                         expected="the same model files on every node (a path every node sees)")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return episode_embeddings(Episode(episode_path), enc)
    finally:
        torch.set_num_threads(before)


def embed_library(lib: "Library", query: str | None = None, *, model: str | None = None,
                  pretrained: str | None = None, seed: int = 0, ray: str | None = None, force: bool = False,
                  threads: int | None = 1, index_backend: str = "auto", progress: bool = True) -> EmbedSummary:
    """Embed the selected episodes with the model (default: the library's newest) and bring the
    search index up to date (only when every library episode with video then holds embeddings for
    the model; else it says which do not). ``ray``: None in this process, "local" or an address
    for Ray tasks."""
    from robot_irl.retrieval.library_index import (CAMERA, latest_model, library_encoder, library_index,
                                                   stored_embeddings, write_embeddings)

    episodes = lib.select(query or "")
    if not episodes:
        raise InputError("no episodes selected", file=lib.path, field="query",
                         expected="a query that selects recorded episodes (robot-irl record ...)")
    enc = library_encoder(lib, model, pretrained)
    spec = model if model is not None else f"local-dir:{latest_model(lib)}"
    summary = EmbedSummary(model_id=enc.model_id, selected=len(episodes), where="serial" if ray is None else "ray")
    todo = []
    for ep in episodes:
        if CAMERA not in ep.cameras:
            summary.no_video.append(ep.id)
        elif not force and stored_embeddings(ep, enc.model_id) is not None:
            summary.skipped.append(ep.id)
        else:
            todo.append(ep)
    by_id = {ep.id: ep for ep in todo}

    def commit(eid: str, result: tuple[dict[str, np.ndarray], dict[str, Any]]) -> None:
        """The driver stores each result: it is the library's only writer."""
        write_embeddings(by_id[eid], *result)
        summary.embedded.append(eid)

    args = lambda ep: (str(ep.path), spec, pretrained, seed, enc.model_id, threads)  # noqa: E731
    if ray is not None and todo:
        from robot_irl.core.cluster import RayCluster

        with RayCluster.start(ray) as cluster:
            report = cluster.map(embed_task, todo, key=lambda ep: ep.id, args=args, commit=commit, verb="embedded",
                                 unit="ep", progress=progress)
    else:
        from tqdm.auto import tqdm

        _ENCODER.clear()
        _ENCODER.update(key=repr((spec, pretrained, seed)), encoder=enc)   # the serial path reuses the driver's
        report = BatchReport("embedded")
        for ep in tqdm(todo, desc="embedded", unit="ep", disable=not progress or not todo):
            with report.item(ep.id):
                commit(ep.id, embed_task(*args(ep)))
    summary.failed = dict(report.failed)
    # the index is built from stored embeddings only: where episodes still lack them (failed, or
    # not selected) it is left as it was, rather than embedding them here in one process
    missing = [ep.id for ep in (lib.episode(i) for i in lib.ids())
               if CAMERA in ep.cameras and stored_embeddings(ep, enc.model_id) is None]
    summary.not_indexed = missing
    if not missing:
        index, _ = library_index(lib, enc, backend=index_backend, progress=progress)
        summary.index_rows, summary.index_kind = len(index), index.ann_info.kind
    return summary
