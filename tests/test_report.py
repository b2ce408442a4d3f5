"""The stage runner and the HTML report."""
import json

import numpy as np
import pytest

from robot_irl.errors import InputError
from robot_irl.quickstart.pipeline import Context, Stage, StageError, run_stages
from robot_irl.report import build_report
from robot_irl.report.media import write_gif


def test_stages_run_skip_and_report(tmp_path):
    calls = []

    def first(ctx):
        calls.append("first")
        write_gif([np.full((20, 30, 3), i * 20, np.uint8) for i in range(5)], ctx.path("media", "a.gif"))
        return {"answer": 42.5, "images": {"a gif": "media/a.gif"}, "tables": {"t": [{"k": 1, "v": 2.0}]}}

    def second(ctx):
        calls.append("second")
        return {"uses_first": ctx.results["first"]["answer"] * 2}

    stages = [Stage("first", "First stage", first), Stage("second", "Second stage", second)]
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "order.json").write_text(json.dumps(["first", "second"]))
    res = run_stages(stages, Context(out=tmp_path))
    assert res["second"]["uses_first"] == 85.0
    run_stages(stages, Context(out=tmp_path))
    assert calls == ["first", "second"]            # second run skipped both
    run_stages(stages, Context(out=tmp_path), force=True)
    assert calls == ["first", "second", "first", "second"]
    html = build_report(tmp_path).read_text()
    assert "42.5" in html and "85" in html and "data:image/gif;base64," in html and "Second stage" in html


def test_failing_stage_is_named_and_earlier_outputs_kept(tmp_path):
    def ok(ctx):
        return {"x": 1}

    def boom(ctx):
        raise RuntimeError("disk on fire")

    with pytest.raises(StageError, match="stage 'boom' failed.*disk on fire"):
        run_stages([Stage("ok", "OK", ok), Stage("boom", "Boom", boom)], Context(out=tmp_path))
    assert (tmp_path / "stages" / "ok.json").exists()
    assert "disk on fire" in (tmp_path / "stages" / "boom.error.txt").read_text()
    assert "Boom" not in build_report(tmp_path).read_text()


def test_report_without_stages_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no stage results"):
        build_report(tmp_path)


def test_report_is_readable_by_others_as_the_umask_allows(tmp_path):
    import os
    import stat

    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "one.json").write_text(json.dumps({"title": "One", "x": 1}))
    old = os.umask(0o022)
    try:
        assert stat.S_IMODE(build_report(tmp_path).stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(build_report(tmp_path).stat().st_mode) == 0o600
    finally:
        os.umask(old)
