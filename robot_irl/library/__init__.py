"""The demo library: episodes on disk, their catalog, recording into it and reading from it.

Every stage reads and writes demonstrations through this API (never the files directly)::

    from robot_irl.library import Library
    lib = Library.open(path)                 # None → $ROBOT_IRL_LIBRARY → per-user default
    for ep in lib.select("source:sim variant.color=red"):
        ep.arrays("state")["joint_pos"], ep.timestamps("cam0"), ep.video_frames("cam0")

notes/library.md summarises the API; demos/README.md documents the format and the query syntax.
"""
from robot_irl.library.episode import Derived, Episode
from robot_irl.library.library import Library, RepairReport
from robot_irl.library.location import ENV_VAR, default_library_path, resolve_library_path
from robot_irl.library.query import Query, parse_query
from robot_irl.library.schema import SCHEMA_VERSION
from robot_irl.library.timeseries import Column
from robot_irl.library.writer import EpisodeWriter

__all__ = ["Column", "Derived", "ENV_VAR", "Episode", "EpisodeWriter", "Library", "Query", "RepairReport",
           "SCHEMA_VERSION", "default_library_path", "parse_query", "resolve_library_path"]
