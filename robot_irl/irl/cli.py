"""`robot-irl train` and `robot-irl eval`: thin wrappers over robot_irl.irl.

Demos come from the demo library (``--demos QUERY [--library PATH] --keypoints extracted|truth|auto``:
robot keypoints of the selected episodes, see library_demos.py) or from a plain keypoint file
(.npz: keypoints [N, T, K, 3], optional timestamps, goals, q0); ``--train``/``--test`` pick demos
of the selection by index. ``--diagnose-every N`` writes latent maps of the cost's per-state
features into the run folder every N outer iterations.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from robot_irl.cliargs import add_library_arg, existing_file, format_table
from robot_irl.core.cluster import add_ray_option
from robot_irl.errors import InputError

METHOD_CHOICES = ("default", "weighted", "timedep", "rbf", "feature_matching", "bc")


def _indices(text: str | None, n: int, field: str) -> list[int]:
    if text is None:
        return list(range(n))
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-")
                out.extend(range(int(a), int(b) + 1))
            elif part:
                out.append(int(part))
        except ValueError:
            raise InputError(f"cannot parse '{part}'", field=field, expected="indices like 0,1,2 or 0-2") from None
    return out


def _split(train: str | None, test: str | None, n: int) -> tuple[list[int], list[int]]:
    """Train and held-out demo indices: ``--test`` alone trains on the rest; the two must not share
    a demo (figures called "test" on training data would mislead) and must exist."""
    test_idx = _indices(test, n, "--test") if test else []
    train_idx = _indices(train, n, "--train") if train else [i for i in range(n) if i not in set(test_idx)]
    for field, idx in (("--train", train_idx), ("--test", test_idx)):
        bad = sorted({i for i in idx if not 0 <= i < n})
        if bad:
            raise InputError(f"demo indices {bad} out of range", field=field, expected=f"indices 0-{n - 1} ({n} demos)")
    both = sorted(set(train_idx) & set(test_idx))
    if both:
        raise InputError(f"demos {both} are in both --train and --test", field="--test",
                         expected="held-out demos that are not trained on")
    if not train_idx:
        raise InputError("no demo left to train on", field="--train", expected="at least one demo not in --test")
    return train_idx, test_idx


def _table(rows: dict[str, dict[str, float]]) -> str:
    cols = ["irl_loss", "final_err_cm", "path_err_cm"]
    return format_table(["demos", *cols], [[name, *(m[c] for c in cols)] for name, m in rows.items()])


def _is_file_source(text: str) -> bool:
    return text.endswith(".npz") or Path(text).is_file()


def _load_demos(demos_arg: str, library: str | None, keypoints: str, rows: int | None,
                names: str | None, goals: str = "recorded", model: str | None = None):
    """(DemoSet, keypoint spec or None, robot name or None, info for the run config)."""
    from robot_irl.irl import load_keypoint_file
    from robot_irl.irl.library_demos import demos_from_library, library_robot

    if keypoints == "learned" and _is_file_source(demos_arg):
        raise InputError(f"--keypoints learned with the keypoint file {demos_arg}", field="--keypoints",
                         expected="a library query (the learned detector runs on the episodes' video)")
    if _is_file_source(demos_arg):
        return load_keypoint_file(demos_arg), None, None, {"file": str(Path(demos_arg).resolve())}
    from robot_irl.library import Library

    lib = Library.open(library)
    if keypoints == "learned":
        return _learned_demos(lib, demos_arg, rows, model)
    kp_names = [n.strip() for n in names.split(",") if n.strip()] if names else None
    demos, spec = demos_from_library(lib, demos_arg, rows=rows or 10, keypoints=keypoints, names=kp_names,
                                     goals=goals)
    info = {"library": str(lib.path), "query": demos_arg, "keypoints": keypoints, "rows": rows or 10,
            "keypoint_names": spec.names, "goals": goals}
    return demos, spec, library_robot(lib, demos_arg), info


def _learned_demos(lib, query: str, rows: int | None, model: str | None):
    """Demos on learned keypoints (``library_demos.learned_demos_from_library``) and the run config's
    record of them. Goals: where each demo's keypoints ended (a recorded goal is in the sim's
    keypoints, not these)."""
    from robot_irl.irl.library_demos import learned_demos_from_library, library_robot

    demos, observer = learned_demos_from_library(lib, query, rows=rows or 10, model=model)
    info = {"library": str(lib.path), "query": query, "keypoints": "learned", "rows": rows or 10,
            "keypoint_names": observer.names, "goals": "final", "detector": observer.model}
    return demos, None, library_robot(lib, query), info


def _robot_urdf(robot: str | None) -> str:
    if robot is None:
        raise InputError("--dynamics kinematic needs --urdf and --keypoint-frames", field="--urdf",
                         expected="a URDF path and keypoint frames")
    import os

    import pybullet_data
    from sim.robots import ROBOTS

    if robot not in ROBOTS:
        raise InputError(f"the episodes' robot '{robot}' is not a sim robot", field="--urdf",
                         expected=f"--urdf for it (known robots: {sorted(ROBOTS)})")
    return os.path.join(pybullet_data.getDataPath(), ROBOTS[robot].urdf)


def _apply_q0(demos, q0: str | None) -> None:
    """``--q0``: one start joint state for every demo (comma separated)."""
    if q0 is not None:
        values = [float(v) for v in q0.split(",")]
        demos.q0 = np.broadcast_to(np.array(values), (len(demos), len(values))).copy()


def _dynamics(args: argparse.Namespace, spec, robot: str | None):
    """The keypoint dynamics ``--dynamics`` names: kinematic (the URDF and keypoint frames, from the
    library's spec and robot where not given) or a learned model file."""
    from robot_irl.models import KinematicDynamics, LearnedDynamics, frames_from_spec, parse_keypoint_frames

    if args.dynamics == "kinematic":
        if spec is None and (not args.urdf or not args.keypoint_frames):
            raise InputError("--dynamics kinematic needs --urdf and --keypoint-frames", field="--urdf",
                             expected="a URDF path and keypoint frames")
        frames = parse_keypoint_frames(args.keypoint_frames) if args.keypoint_frames else frames_from_spec(spec)
        return KinematicDynamics(args.urdf or _robot_urdf(robot), frames)
    if not args.model:
        raise InputError("--dynamics learned needs --model", field="--model",
                         expected="a file written by robot-irl dynamics train")
    return LearnedDynamics.load(args.model)


def _diagnose_hook(train, n_goals: int):
    """on_log callback: latent maps of the cost's per-state features (cost_latents) into the run."""
    from robot_irl.diagnostics import EmbedConfig, Latents, diagnose
    from robot_irl.irl.latents import cost_latents
    from robot_irl.runs import RunDir

    def hook(iteration: int, trained) -> None:
        X, labels = cost_latents(trained, train, n_goals=n_goals)
        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3.5)))
        diagnose(Latents(X, labels, name="cost"), RunDir(trained.path),
                 EmbedConfig(method="tsne", perplexity=perplexity), global_step=iteration)
    return hook


def _demos_from_search(text: str, k: int, library: str | None, within: str | None, as_json: bool = False) -> str:
    """The library query selecting the ``k`` episodes the library's own CLIP ranks first for
    ``text`` (text → demos → learned cost), among those matching ``within``."""
    from robot_irl.library import Library
    from robot_irl.retrieval import Searcher
    from robot_irl.retrieval.library_index import library_encoder, library_index

    lib = Library.open(library)
    enc = library_encoder(lib)
    index, _ = library_index(lib, enc)
    allowed = {e.id for e in lib.select(within)} if within else None
    hits = Searcher(enc, index).search(text, k=k, episodes=allowed)
    if not hits:
        raise InputError(f"the search '{text}' found no episode", file=lib.path, field="--query",
                         expected="a library with indexed episodes")
    if as_json:
        print(json.dumps({"query": text, "demos": [{"episode": h.episode_id, "score": round(float(h.score), 4)}
                                                   for h in hits]}))
    else:
        print(f"the search {text!r} chose: " + ", ".join(f"{h.episode_id} ({h.score:.3g})" for h in hits))
    return "id:" + ",".join(h.episode_id for h in hits)


def _selects_person_demos(args: argparse.Namespace) -> bool:
    """Whether ``--demos`` is a library query selecting person demos (a mix with robot demos is refused)."""
    if _is_file_source(args.demos):
        return False
    from robot_irl.irl.object_demos import person_selection
    from robot_irl.library import Library

    return person_selection(Library.open(args.library), args.demos)


def _person_calibration(args: argparse.Namespace):
    """The arm calibration person demos are learned for (its robot, its world-to-base registration);
    refused, naming the command, when missing. Options that do nothing for person demos are said."""
    from robot_irl.control.calibration import load_registered

    d = args.train_defaults
    for given, text in ((args.goals != d["goals"], "--goals: a person demo's goal is where its object came to rest"),
                        (args.q0 is not None, "--q0: person demos start where the grasp holds the object (IK)"),
                        (bool(args.urdf or args.keypoint_frames),
                         "--urdf/--keypoint-frames: person demos use the calibration's robot with the object held")):
        if given:
            print(f"note: {text}; ignored", file=sys.stderr)
    if args.dynamics != "kinematic":
        raise InputError("--dynamics learned with person demos", field="--dynamics",
                         expected="--dynamics kinematic (the robot's kinematics with the object held after the grasp)")
    return load_registered(args.calibration, "learning person demos for a robot")


def _person_training_demos(args: argparse.Namespace, cal):
    """(carries as a DemoSet, held-object dynamics, run info) for person demos: their object keypoints
    in the base frame by the calibration's registration, aligned by progress (robot_irl.irl.object_demos)."""
    from robot_irl.library import Library
    from robot_irl.record.person_pipeline import PersonSetup, person_demos

    lib = Library.open(args.library)
    keypoints = "truth" if args.keypoints == "truth" else "extracted"
    names = [n.strip() for n in args.keypoint_names.split(",") if n.strip()] if args.keypoint_names else None
    demos, dyn, od, info = person_demos(lib, args.demos, cal.world, PersonSetup(robot=cal.robot, rows=args.rows or 10),
                                        keypoints, names=names)
    info.update({"library": str(lib.path), "query": args.demos, "keypoints": keypoints, "rows": args.rows or 10,
                 "keypoint_names": od.spec.names, "calibration": str(Path(args.calibration).resolve())})
    return demos, dyn, info


def _person_eval_demos(query: str, library: str | None, info: dict):
    """A person run's demos again, as it learned them: the registration, robot, grasp, rows and
    keypoints stored in the run (so eval needs no calibration)."""
    from robot_irl.control.registration import WorldRegistration
    from robot_irl.library import Library
    from robot_irl.record.person_pipeline import PersonSetup, person_demos

    p = info["person"]
    if p.get("registration") is None:
        raise InputError("the person run stores no world-to-base registration", field="demos.person.registration",
                         expected="a run from `robot-irl train --demos tag:person --calibration ARM.json`")
    setup = PersonSetup(robot=p["robot"], rows=int(info.get("rows", 10)), grasp_depth=float(p["grasp"]["depth"]))
    demos, *_ = person_demos(Library.open(library), query, WorldRegistration.from_dict(p["registration"]), setup,
                             info.get("keypoints", "extracted"), names=info.get("keypoint_names"))
    return demos


# Train options that say how the run is written, not what it learns: never taken from a saved run.
_RUN_OPTIONS = ("out", "resume", "force", "quiet", "json", "sweep", "ray", "val")
TRAIN_ARGS = "train_args.json"


def _resume_args(args: argparse.Namespace, run_dir: Path) -> argparse.Namespace:
    """``--resume`` continues with the options the run was started with (saved in the folder), so
    the demos need not be named again; options given now that differ from their defaults win."""
    saved_file = run_dir / TRAIN_ARGS
    if not saved_file.is_file():
        return args
    saved = json.loads(saved_file.read_text())
    defaults = args.train_defaults
    merged = dict(vars(args))
    for key, value in saved.items():
        if key not in _RUN_OPTIONS and key in merged and merged[key] == defaults.get(key):
            merged[key] = value
    return argparse.Namespace(**merged)


def _saved_args(args: argparse.Namespace) -> dict:
    # the search (--query, --k) is saved as the episodes it chose (--demos id:...), not to be rerun
    return {k: v for k, v in vars(args).items() if k not in ("func", "train_defaults", "k", *_RUN_OPTIONS)}


def _unused_options(args: argparse.Namespace) -> list[str]:
    """Options given that this combination of the others ignores (each said, not silently dropped)."""
    d = args.train_defaults
    checks = [
        (args.k != d["k"] and not args.query, "--k chooses how many demos --query finds; without --query it does nothing"),
        (args.diagnose_goals != d["diagnose_goals"] and not args.diagnose_every,
         "--diagnose-goals does nothing without --diagnose-every"),
        (args.model is not None and args.dynamics == "kinematic", "--model is for --dynamics learned; ignored"),
        ((args.urdf or args.keypoint_frames) and args.dynamics == "learned",
         "--urdf/--keypoint-frames are for --dynamics kinematic; ignored"),
        (args.diagnose_every and args.cost in ("feature_matching", "bc"),
         "--diagnose-every applies to cost learning (default/weighted/timedep/rbf); ignored"),
        (args.resume and args.cost in ("feature_matching", "bc"),
         f"--cost {args.cost} keeps no checkpoint: --resume trains it from the start"),
    ]
    return [text for hit, text in checks if hit]


def _learner_config(args: argparse.Namespace):
    """The ``--recipe``'s settings, with the options given on the command line on top."""
    from robot_irl.irl.config import recipe_config
    from robot_irl.irl.inner import InnerConfig

    cost = args.cost if args.cost not in ("feature_matching", "bc") else "timedep"
    inner = recipe_config(args.recipe, cost).inner
    if args.inner is not None and args.inner != inner.method:
        inner = InnerConfig(method=args.inner, step_size=0.5 if args.inner == "gn" else 1e-3)
    inner = InnerConfig(**{**inner.to_dict(), **({"steps": args.inner_steps} if args.inner_steps else {}),
                           **({"step_size": args.inner_step_size} if args.inner_step_size is not None else {}),
                           **({"damping": args.inner_damping} if getattr(args, "inner_damping", None) is not None else {})})
    given = {k: v for k, v in (("outer_iters", args.iters), ("lr", args.lr)) if v is not None}
    if args.signed_weights:
        given["nonneg"] = False
    return recipe_config(args.recipe, cost, rows=args.rows, seed=args.seed, inner=inner,
                         checkpoint_every=args.checkpoint_every, **given)


def cmd_train(args: argparse.Namespace) -> int:
    if args.sweep:
        return cmd_sweep(args)
    for option, value in (("--val", args.val), ("--ray", args.ray)):
        if value is not None:
            print(f"note: {option} is for --sweep; ignored", file=sys.stderr)
    from robot_irl.runs import RunDir

    out = RunDir.claim(args.out, force=args.force, resume=args.resume)   # before anything slow
    if args.resume:
        args = _resume_args(args, out.path)
    for note in _unused_options(args):
        print(f"note: {note}", file=sys.stderr)
    if args.query:
        args.demos = _demos_from_search(args.query, args.k, args.library, args.demos, as_json=args.json)
        args.query = None   # a resume trains on the same episodes, not on a new search
    elif args.demos is None:   # "" is the empty query: every episode of the library
        raise InputError("no demos selected", field="--demos", expected="--demos QUERY|FILE or --query TEXT")
    if args.demos.endswith(".npz") and not Path(args.demos).is_file():   # before torch loads
        raise InputError("keypoint file not found", file=args.demos, field="--demos",
                         expected="an existing .npz (keypoints [N,T,K,3]) or a library query")

    if args.keypoints == "learned" and (args.dynamics != "learned" or not args.model):
        raise InputError(f"--keypoints learned with --dynamics {args.dynamics}" + ("" if args.model else ", no --model"),
                         field="--dynamics", expected="--dynamics learned --model M.pt (a model from `robot-irl "
                         "dynamics collect --detector DIR` + `dynamics train`: it knows the detector)")
    person = _person_calibration(args) if _selects_person_demos(args) else None   # before torch loads
    from robot_irl.irl import fit_bc, fit_cost, fit_feature_matching

    if person is not None:
        demos, dyn, info = _person_training_demos(args, person)
    else:
        if args.calibration is not None:
            print("note: --calibration is for person demos (their world-to-base registration); ignored", file=sys.stderr)
        demos, spec, robot, info = _load_demos(args.demos, args.library, args.keypoints, args.rows,
                                               args.keypoint_names, args.goals, args.model)
        _apply_q0(demos, args.q0)
        dyn = _dynamics(args, spec, robot)
    train_idx, test_idx = _split(args.train, args.test, len(demos))
    cfg = _learner_config(args)
    if person is not None:
        from robot_irl.record.person_pipeline import held_learner_config

        cfg = held_learner_config(cfg)
    info = {**info, "train_indices": train_idx, "test_indices": test_idx,
            "train_ids": [demos.names[i] for i in train_idx], "test_ids": [demos.names[i] for i in test_idx]}
    train = demos.subset(train_idx)
    if train.q_end is not None:     # what `robot-irl run` holds the tool as (robot_irl/control/tool.py)
        info["demo_end_joints"] = train.q_end.round(6).tolist()
    test = demos.subset(test_idx) if test_idx else None
    resume_cmd = f"robot-irl train --out {out.path} --resume"
    out.begin(what=f"training ({args.cost} cost)", resume=resume_cmd, clear=args.force and not args.resume)
    from robot_irl.core.io import atomic_write_json

    atomic_write_json(out.path / TRAIN_ARGS, _saved_args(args))
    try:
        if args.cost == "feature_matching":
            run = fit_feature_matching(train, dyn, cfg, eval_demos=test, run_dir=out.path, demo_info=info)
        elif args.cost == "bc":
            run = fit_bc(train, dyn, cfg, eval_demos=test, run_dir=out.path, demo_info=info)
        else:
            hook = _diagnose_hook(train, args.diagnose_goals) if args.diagnose_every else None
            run = fit_cost(train, dyn, args.cost, cfg, run_dir=out.path, eval_demos=test, progress=not args.quiet,
                           resume=args.resume, demo_info=info, on_log=hook, on_log_every=args.diagnose_every)
    except BaseException:
        print(f"training stopped: {out.path} is marked incomplete (eval and run refuse it); "
              f"finish it with: {resume_cmd}", file=sys.stderr)
        raise
    out.finish()
    figs = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float))}
    if args.json:
        print(json.dumps(figs, indent=1))
    else:
        print(_table({name: {c: figs[f"{name}_{c}"] for c in ("irl_loss", "final_err_cm", "path_err_cm")}
                      for name in ("train", "test") if f"{name}_irl_loss" in figs}))
    print(f"run saved to {run.path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from robot_irl.runs import RunDir

    RunDir(args.run).require_finished()   # answers before torch loads
    from robot_irl.irl import load_run

    run = load_run(args.run)
    info = run.demo_info
    source = args.demos or info.get("file") or info.get("query")
    if not source:
        raise InputError("the run records no demos", file=run.path, field="--demos",
                         expected="--demos FILE.npz or a library query")
    stored = {k: info[f"{k}_ids"] for k in ("train", "test") if info.get(f"{k}_ids")}
    if info.get("query") and stored and not args.demos and not args.indices:  # the run's own library episodes, by id
        source = "id:" + ",".join(dict.fromkeys(stored.get("train", []) + stored.get("test", [])))
    if "person" in info:
        demos = _person_eval_demos(source, args.library or info.get("library"), info)
    else:
        demos, *_ = _load_demos(source, args.library or info.get("library"), info.get("keypoints", "auto"),
                                info.get("rows"), ",".join(info["keypoint_names"]) if info.get("keypoint_names") else None,
                                info.get("goals", "recorded"), str(getattr(run.dynamics, "path", "") or "") or None)
    if args.indices:
        sets = {"eval": demos.subset(_indices(args.indices, len(demos), "--indices"))}
    elif stored and not args.demos:
        sets = {k: demos.by_names(ids, f"{k} episodes") for k, ids in stored.items()}
    else:  # a run from before ids were stored, or other demos asked for: by position
        sets = {"train": demos.subset(info.get("train_indices") or list(range(len(demos))))}
        if info.get("test_indices"):
            sets["test"] = demos.subset(info["test_indices"])
    rows, figures = {}, {}
    for name, subset in sets.items():
        m = run.evaluate(subset)
        rows[name] = m
        figures.update({f"eval_{name}_irl_loss": m["irl_loss"], f"eval_{name}_final_err_cm": m["final_err_cm"],
                        f"eval_{name}_path_err_cm": m["path_err_cm"],
                        f"eval_{name}_per_step_err_cm": m["per_step_err_cm"]})
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(_table(rows))
        for name, m in rows.items():
            print(f"{name} per-step error (cm): " + " ".join(f"{v:.3g}" for v in m["per_step_err_cm"]))
    from robot_irl.runs import RunDir

    RunDir(run.path).update_metrics(**figures)
    return 0


# ---- robot-irl train --sweep ---------------------------------------------------------------------
_SWEEP_IGNORED = {"diagnose_every": "--diagnose-every", "diagnose_goals": "--diagnose-goals"}


def _split_val(args: argparse.Namespace, n: int) -> tuple[list[int], list[int], list[int]]:
    """Train, validation and test indices of a sweep: three disjoint sets of existing demos;
    ``--train`` defaults to every demo in neither ``--val`` nor ``--test``."""
    val = _indices(args.val, n, "--val")
    test = _indices(args.test, n, "--test") if args.test else []
    train = _indices(args.train, n, "--train") if args.train else [i for i in range(n) if i not in {*val, *test}]
    sets = {"--train": train, "--val": val, "--test": test}
    for option, idx in sets.items():
        bad = sorted({i for i in idx if not 0 <= i < n})
        if bad:
            raise InputError(f"demo indices {bad} out of range", field=option, expected=f"indices 0-{n - 1} ({n} demos)")
    for (a, ia), (b, ib) in itertools.combinations(sets.items(), 2):
        both = sorted(set(ia) & set(ib))
        if both:
            raise InputError(f"demos {both} are in both {a} and {b}", field=b,
                             expected="disjoint sets: train, validation (the best trial is chosen on it), test")
    for option, idx in (("--train", train), ("--val", val)):
        if not idx:
            raise InputError("no demo", field=option, expected="at least one demo index")
    return train, val, test


def sweep_setup(args: argparse.Namespace, report_every: int):
    """What every trial of a sweep shares, from `robot-irl train` options (demos already chosen):
    ``(demos, setup, test indices)``; ``setup`` (plain data, shipped to the trials) holds the options,
    the train and validation indices and ``report_every``. The dynamics' inputs are checked here,
    once, not in every trial."""
    demos, spec, robot, info = _load_demos(args.demos, args.library, args.keypoints, args.rows,
                                           args.keypoint_names, args.goals, args.model)
    _apply_q0(demos, args.q0)
    train_idx, val_idx, test_idx = _split_val(args, len(demos))
    _dynamics(args, spec, robot)
    base = {**_saved_args(args), "diagnose_every": None}
    # paths as every node sees them (a trial runs in another process, maybe on another node)
    base["demos"] = info.get("file", args.demos)
    if "library" in info:
        base["library"] = info["library"]
    for key in ("urdf", "model", "keypoint_frames"):
        if base.get(key) and Path(base[key]).is_file():
            base[key] = str(Path(base[key]).resolve())
    return demos, {"args": base, "train": train_idx, "val": val_idx, "report_every": report_every}, test_idx


def sweep_trial(setup: dict, params: dict, run_dir: str, report) -> dict:
    """One trial of a sweep, the same whether it runs here or as a Ray Tune trial on another node:
    `robot-irl train` with the trial's ``params`` on the sweep's training demos into ``run_dir`` (a
    normal run folder: config, weights, metrics, TensorBoard), scored on the validation demos
    (``val_*``; every ``report_every`` outer iterations and after the last
    ``report({"iteration", "val_irl_loss", "last"})``, which ASHA stops on). The test demos are
    not loaded. Returns the run's final figures."""
    from robot_irl.core.io import atomic_write_json
    from robot_irl.irl import fit_cost
    from robot_irl.runs import RunDir

    args = argparse.Namespace(**{**setup["args"], **params,
                                 "train": ",".join(map(str, setup["train"])), "test": None})
    demos, spec, robot, info = _load_demos(args.demos, args.library, args.keypoints, args.rows, args.keypoint_names,
                                           args.goals, args.model)
    _apply_q0(demos, args.q0)
    dyn = _dynamics(args, spec, robot)
    cfg = _learner_config(args)
    train, val = demos.subset(setup["train"]), demos.subset(setup["val"])
    info = {**info, "train_indices": setup["train"], "val_indices": setup["val"],
            "train_ids": [demos.names[i] for i in setup["train"]], "val_ids": [demos.names[i] for i in setup["val"]]}
    out = RunDir(run_dir)
    out.begin(what=f"sweep trial ({args.cost} cost)", resume=f"robot-irl train --out {run_dir} --resume",
              clear=True)   # clear: a trial Tune runs again after its worker died starts afresh
    atomic_write_json(out.path / TRAIN_ARGS, _saved_args(args))

    def hook(iteration: int, trained) -> None:
        report({"iteration": iteration, "val_irl_loss": float(trained.evaluate(val)["irl_loss"]),
                "last": iteration == cfg.outer_iters})

    run = fit_cost(train, dyn, args.cost, cfg, run_dir=out.path, eval_demos=val, eval_name="val", progress=False,
                   demo_info=info, on_log=hook, on_log_every=setup["report_every"])
    out.finish()
    return {k: v for k, v in run.metrics.items() if isinstance(v, (int, float))}


def cmd_sweep(args: argparse.Namespace) -> int:
    """`robot-irl train --sweep FILE`: the trials (serially, or on Ray with --ray), the best on the
    validation demos, scored on the test demos; a table (or --json), trials.json, metrics.json and
    plots/sweep.png in --out, each trial's run folder under --out/trials/."""
    from robot_irl.irl.sweep import COSTS, expand, load_sweep, trial_name

    spec = load_sweep(args.sweep)   # before torch and Ray load
    if spec.scheduler == "asha" and not args.ray:
        raise InputError("scheduler: asha is Ray Tune's early stopping", file=spec.file, field="scheduler",
                         expected="fifo without --ray (trials one after another), or --ray [ADDRESS] for asha")
    if args.resume:
        raise InputError("a sweep does not resume", field="--resume",
                         expected="a new --out or --force (a trial's own folder resumes: robot-irl train --out "
                                  "SWEEP/trials/tNN --resume)")
    if args.val is None:
        raise InputError("a sweep chooses its best trial on validation demos", field="--val",
                         expected="held-out demo indices, e.g. --val 3,4 (neither trained on nor --test)")
    costs = spec.params.get("cost", [args.cost])
    if any(c not in COSTS for c in costs):
        raise InputError(f"--cost {args.cost} has no IRL loss to sweep on", field="--cost",
                         expected=f"one of {list(COSTS)}, or params.cost in {spec.file}")
    d = args.train_defaults
    for name in spec.params:
        if getattr(args, name) != d.get(name):
            print(f"note: --{name.replace('_', '-')} is swept ({spec.file}: params.{name}); the command line "
                  f"value is not used", file=sys.stderr)
    for name, option in _SWEEP_IGNORED.items():
        if getattr(args, name) != d.get(name):
            print(f"note: {option} is not used by --sweep", file=sys.stderr)
    from robot_irl.runs import RunDir

    out = RunDir.claim(args.out, force=args.force)
    trials = expand(spec)
    trials = [(trial_name(i, len(trials)), t) for i, t in enumerate(trials)]
    if args.query:
        args.demos = _demos_from_search(args.query, args.k, args.library, args.demos, as_json=args.json)
        args.query = None
    elif args.demos is None:
        raise InputError("no demos selected", field="--demos", expected="--demos QUERY|FILE or --query TEXT")
    demos, setup, test_idx = sweep_setup(args, spec.report_every)
    out.begin(what="IRL sweep", resume=f"run it again with --force (robot-irl train --sweep {args.sweep} "
                                       f"--out {out.path} --force ...)", clear=args.force)
    RunDir.create(out.path, {"sweep": spec.to_dict(), "setup": setup, "test": test_idx,
                             "trials": dict(trials)}, kind="irl_sweep")
    where = out.path.resolve()   # the trials' folders as every node sees them
    if args.ray:
        from robot_irl.core.cluster import RayCluster
        from robot_irl.irl.sweep import run_ray

        with RayCluster.start(args.ray) as cluster:
            iters = max(_learner_config(argparse.Namespace(**{**setup["args"], **t})).outer_iters for _, t in trials)
            results = run_ray(cluster, sweep_trial, setup, trials, where, spec, progress=not args.quiet,
                              max_iters=iters)
    else:
        from robot_irl.irl.sweep import run_serial

        results = run_serial(sweep_trial, setup, trials, where, progress=not args.quiet)
    return _sweep_report(args, out, results, demos, test_idx)


def _sweep_report(args: argparse.Namespace, out, results, demos, test_idx: list[int]) -> int:
    """Choose the best trial on validation, score it (only it) on the test demos, write and print."""
    from robot_irl.core.io import atomic_write_json
    from robot_irl.irl import load_run
    from robot_irl.irl.sweep import plot_sweep, select_best, table_rows

    best = select_best(results)
    figures: dict = {"trials": len(results), "trials_done": sum(r.status == "done" for r in results),
                     "trials_stopped": sum(r.status == "stopped" for r in results),
                     "trials_failed": sum(r.status == "failed" for r in results), "best_trial": best.name,
                     **{f"best_{k}": v for k, v in best.figures.items()}}
    if test_idx:
        m = load_run(best.run).evaluate(demos.subset(test_idx))
        figures.update({f"test_{k}": m[k] for k in ("irl_loss", "final_err_cm", "path_err_cm")})
    atomic_write_json(out.path / "trials.json", {"best": best.name, "trials": [
        {"name": r.name, "params": r.params, "run": r.run, "status": r.status, "val_irl_loss": r.val_loss,
         "figures": r.figures, "curve": r.curve, "error": r.error} for r in results]})
    out.update_metrics(**figures)
    plot = plot_sweep(results, best.name, out.path / "plots" / "sweep.png")
    out.finish()
    if args.json:
        print(json.dumps({**figures, "params": best.params, "run": best.run}, indent=1))
    else:
        head, rows = table_rows(results, best.name)
        print(format_table(head, rows))
        print(f"best (lowest validation IRL loss): {best.name} {best.params}")
        if test_idx:
            print(_table({"test": {c: figures[f"test_{c}"] for c in ("irl_loss", "final_err_cm", "path_err_cm")}}))
        print(f"sweep saved to {out.path} (plot {plot})")
    return 1 if figures["trials_failed"] else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="learn a cost from keypoint demos (model-based IRL)",
                              description="Learn a cost whose optimised trajectories reproduce the demos.")
    p.add_argument("--demos", help="library query (e.g. 'env:robot_irl/Place-v0 tag:train'), or a "
                   "keypoint file (.npz: keypoints [N,T,K,3], optional timestamps, goals, q0); with --query, "
                   "a library query that limits the search")
    p.add_argument("--query", help="text: learn from the demos the library's CLIP finds for it "
                   "(e.g. \"place the red cube on the right\")")
    p.add_argument("--k", type=int, default=5, help="with --query: how many demos to learn from")
    add_library_arg(p)
    p.add_argument("--keypoints", choices=("extracted", "truth", "auto", "learned"), default="auto",
                   help="library demos: OpenCV-extracted keypoints (robot-irl extract), the sim's ground truth, "
                   "or extracted where present (default); learned: the detector of the learned dynamics "
                   "--model (robot-irl dynamics collect --detector) on the demos' video, goals where they ended "
                   "(experimental: see notes/keypoints.md)")
    p.add_argument("--keypoint-names", help="library demos: keypoints to model, comma separated "
                   "(default: every keypoint on the robot)")
    p.add_argument("--goals", choices=("recorded", "final"), default="recorded",
                   help="library demos: goal = the recorded task goal (goal_3d, default) or where each demo ended")
    p.add_argument("--calibration", help="person demos (tag:person): the arm calibration whose robot learns them "
                   "and whose world-to-base registration (`robot-irl world`) puts them in its base frame; the cost is "
                   "over the object's keypoints, held by a top-down grasp")
    p.add_argument("--train", help="demo indices to train on, e.g. 0-2 (default: all not in --test)")
    p.add_argument("--test", help="held-out demo indices, e.g. 3,4 (never trained on)")
    p.add_argument("--dynamics", choices=("kinematic", "learned"), default="kinematic")
    p.add_argument("--urdf", type=existing_file, help="robot URDF (kinematic dynamics)")
    p.add_argument("--keypoint-frames", help="JSON file or 'name@link:x,y,z;...' (kinematic dynamics)")
    p.add_argument("--model", type=existing_file, help="learned dynamics weights (from robot-irl dynamics train)")
    p.add_argument("--cost", choices=METHOD_CHOICES, default="timedep",
                   help="cost type, or a baseline (feature_matching, bc)")
    p.add_argument("--q0", help="start joint state for every demo, comma separated (default: q0 in the file, "
                   "else inverse kinematics of the first row)")
    p.add_argument("--rows", type=int, help="trajectory rows incl. start (default: the demos' length)")
    p.add_argument("--recipe", choices=("default", "paper"), default="default",
                   help="learner settings: ours (default), or the released MBIRL code's (paper: mean-normalised "
                   "costs, its init, 1 plain SGD inner step, Adam 1e-2 one step per demo, 100 passes); the options "
                   "below override single settings")
    p.add_argument("--iters", type=int, help="outer iterations (passes with --recipe paper; default 400 / 100)")
    p.add_argument("--lr", type=float, help="Adam learning rate on the cost (default 0.05 / 1e-2)")
    p.add_argument("--inner", choices=("gn", "gd"), help="inner update rule (default gn / gd)")
    p.add_argument("--inner-steps", type=int, help="inner steps (default 10 / 1)")
    p.add_argument("--inner-step-size", type=float, help="default 0.5 (gn) or 1e-3 (gd)")
    p.add_argument("--inner-damping", type=float, help="gn: Levenberg damping relative to the mean diagonal of J^T J "
                   "(default 1e-3; learned keypoints: 0.1, see notes/keypoints.md)")
    p.add_argument("--signed-weights", action="store_true",
                   help="let cost weights go negative (default recipe keeps them >= 0; the paper recipe never bounds them)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--out", required=True, help="run folder to write (refused if a run is there, unless --force)")
    p.add_argument("--force", action="store_true", help="replace the run already in --out (its files are removed)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint, with the "
                   "options it was started with (demos included; options given now win)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON (default: a table)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--diagnose-every", type=int, metavar="N",
                   help="every N outer iterations, t-SNE latent maps of the cost's per-state features of optimised "
                   "trajectories (training goals + perturbed goals) into the run folder (plots/cost, metrics, TB)")
    p.add_argument("--diagnose-goals", type=int, default=8, help="goals planned per training demo for --diagnose-every")
    p.add_argument("--sweep", metavar="FILE", help="a sweep (YAML: cost kinds, learning rates, inner steps, seeds; "
                   "grid or random; FIFO or ASHA): each trial a run folder under --out/trials, the best chosen on "
                   "--val demos and scored on --test demos; notes/scale.md")
    p.add_argument("--val", help="with --sweep: validation demo indices the best trial is chosen on (never trained "
                   "on; apart from --test)")
    add_ray_option(p)
    p.set_defaults(func=cmd_train)
    p.set_defaults(train_defaults={a.dest: a.default for a in p._actions if a.dest != "help"})

    e = subparsers.add_parser("eval", help="evaluate a trained run on its held-out demos",
                              description="IRL loss, final keypoint error and per-step error of a trained run.")
    e.add_argument("run", help="run folder written by robot-irl train")
    e.add_argument("--demos", help="keypoint file or library query (default: the run's own demos)")
    add_library_arg(e)
    e.add_argument("--indices", help="demo indices to evaluate (default: the run's train and test sets)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON (default: a table)")
    e.set_defaults(func=cmd_eval)
