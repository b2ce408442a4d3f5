"""The command line's shared behaviour (issue 19): fast answers before heavy imports, a quiet
PyBullet import, and the command table the top level lists without importing any stage."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from robot_irl import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "scipy", "cv2", "torch", "gymnasium", "pybullet", "matplotlib")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_command_table_matches_what_the_modules_register():
    for module in cli.STAGES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered = {a.dest: a.help for a in sub._choices_actions}
        listed = {name: text for name, (mod, text) in cli.COMMANDS.items() if mod == module}
        assert registered == listed, module


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_import_no_stage(argv):
    code = (f"import sys\nfrom robot_irl import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit as e:\n"
            f"    print('exit', e.code)\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = _python(code)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
    if argv == ["--version"]:
        assert r.stdout.startswith("robot-irl ")
    if argv == ["--help"]:
        assert all(name in r.stdout for name in cli.COMMANDS)


def test_search_missing_image_refused_before_heavy_imports(tmp_path):
    code = ("import sys\nfrom robot_irl import cli\ntry:\n    cli.main(['search', '--image', 'nosuch.png'])\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print(sorted(m for m in ('torch', 'cv2', 'scipy', 'open_clip') if m in sys.modules))")
    r = _python(code)
    assert "exit 2" in r.stdout and r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
    assert "--image: nosuch.png: no such file" in r.stderr


def test_clip_minutes_zero_names_the_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["clip", "train", "--minutes", "0"])
    assert e.value.code == 2
    assert "argument --minutes: 0 is not > 0" in capsys.readouterr().err


def test_unknown_command_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["trian"])
    err = capsys.readouterr().err
    assert "invalid choice: 'trian'" in err and "'train'" in err


def test_pybullet_import_prints_nothing():
    r = _python("import sim.bullet, sim.scene, sim.camera; import pybullet; print('ok')")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n" and "build time" not in r.stderr, (r.stdout, r.stderr)


def test_sim_list_reads_as_a_listing_and_json_only_with_the_flag():
    import json

    r = subprocess.run([sys.executable, "-m", "robot_irl.cli", "sim", "list"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("env ids:") and "robot_irl/Place-v0" in r.stdout and "{" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "robot_irl.cli", "sim", "list", "--json"], capture_output=True, text=True,
                       cwd=ROOT)
    assert "robot_irl/Place-v0" in json.loads(r.stdout)["env_ids"]
    assert "build time" not in r.stderr


def test_clip_figures_explain_chance_above_the_untrained_model():
    from robot_irl.retrieval.cli import chance_notes

    fig = {"chance_text_recall5": 0.992, "random_text_recall5": 0.875, "chance_image_recall1": 0.1,
           "random_image_recall1": 0.2, "baseline": "random init", "episodes": 12}
    notes = chance_notes(fig)
    assert len(notes) == 2
    assert notes[0].startswith("text R@5: chance (0.992) is above the random init model (0.875)")
    assert "chance is 0.992 with 12 episodes" in notes[1]
    assert chance_notes({**fig, "chance_text_recall5": 0.3}) == []


def test_tables_use_three_significant_digits():
    from robot_irl.cliargs import fmt3, format_table

    assert [fmt3(v) for v in (0.000284, 3.14159, 45.35, 1234.4, 7, "x")] == ["0.000284", "3.14", "45.4", "1234", "7", "x"]
    assert format_table(["demos", "err"], [["train", 0.28412], ["test", 15.234]]).splitlines() == [
        "demos    err", "train  0.284", "test    15.2"]


def test_search_checks_its_library_and_filter_before_torch(tmp_path):
    code = ("import sys\nfrom robot_irl.cli import main\n"
            f"rcs = [main(['search', 'red cube', '--library', {str(tmp_path / 'nolib')!r}]), main(['search'])]\n"
            "print(rcs, 'torch' in sys.modules)")
    r = _python(code)
    assert r.stdout.strip().splitlines()[-1] == "[2, 2] False", r.stdout + r.stderr
    assert "nothing to search for" in r.stderr


def test_pyproject_license_is_an_spdx_expression():
    """A `license = {text = ...}` table makes setuptools >= 77 print a deprecation warning block on every
    install (the set-up log); the SPDX string form needs setuptools >= 77 to build."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    assert "setuptools>=77" in data["build-system"]["requires"]


def test_arm_serve_help_describes_its_options_and_how_to_connect(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["arm", "serve", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "--port" in out and "--hold-after" in out and "--arm loopback --arm-opt endpoint=" in out
