"""`robot-irl demos list|show|replay|rm|repair|export|import`: a thin layer over robot_irl.library."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_irl.cliargs import format_table
from robot_irl.errors import InputError, UnknownNameError

QUERY_HELP = ("episode selection, e.g. `source:sim variant.color=red tag:good -success:false`; "
              "empty selects all (syntax: demos/README.md)")


class QueryArgParser(argparse.ArgumentParser):
    """An argument parser that reads a negated query term (``-tag:train``, ``-variant.color=red``)
    as a positional, as demos/README.md documents it, instead of as an unknown option."""

    def _parse_optional(self, arg_string):  # noqa: ANN001, ANN202 (argparse's private hook)
        if (len(arg_string) > 2 and arg_string[0] == "-" and arg_string[1] != "-"
                and arg_string not in self._option_string_actions
                and any(op in arg_string for op in (":", "=", "<", ">"))):
            return None
        return super()._parse_optional(arg_string)


def add_library_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", metavar="PATH",
                   help="demo library folder (default: $ROBOT_IRL_LIBRARY, else ~/.local/share/robot-irl/library)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demos", help="list, inspect, replay, remove, repair, export and import demonstrations",
                       description="Work with the demo library (format: demos/README.md).")
    s = p.add_subparsers(dest="demos_command", metavar="ACTION", required=True, parser_class=QueryArgParser)

    ls = s.add_parser("list", help="list the episodes a query selects")
    ls.add_argument("query", nargs="*", help=QUERY_HELP)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    add_library_arg(ls)
    ls.set_defaults(func=_list)

    sh = s.add_parser("show", help="an episode's meta, cameras, streams and derived data")
    sh.add_argument("id", help="exact episode id")
    sh.add_argument("--check", action="store_true", help="also decode every frame and read every row")
    sh.add_argument("--json", action="store_true", help="print everything as one JSON object")
    add_library_arg(sh)
    sh.set_defaults(func=_show)

    sp = s.add_parser("spec", help="show, set or replace the keypoint spec of episodes (format: demos/README.md)")
    sp.add_argument("target", nargs="+", help="an exact episode id or a query (" + QUERY_HELP + ")")
    sp.add_argument("--set", metavar="F", type=Path, help="keypoint spec JSON to store (the one replaced is kept "
                                                          "in extra.keypoint_spec_history)")
    add_library_arg(sp)
    sp.set_defaults(func=_spec)

    rp = s.add_parser("replay", help="play or write an episode's video with its keypoints drawn, "
                                     "or re-execute its actions in the sim (--sim)")
    rp.add_argument("id", help="exact episode id")
    rp.add_argument("--sim", action="store_true",
                    help="re-execute the recorded actions in the sim (sim episodes: same env, seed, variant; arm "
                         "episodes: the pybullet arm) and report re-executed vs recorded keypoint distances")
    rp.add_argument("--actions", choices=["target", "delta"], default="target",
                    help="--sim: execute target_requested (absolute) or action_delta (default: target)")
    rp.add_argument("--json", action="store_true", help="--sim: print the report as one JSON object")
    rp.add_argument("--camera", help="camera name (default: the first)")
    rp.add_argument("--out", type=Path, help="write the annotated video (.mp4 or .mkv)")
    rp.add_argument("--show", action="store_true", help="show it in a window (q to stop)")
    add_library_arg(rp)
    rp.set_defaults(func=_replay)

    rm = s.add_parser("rm", help="remove exactly the named episodes (asks first)")
    rm.add_argument("ids", nargs="+", help="exact episode ids (no patterns: rm never removes more than it names)")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_library_arg(rm)
    rm.set_defaults(func=_rm)

    rep = s.add_parser("repair", help="recover killed recordings up to their last flushed chunk; rebuild the catalog")
    add_library_arg(rep)
    rep.set_defaults(func=_repair)

    ex = s.add_parser("export", help="export selected episodes (LeRobotDataset v3 layout)")
    ex.add_argument("query", nargs="*", help=QUERY_HELP)
    ex.add_argument("--format", choices=["lerobot"], default="lerobot")
    ex.add_argument("--out", type=Path, required=True, help="new or empty folder to write")
    ex.add_argument("--video-codec", choices=["auto", "h264", "mp4v", "ffv1"], default="auto",
                    help="auto: H.264 where FFmpeg has the encoder, else mp4v; ffv1 is lossless "
                         "(codec recorded in meta/info.json)")
    add_library_arg(ex)
    ex.set_defaults(func=_export)

    im = s.add_parser("import", help="import a LeRobot dataset folder (v3.0, or v2.0/v2.1 converted on the way "
                                     "in), all episodes or none; a dataset imported before is refused")
    im.add_argument("path", type=Path, help="dataset folder (with meta/info.json)")
    im.add_argument("--format", choices=["lerobot"], default="lerobot")
    add_library_arg(im)
    im.set_defaults(func=_import)


def _open(args, *, create: bool = False):
    from robot_irl.library import Library
    lib = Library.open(args.library, create=create)
    for e in lib.problems:
        print(f"warning: {broken(e)}", file=sys.stderr)
    return lib


def broken(e: InputError) -> str:
    """One wording for an episode that does not validate, in `list` and `repair` alike."""
    eid = getattr(e, "episode_id", None)
    how = f"; remove it with `robot-irl demos rm {eid}`" if eid else ""
    return f"broken episode {eid or ''} (not in the catalog): {e}{how}"


def _list(args) -> int:
    lib = _open(args)
    rows = lib.rows(" ".join(args.query))
    bad = lib.verify([r["id"] for r in rows])   # files changed behind the catalog: say so, as repair does
    for e in bad:
        print(f"warning: {broken(e)}", file=sys.stderr)
    gone = {e.episode_id for e in bad}
    rows = [r for r in rows if r["id"] not in gone]
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            ok = {True: "ok", False: "fail", None: "-"}[r["success"]]
            tags = ",".join(r["tags"])
            print(f"{r['id']}  {r['source']:6} {r['frames']:5d}f {r['duration']:7.2f}s {ok:4}  {r['task']}"
                  + (f"  [{tags}]" if tags else ""))
    if not args.json:
        print(f"{len(rows)} episode(s) in {lib.path}", file=sys.stderr)
    return 0


def _show(args) -> int:
    lib = _open(args)
    ep = lib.episode(args.id)
    if args.check:
        ep.validate(deep=True)
    m = ep.meta
    out = {k: m[k] for k in ("id", "task", "source", "robot", "env", "seed", "fps", "created", "duration",
                             "success", "recovered", "tags", "variant")}
    out["kind"] = ep.kind
    out["cameras"] = {c: {"frames": ep.frame_count(c), "size": list(ep.frame_size(c)),
                          "codec": m["cameras"][c]["codec"], "calibrated": m["cameras"][c]["model"] is not None,
                          "files": [str(p) for p in ep.video_files(c)]} for c in ep.cameras}
    out["streams"] = {s: {"rows": m["streams"][s]["rows"],
                          "columns": {n: c.to_dict() for n, c in ep.columns(s).items()}} for s in ep.streams}
    out["keypoints"] = ep.keypoint_spec.names if ep.keypoint_spec is not None else None
    out["derived"] = ep.derived()
    out["path"] = str(ep.path)
    if args.check:
        out["check"] = "every frame decoded and every row read"
    print(json.dumps(out, indent=2) if args.json else _describe(out))
    return 0


def _describe(out: dict) -> str:
    """``demos show`` for people: the meta as aligned lines, then a table each for cameras and streams."""
    lines = [f"{k + ':':10} {v}" for k, v in out.items()
             if k in ("id", "kind", "task", "source", "robot", "env", "seed", "fps", "created", "duration",
                      "success", "recovered") and v is not None]
    lines += [f"{'tags:':10} {', '.join(out['tags']) or '-'}",
              f"{'variant:':10} {', '.join(f'{k}={v}' for k, v in (out['variant'] or {}).items()) or '-'}",
              f"{'keypoints:':10} {', '.join(out['keypoints']) if out['keypoints'] else 'no spec'}",
              f"{'derived:':10} {', '.join(f'{k} (versions {vs})' for k, vs in out['derived'].items()) or '-'}", f"{'path:':10} {out['path']}", ""]
    lines.append(format_table(["camera", "frames", "size", "codec", "calibrated"],
                              [[c, d["frames"], "x".join(map(str, d["size"])), d["codec"], "yes" if d["calibrated"] else "no"]
                               for c, d in out["cameras"].items()]))
    lines.append("")
    lines.append(format_table(["stream", "rows", "columns"],
                              [[s, d["rows"], ", ".join(d["columns"])] for s, d in out["streams"].items()]))
    if "check" in out:
        lines += ["", f"check: {out['check']}"]
    return "\n".join(lines)


def _spec(args) -> int:
    """Every episode selected gets the spec, or none does: the file is checked and the episodes
    found before anything is written."""
    from robot_irl.core.spec import KeypointSpec
    from robot_irl.library.schema import read_json
    lib = _open(args)
    target = " ".join(args.target)
    spec = KeypointSpec.from_dict(read_json(args.set, "keypoint spec"), file=str(args.set)) if args.set else None
    episodes = [lib.episode(target)] if target in lib.ids() else lib.select(target)
    if not episodes:
        raise InputError(f"no episode matches {target!r}", file=lib.path, field="target",
                         expected="an exact episode id or a query that selects episodes (robot-irl demos list)")
    for ep in episodes:
        if spec is None:
            print(json.dumps({"id": ep.id, "keypoint_spec": ep.meta.get("keypoint_spec")}))
            continue
        had = ep.keypoint_spec is not None
        ep.set_keypoint_spec(spec, source=str(args.set))
        print(f"{ep.id}: keypoint spec {'replaced' if had else 'set'} ({', '.join(spec.names)})"
              + ("; derived keypoints are from the old spec: run robot-irl extract again" if ep.derived().get(
                  "keypoints") else ""))
    return 0


def _replay(args) -> int:
    from robot_irl.library.replay import replay
    ep = _open(args).episode(args.id)
    if args.sim:
        return _resim(ep, args)
    if not ep.cameras:
        raise InputError("episode has no camera", file=ep.path / "meta.json", field="cameras",
                         expected="an episode with video")
    camera = args.camera or ep.cameras[0]
    source = replay(ep, camera, out=args.out, show=args.show)
    print(f"replayed {ep.id} camera {camera} with keypoints from {source}"
          + (f" -> {args.out}" if args.out else ""))
    return 0


def _resim(ep, args) -> int:
    from robot_irl.record.resim import resim
    rep = resim(ep, actions=args.actions).summary()
    if args.json:
        print(json.dumps(rep))
        return 0
    print(f"re-executed {rep['steps']} {rep['actions']} actions of {ep.id} in {rep['where']}; "
          f"{rep['clamped']} changed by bounds/safety; max joint error {rep['joint_err_max_rad']} rad")
    print(f"{'keypoint':16} {'mean mm':>9} {'max mm':>9} {'final mm':>9}")
    for name, e in rep["keypoints"].items():
        print(f"{name:16} " + ("not recorded" if e is None else
                               f"{e['mean_mm']:9.2f} {e['max_mm']:9.2f} {e['final_mm']:9.2f}"))
    for note in rep["notes"]:
        print(note)
    return 0


def _rm(args) -> int:
    lib = _open(args)
    have = set(lib.ids())
    for eid in args.ids:  # checked again under the lock by Library.remove; this answers before asking
        if eid not in have and not (lib.episodes_dir / eid).is_dir():
            raise UnknownNameError("episode id", eid, have, file=lib.path)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to remove without confirmation", field="--yes",
                             expected="--yes, or run in a terminal and answer the prompt")
        print("will remove:\n  " + "\n  ".join(args.ids))
        if input(f"remove these {len(args.ids)} episode(s)? type 'yes': ").strip() != "yes":
            print("nothing removed")
            return 1
    removed = lib.remove(args.ids)
    print(f"removed {len(removed)} episode(s): " + " ".join(removed))
    return 0


def _repair(args) -> int:
    lib = _open(args)
    rep = lib.repair()
    for eid, lines in rep.recovered.items():
        print(f"recovered {eid}:")
        for line in lines:
            print(f"  {line}")
    for eid, why in rep.skipped.items():
        print(f"left {eid}: {why}")
    for eid, why in rep.removed.items():
        print(f"removed empty staging folder {eid}: {why}")
    for name, what in rep.batches.items():
        print(f"import batch {name}: {what}")
    for e in rep.problems:
        print(broken(e))
    print(f"catalog rebuilt: {len(lib.ids())} episode(s)")
    return 1 if rep.problems or rep.skipped else 0


def _export(args) -> int:
    from robot_irl.library.lerobot import export_lerobot
    lib = _open(args)
    eps = lib.select(" ".join(args.query))
    export_lerobot(eps, args.out, video_codec=args.video_codec,
                   progress=lambda e: print(f"exported {e.id}", file=sys.stderr))
    print(f"wrote {len(eps)} episode(s) as LeRobotDataset v3.0 to {args.out}")
    return 0


def _import(args) -> int:
    from robot_irl.library.lerobot_import import import_lerobot
    lib = _open(args, create=True)
    eps = import_lerobot(lib, args.path, progress=lambda e: print(f"imported {e.id}", file=sys.stderr))
    print(f"imported {len(eps)} episode(s) into {lib.path}")
    return 0
