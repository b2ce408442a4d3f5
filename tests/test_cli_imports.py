"""Package exports load on first use: every exported name resolves, and registering the CLI
(what `robot-irl --help` does) loads neither torch nor open_clip."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY_PACKAGES = ("robot_irl.retrieval", "robot_irl.irl", "robot_irl.models")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_export_resolves(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert getattr(pkg, name) is value  # kept on the package after the first read
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        pkg.not_a_name  # noqa: B018


def test_cli_registration_loads_no_torch():
    code = ("import sys; from robot_irl.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'open_clip', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
