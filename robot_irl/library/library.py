"""A demo library: a folder of episodes, a catalog over them, and the locks that let several
processes (a recorder, an extractor, a reader) use it at once.

Layout (demos/README.md has the full format)::

    <library>/library.json      format name and schema_version
    <library>/catalog.sqlite    SQLite (WAL) summaries; a cache rebuilt from episodes/ at will
    <library>/episodes/<id>/    one committed episode each: the truth
    <library>/staging/<id>/     recordings in progress, or killed ones awaiting `demos repair`
    <library>/locks/            lock files (library lock, one per recording, one per episode's derived data)
"""
from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from robot_irl.core.io import atomic_write_json
from robot_irl.core.spec import KeypointSpec
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.library.catalog import Catalog, summary
from robot_irl.library.episode import Episode
from robot_irl.library.location import resolve_library_path
from robot_irl.library.query import parse_query
from robot_irl.library.schema import (LIBRARY_FORMAT, LIBRARY_MIGRATIONS, MIGRATIONS, SCHEMA_VERSION, check_version,
                                      read_json)
from robot_irl.library.writer import RECORDING, EpisodeWriter, finalize, new_info


BATCH_COMMIT = "COMMIT"


class Batch:
    """Episodes staged together by :meth:`Library.batch`; they enter the library all at once."""

    def __init__(self, library: "Library", root: Path) -> None:
        self.library, self.root = library, root
        self.writers: list[EpisodeWriter] = []
        self.episodes: list[Episode] = []    # set when the batch is committed

    @property
    def ids(self) -> list[str]:
        return [w.id for w in self.writers]

    def writer(self, *, task: str, source: str, fps: float, kind: str = "demo", robot: str | None = None,
               env: str | None = None, seed: int | None = None, variant: Mapping[str, Any] | None = None,
               tags: list[str] | None = None, keypoint_spec: KeypointSpec | None = None,
               extra: Mapping[str, Any] | None = None, chunk_frames: int = 150,
               flush_seconds: float = 2.0) -> EpisodeWriter:
        """As :meth:`Library.writer`; ``commit`` finalizes the episode inside the batch only."""
        w = self.library._start(self.root, lambda staged: Episode(staged, None), task=task, source=source,
                                fps=fps, kind=kind, robot=robot, env=env, seed=seed, variant=variant, tags=tags,
                                keypoint_spec=keypoint_spec, extra=extra, chunk_frames=chunk_frames,
                                flush_seconds=flush_seconds)
        self.writers.append(w)
        return w


@dataclass
class RepairReport:
    recovered: dict[str, list[str]] = field(default_factory=dict)   # id -> what was kept / lost
    skipped: dict[str, str] = field(default_factory=dict)           # id -> why it was left alone
    removed: dict[str, str] = field(default_factory=dict)           # id -> why an empty staging folder went
    problems: list[InputError] = field(default_factory=list)        # committed episodes that do not validate
    batches: dict[str, str] = field(default_factory=dict)           # import batch -> finished or removed


def new_episode_id(source: str, task: str, when: dt.datetime) -> str:
    """Readable and unique: UTC time, source, a slug of the task, 4 random hex digits."""
    slug = ""
    for word in re.findall(r"[a-z0-9]+", task.lower()):
        if slug and len(slug) + 1 + len(word) > 24:
            break
        slug = f"{slug}-{word}" if slug else word[:24]
    slug = slug or "episode"
    return f"{when:%Y%m%d-%H%M%S}-{source}-{slug}-{secrets.token_hex(2)}"


class Library:
    def __init__(self, path: str | Path) -> None:
        """Bind an existing library (a str or Path); :meth:`open` also checks its version, migrates
        and syncs it, and can create one. The catalog is synced on the first query either way."""
        self.path = Path(path)
        self.catalog = Catalog(self.path / "catalog.sqlite")
        self.problems: list[InputError] = []
        self._synced = False

    # --- opening ---
    @classmethod
    def open(cls, path: str | Path | None = None, *, create: bool = False) -> "Library":
        """Open the library at ``path`` (default: ``$ROBOT_IRL_LIBRARY`` or the per-user default).

        ``create`` makes a new library when the folder is missing or empty; a folder that holds
        other files and no ``library.json`` is refused rather than written into."""
        root = resolve_library_path(path)
        if root.exists() and not root.is_dir():
            raise InputError("library path is a file", file=root, field="library",
                             expected="a folder (or a path where one can be created)")
        info = root / "library.json"
        if not info.exists():
            if not create:
                raise InputError("no robot-irl library here", file=root, field="library",
                                 expected="a folder made by `robot-irl record` (or pass --library)")
            if root.is_dir() and any(root.iterdir()):
                raise InputError("folder is not empty and has no library.json", file=root, field="library",
                                 expected="an empty or missing folder for a new library")
            root.mkdir(parents=True, exist_ok=True)
            for sub in ("episodes", "staging", "locks"):
                (root / sub).mkdir(exist_ok=True)
            atomic_write_json(info, {"format": LIBRARY_FORMAT, "schema_version": SCHEMA_VERSION})
        raw = read_json(info, "library.json")
        data = check_version(raw, info, LIBRARY_MIGRATIONS)
        if data.get("format") != LIBRARY_FORMAT:
            raise InputError(f"format is {data.get('format')!r}", file=info, field="format",
                             expected=repr(LIBRARY_FORMAT))
        for sub in ("episodes", "staging", "locks"):
            if not (root / sub).is_dir():
                raise InputError("missing folder", file=root / sub, field="library", expected="a folder")
        lib = cls(root)
        if raw["schema_version"] != SCHEMA_VERSION:
            lib._migrate()
        lib._settle_batches()
        lib.sync()
        return lib

    def _migrate(self) -> None:
        """Rewrite an older library at :data:`SCHEMA_VERSION` in place, under the library lock.

        Crash-safe: the catalog is first copied to ``catalog.v<N>.sqlite`` (kept as the backup),
        every episode's meta.json is replaced by one atomic rename, and library.json is written
        last, so a migration killed halfway is finished by the next open (readers migrate a
        not-yet-rewritten meta.json in memory meanwhile)."""
        info = self.path / "library.json"
        with self._lock():
            raw = read_json(info, "library.json")
            old = raw["schema_version"]
            if old == SCHEMA_VERSION:
                return
            backup = self.path / f"catalog.v{old}.sqlite"
            if (self.path / "catalog.sqlite").exists() and not backup.exists():
                self.catalog.backup(backup)
            for d in sorted(self.episodes_dir.iterdir()):
                meta = d / "meta.json"
                if not d.is_dir() or d.name.startswith(".") or not meta.is_file():
                    continue
                try:
                    data = read_json(meta, "episode meta.json")
                    if isinstance(data.get("schema_version"), int) and data["schema_version"] < SCHEMA_VERSION:
                        with FileLock(self.lock_path(f"{d.name}.meta")):
                            atomic_write_json(meta, check_version(data, meta, MIGRATIONS))
                except InputError as e:   # left as is; sync reports it like any broken episode
                    self.problems.append(e)
            atomic_write_json(info, check_version(raw, info, LIBRARY_MIGRATIONS))

    @property
    def episodes_dir(self) -> Path:
        return self.path / "episodes"

    @property
    def staging_dir(self) -> Path:
        return self.path / "staging"

    def lock_path(self, name: str) -> Path:
        return self.path / "locks" / f"{name}.lock"

    def _lock(self) -> FileLock:
        return FileLock(self.lock_path("library"), timeout=60)

    # --- catalog ---
    def sync(self, *, full: bool = False) -> list[InputError]:
        """Bring the catalog in line with the episode folders; returns (and keeps in
        ``self.problems``) the errors of folders that do not validate. ``full`` re-reads every
        episode, as after deleting catalog.sqlite."""
        full = self.catalog.ensure() or full
        stamps = {} if full else self.catalog.stamps()
        on_disk: dict[str, int] = {}
        for d in self.episodes_dir.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                try:
                    on_disk[d.name] = (d / "meta.json").stat().st_mtime_ns
                except FileNotFoundError:
                    on_disk[d.name] = -1
        problems, rows = [], []
        for eid, stamp in sorted(on_disk.items()):
            if stamps.get(eid) == stamp:
                continue
            try:
                ep = Episode(self.episodes_dir / eid, self)
            except InputError as e:
                e.episode_id = eid   # type: ignore[attr-defined]  # so commands can name `demos rm <id>`
                problems.append(e)
                continue
            rows.append(summary(ep.meta, ep.derived(), stamp))
        self.catalog.upsert(rows)
        known = self.catalog.stamps() if full else stamps
        bad = {getattr(e, "episode_id", None) for e in problems}
        self.catalog.delete([eid for eid in known if eid not in on_disk or eid in bad])
        self.problems = problems
        self._synced = True
        return problems

    def verify(self, ids: Iterable[str]) -> list[InputError]:
        """Re-validate these episodes against their files (a stat per chunk, no decoding): one whose
        file was truncated or removed behind the catalog's back leaves the catalog and is returned
        (and added to ``problems``), as `demos repair` would report it."""
        found = []
        for eid in ids:
            try:
                Episode(self.episodes_dir / eid, None)
            except InputError as e:
                e.episode_id = eid   # type: ignore[attr-defined]
                found.append(e)
        self.catalog.delete([e.episode_id for e in found])  # type: ignore[attr-defined]
        self.problems.extend(found)
        return found

    def rebuild_catalog(self) -> list[InputError]:
        return self.sync(full=True)

    # --- selecting ---
    def rows(self, query: str | None = None) -> list[dict[str, Any]]:
        """Catalog summaries of the episodes ``query`` selects (see robot_irl.library.query)."""
        if not self._synced:
            self.sync()
        return parse_query(query).filter(self.catalog.rows())

    def select(self, query: str | None = None) -> list[Episode]:
        return [self.episode(r["id"]) for r in self.rows(query)]

    def ids(self) -> list[str]:
        if not self._synced:
            self.sync()
        return [r["id"] for r in self.catalog.rows()]

    def episode(self, episode_id: str) -> Episode:
        """The episode with exactly this id."""
        root = self.episodes_dir / episode_id
        if "/" in episode_id or episode_id.startswith(".") or not root.is_dir():
            raise UnknownNameError("episode id", episode_id, self.ids(), file=self.path)
        return Episode(root, self)

    # --- recording ---
    def writer(self, *, task: str, source: str, fps: float, kind: str = "demo", robot: str | None = None,
               env: str | None = None, seed: int | None = None, variant: Mapping[str, Any] | None = None,
               tags: list[str] | None = None,
               keypoint_spec: KeypointSpec | None = None, extra: Mapping[str, Any] | None = None,
               chunk_frames: int = 150, flush_seconds: float = 2.0) -> EpisodeWriter:
        """Start recording a new episode (see :class:`EpisodeWriter`). A chunk is flushed every
        ``chunk_frames`` frames/rows or ``flush_seconds``, bounding what a crash can lose.
        ``kind`` is "demo" (a demonstration), "run" (a learned policy's run) or "explore" (the arm
        moved through exploration plans); runs and exploration stay out of demo queries unless
        they ask for ``kind:run`` / ``kind:explore``."""
        return self._start(self.staging_dir, self._adopt, task=task, source=source, fps=fps, kind=kind, robot=robot,
                           env=env, seed=seed, variant=variant, tags=tags, keypoint_spec=keypoint_spec, extra=extra,
                           chunk_frames=chunk_frames, flush_seconds=flush_seconds)

    def _start(self, parent: Path, adopt: Callable[[Path], Episode], *, task: str, source: str, fps: float,
               kind: str, robot: str | None, env: str | None, seed: int | None, variant: Mapping[str, Any] | None,
               tags: list[str] | None, keypoint_spec: KeypointSpec | None, extra: Mapping[str, Any] | None,
               chunk_frames: int, flush_seconds: float) -> EpisodeWriter:
        """A writer staging in ``parent/<new id>`` that hands the finalized folder to ``adopt``."""
        if chunk_frames < 1 or flush_seconds <= 0:
            raise InputError(f"chunk_frames={chunk_frames}, flush_seconds={flush_seconds}", field="chunk_frames",
                             expected="chunk_frames >= 1 and flush_seconds > 0")
        when = dt.datetime.now(dt.timezone.utc)
        new_info(episode_id="check", task=task, source=source, kind=kind, fps=fps, robot=robot, env=env,
                 seed=seed, variant=variant, tags=tags, keypoint_spec=keypoint_spec, extra=extra)
        # The recording lock is taken before the staging folder exists, so `demos repair` (which
        # removes unlocked empty staging folders) never sees a folder whose recorder is starting.
        with self._lock():
            while True:
                eid = new_episode_id(source, task, when)
                if (self.episodes_dir / eid).exists() or (parent / eid).exists():
                    continue
                rec_lock = FileLock(self.lock_path(f"{eid}.rec"))
                rec_lock.acquire()
                try:
                    (parent / eid).mkdir()
                    break
                except BaseException:
                    rec_lock.release()
                    raise
        info = new_info(episode_id=eid, task=task, source=source, kind=kind, fps=fps, robot=robot, env=env,
                        seed=seed, variant=variant, tags=tags, keypoint_spec=keypoint_spec, extra=extra)
        try:
            return EpisodeWriter(self, parent / eid, info, chunk_frames=chunk_frames,
                                 flush_seconds=flush_seconds, lock=rec_lock,
                                 adopt=adopt)
        except BaseException:
            rec_lock.release()
            shutil.rmtree(parent / eid)
            raise

    def commit_staged(self, staged: Path) -> Episode:
        """Commit an episode finalized in a staging folder of this library by another process (a
        Ray worker writing through :class:`Batch`): one rename into episodes/ plus the catalog.
        The driver alone calls this, so the library has one writer however many workers record."""
        if self.staging_dir.resolve() not in staged.resolve().parents:
            raise InputError("not in this library's staging area", file=staged, field="staged",
                             expected=f"a folder under {self.staging_dir}")
        return self._adopt(staged)

    def _adopt(self, staged: Path) -> Episode:
        """Validate a finalized staging folder and move it into episodes/ (one rename) + catalog."""
        Episode(staged, None)
        target = self.episodes_dir / staged.name
        with self._lock():
            if target.exists():
                raise InputError("an episode with this id exists", file=target, field="id", expected="a new id")
            os.rename(staged, target)
            ep = Episode(target, self)
            self.catalog.upsert([summary(ep.meta, ep.derived(), (target / "meta.json").stat().st_mtime_ns)])
        return ep

    # --- all-or-nothing batches (imports) ---
    @contextmanager
    def batch(self) -> Iterator["Batch"]:
        """Stage several episodes and add them all or none: ``with lib.batch() as b: b.writer(...)``.

        Episodes are staged in a hidden ``staging/.batch-<token>/`` that `demos repair` never
        adopts piecemeal. Leaving the block normally writes ``COMMIT`` (the one commit point) and
        moves every episode into episodes/; an exception or a killed process before that point
        leaves the library as it was (the folder is removed now, or by the next open/repair), and a
        process killed after it has its moves finished by the next open/repair."""
        root = self.staging_dir / f".batch-{secrets.token_hex(6)}"
        lock = FileLock(self.lock_path(root.name))
        lock.acquire()
        try:
            root.mkdir()
            b = Batch(self, root)
            try:
                yield b
            except BaseException:
                for w in b.writers:
                    w.abort()
                shutil.rmtree(root, ignore_errors=True)
                raise
            for w in b.writers:
                if not w.committed:
                    w.commit()
            atomic_write_json(root / BATCH_COMMIT, {"ids": b.ids})
            b.episodes = self._finish_batch(root)
        finally:
            lock.release()

    def _finish_batch(self, root: Path) -> list[Episode]:
        """Move a committed batch's episodes into episodes/ (idempotent: a rerun after a crash
        skips the ones already moved), refresh the catalog, remove the batch folder."""
        ids = read_json(root / BATCH_COMMIT, "batch COMMIT")["ids"]
        with self._lock():
            for eid in ids:
                if (root / eid).is_dir() and not (self.episodes_dir / eid).exists():
                    os.rename(root / eid, self.episodes_dir / eid)
            eps = [Episode(self.episodes_dir / eid, self) for eid in ids]
            self.catalog.upsert([summary(e.meta, e.derived(), (e.path / "meta.json").stat().st_mtime_ns)
                                 for e in eps])
        shutil.rmtree(root)
        return eps

    def _settle_batches(self) -> dict[str, str]:
        """Finish committed batches of dead processes and remove uncommitted ones; live ones stay."""
        out = {}
        for d in sorted(self.staging_dir.glob(".batch-*")):
            lock = FileLock(self.lock_path(d.name))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                if (d / BATCH_COMMIT).is_file():
                    out[d.name] = f"finished: {len(self._finish_batch(d))} episode(s) added"
                else:
                    shutil.rmtree(d)
                    out[d.name] = "removed: its process died before the batch was committed"
            finally:
                lock.release()
        return out

    # --- removing ---
    def remove(self, ids: Iterable[str]) -> list[str]:
        """Remove exactly the named episodes. Every id must name an existing episode, else nothing
        is removed; no pattern, prefix or index ever widens the set."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise InputError("no episode ids given", field="ids", expected="one or more exact episode ids")
        with self._lock():
            on_disk = {d.name for d in self.episodes_dir.iterdir() if d.is_dir()}
            for eid in ids:
                if eid not in on_disk:
                    raise UnknownNameError("episode id", eid, sorted(on_disk), file=self.path)
            trash = self.staging_dir / f".trash-{secrets.token_hex(4)}"
            trash.mkdir()
            for eid in ids:
                os.rename(self.episodes_dir / eid, trash / eid)
            self.catalog.delete(ids)
        shutil.rmtree(trash)
        return ids

    # --- repair ---
    def staged(self) -> list[tuple[str, bool]]:
        """Recordings in staging and whether each is still being written by a live process."""
        out = []
        for d in sorted(self.staging_dir.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                lock = FileLock(self.lock_path(f"{d.name}.rec"))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    out.append((d.name, True))
                    continue
                lock.release()
                out.append((d.name, False))
        return out

    def repair(self) -> RepairReport:
        """Recover every recording left in staging by a dead process up to its last flushed chunk,
        finish interrupted removals, and rebuild the catalog from the episode folders."""
        report = RepairReport()
        report.batches = self._settle_batches()
        for d in self.staging_dir.iterdir():
            if d.is_dir() and d.name.startswith(".trash-"):
                shutil.rmtree(d)
        for eid, active in self.staged():
            root = self.staging_dir / eid
            if active:
                report.skipped[eid] = "still recording (its process holds the lock)"
                continue
            lock = FileLock(self.lock_path(f"{eid}.rec"))
            with lock.acquire(timeout=0):
                if not (root / RECORDING).exists() and not (root / "meta.json").exists():
                    if any(root.iterdir()):
                        report.skipped[eid] = "neither recording.json nor meta.json: left for a person to inspect"
                    else:
                        root.rmdir()
                        report.removed[eid] = "empty: the recorder stopped before writing anything"
                    continue
                try:
                    fin = finalize(root, recovered=True)
                    self._adopt(root)
                except Exception as e:  # noqa: BLE001 - one bad recording must not stop the others' repair
                    report.skipped[eid] = f"cannot recover: {e}"
                    continue
                report.recovered[eid] = fin.kept + fin.lost
        report.problems = self.rebuild_catalog()
        return report
