"""`robot-irl quickstart` and `robot-irl report`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("quickstart", help="run the pipeline end to end on the simulated default, with a report",
                       description="Record sim demos as video, extract keypoints with OpenCV, learn costs with "
                                   "model-based IRL, run them on the PyBullet arm to held-out goals, train the library's CLIP and search, diagnose the keypoint latents with t-SNE, and write report.html. Stages that finished "
                                   "are skipped on rerun unless --force.")
    q.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    q.add_argument("--fast", action="store_true", help="fewer demos and smaller settings")
    q.add_argument("--full", action="store_true", help="train the library's CLIP much longer (toward the "
                   "search targets) instead of a short bounded run")
    q.add_argument("--force", action="store_true", help="rerun every stage")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true", help="print the report path and stage times as JSON")
    q.set_defaults(func=_quickstart)
    r = sub.add_parser("report", help="rebuild report.html from a run folder")
    r.add_argument("run", type=Path)
    r.set_defaults(func=_report)


def _quickstart(args) -> int:
    from robot_irl.core.io import atomic_write_json
    from robot_irl.quickstart import stages
    from robot_irl.quickstart.pipeline import Context, Stage, run_stages
    from robot_irl.report import build_report

    pipeline = [
        Stage("record", "1. Record demos (sim renders as video)", stages.record),
        Stage("extract", "2. Extract keypoints with OpenCV", stages.extract),
        Stage("learn", "3. Learn costs with model-based IRL (and baselines)", stages.learn),
        Stage("run", "4. Run the learned cost on the PyBullet arm (held-out goals)", stages.run_arm),
        Stage("clip", "5. Train the library's CLIP and search the demos", stages.clip_search),
        Stage("diagnose", "6. Diagnose keypoint latents with t-SNE", stages.diagnose),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "stages" / "order.json", [s.name for s in pipeline])
    ctx = Context(out=args.out, fast=args.fast, full=args.full, seed=args.seed)
    try:
        run_stages(pipeline, ctx, force=args.force)
    finally:
        if (args.out / "stages").exists() and any((args.out / "stages").glob("*.json")):
            report = build_report(args.out)
            seconds = {k: v.get("seconds") for k, v in ctx.results.items()}
            if args.json:
                print(json.dumps({"report": str(report), "stages": seconds}))
            else:
                from robot_irl.cliargs import format_table

                print(format_table(["stage", "seconds"], [[k, v] for k, v in seconds.items()]))
                print(f"report: {report}  (open it in a browser)")
    return 0


def _report(args) -> int:
    from robot_irl.report import build_report
    print(build_report(args.run))
    return 0
