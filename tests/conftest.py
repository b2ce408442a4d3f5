import os

import pytest

# Keep generated textures and caches inside the test session, not in the user's home.
@pytest.fixture(autouse=True, scope="session")
def _robot_irl_cache(tmp_path_factory):
    os.environ.setdefault("ROBOT_IRL_CACHE", str(tmp_path_factory.mktemp("cache")))
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield
