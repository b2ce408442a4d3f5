"""Sim recording as a resumable batch, in this process or as Ray tasks, with one writer.

Every episode is recorded into a run's own staging folder, ``<library>/staging/.record-<key>/``
(the key names the settings: env, robot, variant, size, tags), and the driver alone commits it
into the library, one rename each. The same path serves the serial run and the Ray run, so their
episodes are the same for the same seeds; only who computes them differs.

The run folder keeps ``seeds.json`` after the run, so ``--resume`` with the same settings
skips every seed already committed (and still in the library), by this run or an earlier one.

Exactly once: before committing a staged episode the driver writes ``seed -> episode id`` into the
run's ``seeds.json`` (atomically); a seed counts as done when that episode is in the library. A
driver killed at any point leaves either a staged episode it had not named (discarded and
recorded again) or a named one, committed or finalized in staging (committed on ``--resume``),
never two of one seed. A Ray worker killed mid-episode leaves a partial folder that no seed names;
Ray runs the task again and the folder is removed when the run ends.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from robot_irl.core.batch import BatchReport
from robot_irl.core.io import atomic_write_json
from robot_irl.errors import InputError
from robot_irl.library import Episode, Library
from robot_irl.library.library import Batch
from robot_irl.record.sim import make_env, record_episode

RUN_PREFIX = ".record-"
MANIFEST = "seeds.json"


@dataclass(frozen=True)
class SimPlan:
    """What a sim recording run records, apart from its seeds."""

    env_id: str = "robot_irl/Place-v0"
    robot: str = "iiwa"
    variant: dict[str, Any] = field(default_factory=dict)
    render_size: tuple[int, int] = (320, 240)
    tags: tuple[str, ...] = ()
    chunk_frames: int = 150
    plain: bool = False            # markers and blobs hidden (record_sim's ``plain``)
    views: tuple[str, ...] = ()    # more sim cameras recorded as cam1 .. (record_sim's ``views``)

    def key(self) -> str:
        """Names the settings (not the seeds): a rerun with the same ones finds its run folder."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


_ENV: dict[str, Any] = {}   # this process's env for the last plan it recorded (a Ray worker records many)


def _env_for(plan: SimPlan):
    """One env per process and plan: building the scene costs about as much as an episode."""
    key = plan.key()
    if key not in _ENV:
        for old in _ENV.values():
            old.close()
        _ENV.clear()
        _ENV[key] = make_env(plan.env_id, plan.robot, plan.variant, plan.render_size, plain=plan.plain)
    return _ENV[key]


def release_env() -> None:
    """Close this process's cached env (the driver, after a serial run)."""
    for env in _ENV.values():
        env.close()
    _ENV.clear()


def stage_sim_episode(library_path: str, run_dir: str, plan: SimPlan, seed: int) -> str:
    """Record one episode into the run's staging folder (finalized there, not committed); returns
    its id. Runs in the driver (serial) or a Ray worker: it writes only inside ``run_dir``."""
    lib = Library(library_path)
    env = _env_for(plan)
    ep = record_episode(Batch(lib, Path(run_dir)).writer, env, seed=seed, env_id=plan.env_id, robot=plan.robot,
                        render_size=plan.render_size, tags=list(plan.tags), chunk_frames=plan.chunk_frames,
                        plain=plan.plain, views=plan.views)
    return ep.id


class _Run:
    """The run folder of one plan: its manifest and the staged episodes in it."""

    def __init__(self, lib: Library, plan: SimPlan) -> None:
        self.lib, self.plan = lib, plan
        self.dir = lib.staging_dir / f"{RUN_PREFIX}{plan.key()}"
        self.lock = FileLock(lib.lock_path(self.dir.name))
        self.seeds: dict[int, str] = {}

    def load(self) -> None:
        path = self.dir / MANIFEST
        if path.is_file():
            try:
                self.seeds = {int(s): str(i) for s, i in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError) as e:
                raise InputError(f"unreadable ({e})", file=path, field="seeds",
                                 expected="a JSON object of seed -> episode id") from None

    def name(self, seed: int, episode_id: str) -> None:
        self.seeds[seed] = episode_id
        atomic_write_json(self.dir / MANIFEST, {str(s): i for s, i in sorted(self.seeds.items())})

    def committed(self, seed: int) -> bool:
        return seed in self.seeds and (self.lib.episodes_dir / self.seeds[seed]).is_dir()

    def finish_named(self) -> list[Episode]:
        """Commit episodes a killed driver had named but not committed (finalized in staging)."""
        out = []
        for seed, eid in sorted(self.seeds.items()):
            staged = self.dir / eid
            if not self.committed(seed) and (staged / "meta.json").is_file():
                out.append(self.lib.commit_staged(staged))
        return out

    def clear_unnamed(self) -> None:
        """Remove staged folders no seed names (a killed worker's or driver's partial episodes)."""
        named = set(self.seeds.values())
        for d in self.dir.iterdir():
            if d.is_dir() and d.name not in named:
                shutil.rmtree(d, ignore_errors=True)


def record_sim_batch(lib: Library, plan: SimPlan, seeds: Sequence[int], *, ray: str | None = None,
                     resume: bool = False, progress: bool = True,
                     on_commit: Callable[[int, Episode], None] | None = None,
                     stream=None) -> BatchReport:
    """Record one episode per seed (``ray``: as Ray tasks, None: here), committing each as it
    arrives; ``resume`` skips seeds an interrupted run with the same plan committed. Failures are
    reported by seed (``seed 7``) and the others go on."""
    out = stream or sys.stderr
    run = _Run(lib, plan)
    try:
        run.lock.acquire(timeout=0)
    except Timeout:
        raise InputError("a recording with these settings is running on this library", file=run.dir,
                         field="record", expected="one recording run per settings at a time") from None
    try:
        run.dir.mkdir(parents=True, exist_ok=True)
        run.load()
        if resume:
            for ep in run.finish_named():
                print(f"--resume: committed {ep.id}, staged by the interrupted run", file=out)
        else:   # named but never committed (a killed driver's): recorded again, not committed late
            run.seeds = {s: i for s, i in run.seeds.items() if run.committed(s)}
        run.clear_unnamed()
        done = [s for s in seeds if run.committed(s)] if resume else []
        if done:
            print(f"--resume: {len(done)} of {len(seeds)} seed(s) already committed; skipped", file=out)
        todo = [s for s in seeds if s not in done]

        def commit(key: str, episode_id: str) -> Episode:
            seed = int(key.split()[-1])
            run.name(seed, episode_id)
            ep = run.lib.commit_staged(run.dir / episode_id)
            if on_commit is not None:
                on_commit(seed, ep)
            return ep

        key, args = (lambda s: f"seed {s}"), (lambda s: (str(lib.path), str(run.dir), plan, s))
        if ray:
            from robot_irl.core.cluster import RayCluster
            with RayCluster.start(ray, stream=out) as cluster:
                report = cluster.map(stage_sim_episode, todo, key=key, args=args, commit=commit, verb="recorded",
                                     unit="ep", progress=progress)
        else:
            report = BatchReport("recorded", stream=out)
            try:
                for s in todo:
                    with report.item(key(s)):
                        report.ok(key(s), commit(key(s), stage_sim_episode(*args(s))))
            finally:
                release_env()
        run.clear_unnamed()   # partial episodes of killed workers; the manifest stays for a later --resume
        return report
    finally:
        run.lock.release()
