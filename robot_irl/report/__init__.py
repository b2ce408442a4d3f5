"""Self-contained HTML reports built from a run folder's stage results."""
from robot_irl.report.html import build_report

__all__ = ["build_report"]
