"""Sim recording as a resumable batch with one writer (robot_irl.record.sim_batch), without Ray:
what a killed driver or worker leaves in the run's staging folder is committed once or removed."""
from __future__ import annotations

import json

from robot_irl.library import Library
from robot_irl.record.sim_batch import MANIFEST, SimPlan, _Run, record_sim_batch, release_env, stage_sim_episode

PLAN = SimPlan(env_id="robot_irl/Place-v0", render_size=(320, 240))


def test_resume_commits_a_named_staged_episode_once_and_drops_a_partial_one(tmp_path, capsys):
    lib = Library.open(tmp_path / "lib", create=True)
    run = _Run(lib, PLAN)
    run.dir.mkdir(parents=True)
    # a driver killed after naming seed 3's episode, before committing it ...
    staged = stage_sim_episode(str(lib.path), str(run.dir), PLAN, 3)
    release_env()
    run.name(3, staged)
    # ... and a worker killed mid-episode (a folder no seed names)
    partial = run.dir / "20261130-000000-sim-partial-0000"
    partial.mkdir()
    (partial / "recording.json").write_text("{}")

    report = record_sim_batch(lib, PLAN, [3, 4], resume=True, progress=False)
    assert not report.failed and list(report.done) == ["seed 4"]      # seed 3 was not recorded again
    assert f"--resume: committed {staged}" in capsys.readouterr().err
    by_seed = {ep.meta["seed"]: ep.id for ep in lib.select()}
    assert by_seed[3] == staged and set(by_seed) == {3, 4} and len(lib.ids()) == 2
    assert not partial.exists()
    assert json.loads((run.dir / MANIFEST).read_text()) == {"3": staged, "4": by_seed[4]}
    assert [p.name for p in run.dir.iterdir()] == [MANIFEST]

    # --resume again: both committed, nothing recorded
    again = record_sim_batch(lib, PLAN, [3, 4], resume=True, progress=False)
    assert again.done == {} and len(lib.ids()) == 2
