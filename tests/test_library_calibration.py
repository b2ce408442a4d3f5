"""Storing a camera calibration into a committed episode: validated, atomic, catalog consistent."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot_irl.core.camera import CameraModel, look_at
from robot_irl.errors import InputError
from robot_irl.library import Library
from test_library_core import H, W, synth_episode


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library.open(tmp_path / "lib", create=True)


def calibrated() -> CameraModel:
    K = np.array([[61.5, 0, 31.7], [0, 60.9, 24.2], [0, 0, 1]])
    T = look_at(np.array([1.0, 0.2, 0.8]), np.array([0.4, 0.0, 0.1]))
    return CameraModel(K=K, size=(W, H), T_base_cam=T, dist=np.array([0.11, -0.2, 0.001, 0.002, 0.05]))


def test_update_camera_model_round_trips_and_keeps_the_rest(lib: Library) -> None:
    ep = synth_episode(lib, n=6)
    other = synth_episode(lib, n=3)
    before = json.loads((ep.path / "meta.json").read_text())
    other_meta = (other.path / "meta.json").read_bytes()
    model = calibrated()
    cal = {**model.to_dict(), "rms_px": 0.31, "views": 24, "source": "/data/charuco.mp4"}   # Calibration.to_dict() style
    ep.update_camera_model("cam0", model, cal)
    again = Library.open(lib.path).episode(ep.id)
    got = again.camera_model("cam0")
    np.testing.assert_allclose(got.K, model.K)
    np.testing.assert_allclose(got.dist, model.dist)
    np.testing.assert_allclose(got.T_base_cam, model.T_base_cam)
    rec = again.calibration("cam0")
    assert rec["rms_px"] == 0.31 and rec["source"] == "/data/charuco.mp4" and rec["views"] == 24 and "updated" in rec
    assert "K" not in rec            # the model is stored once
    after = json.loads((ep.path / "meta.json").read_text())
    after["cameras"]["cam0"].pop("model"), after["cameras"]["cam0"].pop("calibration")
    before["cameras"]["cam0"].pop("model")
    assert after == before                                       # nothing else changed
    assert (other.path / "meta.json").read_bytes() == other_meta
    assert not lib.sync() and {r["id"] for r in lib.rows()} == {ep.id, other.id}
    stamps = lib.catalog.stamps()
    assert stamps[ep.id] == (ep.path / "meta.json").stat().st_mtime_ns    # catalog refreshed, no stale row
    again.validate()


@pytest.mark.parametrize("change, field", [
    (lambda m: setattr(m, "size", (W + 1, H)), "cameras.cam0.model.size"),
    (lambda m: m.K.__setitem__((0, 0), -5.0), "cameras.cam0.model.K"),
    (lambda m: m.K.__setitem__((1, 2), np.nan), "cameras.cam0.model.K"),
    (lambda m: setattr(m, "dist", np.zeros(3)), "cameras.cam0.model.dist"),
    (lambda m: m.T_base_cam.__setitem__((0, 0), 2.0), "cameras.cam0.model.T_base_cam"),
])
def test_bad_models_are_refused_and_meta_untouched(lib: Library, change, field) -> None:
    ep = synth_episode(lib, n=3)
    raw = (ep.path / "meta.json").read_bytes()
    m = calibrated()
    change(m)
    with pytest.raises(InputError) as e:
        ep.update_camera_model("cam0", m)
    assert e.value.field == field and "meta.json" in str(e.value.file)
    assert (ep.path / "meta.json").read_bytes() == raw


@pytest.mark.parametrize("cal, field", [
    ({"rms_px": -1.0}, "cameras.cam0.calibration.rms_px"),
    ({"rms_px": "low"}, "cameras.cam0.calibration.rms_px"),
    ({"source": 3}, "cameras.cam0.calibration.source"),
    ({"K": np.eye(3).tolist()}, "cameras.cam0.calibration.K"),
    ({"when": object()}, "cameras.cam0.calibration"),
])
def test_bad_calibration_records_are_refused(lib: Library, cal, field) -> None:
    ep = synth_episode(lib, n=3)
    raw = (ep.path / "meta.json").read_bytes()
    with pytest.raises(InputError) as e:
        ep.update_camera_model("cam0", calibrated(), cal)
    assert e.value.field == field
    assert (ep.path / "meta.json").read_bytes() == raw


def test_unknown_camera_and_detached_episode(lib: Library) -> None:
    ep = synth_episode(lib, n=3)
    with pytest.raises(InputError):
        ep.update_camera_model("cam9", calibrated())
    from robot_irl.library import Episode
    with pytest.raises(InputError):
        Episode(ep.path).update_camera_model("cam0", calibrated())


def test_update_keeps_a_concurrent_change_made_after_opening(lib: Library) -> None:
    """The meta is re-read under the lock: a stale Episode object does not revert newer changes."""
    ep = synth_episode(lib, n=3)
    stale = lib.episode(ep.id)
    ep.update_camera_model("cam0", calibrated(), {"rms_px": 0.5})
    m2 = calibrated()
    m2.K[0, 0] = 70.0
    stale.update_camera_model("cam0", m2)          # no calibration record: the earlier one stays
    fresh = lib.episode(ep.id)
    assert fresh.camera_model("cam0").K[0, 0] == 70.0 and fresh.calibration("cam0")["rms_px"] == 0.5
