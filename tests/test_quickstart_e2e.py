"""The quickstart end to end at its --fast size, and its report in headless Chromium."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from robot_irl.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    assert main(["quickstart", "--out", str(out), "--fast"]) == 0
    return out


def test_every_stage_wrote_measured_figures(quickstart_run):
    order = json.loads((quickstart_run / "stages" / "order.json").read_text())
    assert order[:2] == ["record", "extract"]
    for name in order:
        stage = json.loads((quickstart_run / "stages" / f"{name}.json").read_text())
        assert stage["seconds"] > 0
        numbers = [v for v in stage.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert len(numbers) >= 3, name
    run = json.loads((quickstart_run / "stages" / "run.json").read_text())
    assert run["max_sent_step_rad"] <= 0.05 + 1e-9


def test_fast_mode_reaches_its_figures(quickstart_run):
    """What --fast must reach (measured 00:15 UTC 2026-11-30 with margin: extraction median 6.0 mm;
    timedep held-out path 1.08 cm vs the default cost's 9.19; 4/4 goals within 2 cm, median 1.5 cm;
    CLIP text R@5 1.0 against chance 0.46; a second run 00:41 passed the same bounds)."""
    stage = {n: json.loads((quickstart_run / "stages" / f"{n}.json").read_text())
             for n in ("extract", "learn", "run", "clip")}
    assert stage["extract"]["median_3d_err_mm"] < 10.0
    assert stage["learn"]["timedep_test_path_err_cm"] < 0.5 * stage["learn"]["default_test_path_err_cm"]
    assert stage["run"]["success_rate"] >= 0.75 and stage["run"]["median_final_err_cm"] < 2.0
    clip = stage["clip"]   # image R@1 is not asserted: 1.0 in one run, 0.40 (chance 0.42) in the next, its
    assert clip["text_recall5"] >= clip["chance_text_recall5"] + 0.2   # 25 s of training fewer steps under load


def test_rerun_skips_finished_stages(quickstart_run, capsys):
    before = (quickstart_run / "stages" / "record.json").read_text()
    assert main(["quickstart", "--out", str(quickstart_run), "--fast"]) == 0
    assert (quickstart_run / "stages" / "record.json").read_text() == before
    assert "skipped" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(quickstart_run, tmp_path):
    report = quickstart_run / "report.html"
    user = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *user, "--dump-dom", report.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    order = json.loads((quickstart_run / "stages" / "order.json").read_text())
    for name in order:
        section = re.search(rf"<section id=\"{name}\">(.*?)</section>", dom, re.S)
        assert section, f"section {name} missing"
        assert re.search(r"<td>-?\d+(\.\d+)?(e-?\d+)?</td>", section.group(1)), f"no numbers in {name}"
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *user, "--window-size=1200,3000", f"--screenshot={shot}",
                    report.as_uri()], capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.std() > 10   # real content, not a blank page
