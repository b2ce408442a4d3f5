"""Captions made from structured episode meta, for training and evaluating a domain CLIP.

Episodes carry facts (task verb, object shape and colour, goal region or direction, phase of the
motion); sentences are rendered from them through templates. Two disjoint template sets exist:
"train" captions teach the model, "heldout" captions (other word orders and sentence frames over
the same vocabulary) test whether it learnt the words rather than the sentences.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from robot_irl.errors import InputError

SPLITS = ("train", "heldout")

# verb -> (base, third person, -ing, past participle, preposition before the goal). The participle
# is there because people describe a demo as much by what happened to the object ("the red cube is
# pushed to the left") as by what the arm does; without it such a query matched on colour alone.
_VERBS: dict[str, tuple[str, str, str, str, str]] = {
    "reach": ("reach", "reaches", "reaching", "reached", "toward"),
    "place": ("place", "places", "placing", "placed", "on"),
    "push": ("push", "pushes", "pushing", "pushed", "to"),
    "pick": ("pick up", "picks up", "picking up", "picked up", "from"),
    "lift": ("lift", "lifts", "lifting", "lifted", "above"),
    "move": ("move", "moves", "moving", "moved", "to"),
    "slide": ("slide", "slides", "sliding", "slid", "to"),
    "stack": ("stack", "stacks", "stacking", "stacked", "on"),
}
_PHASES = {"approach": "approaching", "grasp": "grasping", "carry": "carrying", "release": "releasing",
           "retreat": "retreating", "push": "pushing", "reach": "reaching", "idle": "idle"}
_DIRECTIONS = {"left", "right", "forward", "back", "backward", "up", "down", "front", "rear"}

# {V} base verb, {Vs} third person, {Ving}, {Ved} past participle, {obj} "red block", {goal} "on the
# shelf", {ph} phase
# word ("approaching"). A template is used only when it names every fact the episode has (so no
# caption is vaguer than its episode) and no fact it lacks.
_TRAIN = (
    "{V} the {obj} {goal}",
    "the robot {Vs} the {obj} {goal}",
    "robot arm {Ving} a {obj} {goal}",
    "{V} the {obj}",
    "the arm {Vs} the {obj}",
    "robot arm {Ving} a {obj}",
    "{V} {goal}",
    "the robot {Vs} {goal}",
    "robot arm {Ving} {goal}",
    "the {obj} is {Ved} {goal}",
    "a {obj} {Ved} {goal} by the robot",
)
_TRAIN_PHASE = (
    "{ph}: {V} the {obj} {goal}",
    "the robot {Vs} the {obj} {goal}, {ph}",
    "{ph}: {V} the {obj}",
    "{ph}: {V} {goal}",
)
_HELDOUT = (
    "{goal}, the arm should {V} the {obj}",
    "a {obj} that the robot {Vs} {goal}",
    "{Ving} {goal}: the {obj}",
    "the {obj} is what the robot {Vs}",
    "a {obj} that the arm {Vs}",
    "{goal} is where the arm {Vs}",
    "the arm {Vs}, {goal}",
    "{goal}: a {obj} is {Ved} by the arm",
)
_HELDOUT_PHASE = (
    "while {ph}, the arm {Vs} the {obj} {goal}",
    "while {ph}, the arm {Vs} the {obj}",
)


@dataclass(frozen=True)
class CaptionFacts:
    """The facts captions are made of. Only `task` is required; fields left None drop the
    templates that name them."""

    task: str
    shape: str | None = None
    colour: str | None = None
    goal: str | None = None  # region noun phrase ("shelf", "left bin") or a direction ("left")
    phase: str | None = None
    task_text: str | None = None  # the episode's free text, used verbatim as one more caption

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "CaptionFacts":
        """Read facts from episode meta; accepts `object` as {shape, colour} or flat keys, and
        `goal_region` / `goal_direction` / `goal`. Unknown keys are ignored."""
        obj = meta.get("object") if isinstance(meta.get("object"), Mapping) else {}
        task = meta.get("task") or meta.get("verb")
        if not isinstance(task, str) or not task.strip():
            raise InputError("episode meta has no task", field="task",
                             expected="a task verb such as 'place', 'push' or 'reach'")

        def pick(*keys: str) -> str | None:
            for src in (obj, meta):
                for k in keys:
                    v = src.get(k)
                    if isinstance(v, str) and v.strip():
                        return v.strip().lower().replace("_", " ")
            return None

        return cls(task=task.strip().lower(), shape=pick("shape", "object_shape"),
                   colour=pick("colour", "color", "object_colour", "object_color"),
                   goal=pick("goal_region", "goal_direction", "goal"), phase=pick("phase"),
                   task_text=meta.get("task_text") if isinstance(meta.get("task_text"), str) else None)

    def variant(self) -> "CaptionFacts":
        """The episode-level facts: no phase, no free text. Two frames of the same variant must
        not share a training batch: each one's caption would also describe the other."""
        return replace(self, phase=None, task_text=None)

    def key(self) -> tuple[Any, ...]:
        return tuple(asdict(self.variant()).values())


def _verb(task: str) -> tuple[str, str, str, str, str]:
    if task in _VERBS:
        return _VERBS[task]
    word = task.split()[0]
    stem = word[:-1] if word.endswith("e") and not word.endswith("ee") else word
    third = word + ("es" if word.endswith(("s", "sh", "ch", "x", "z")) else "s")
    rest = task[len(word):]
    return task, third + rest, stem + "ing" + rest, stem + "ed" + rest, "to"


def _goal_phrase(goal: str, prep: str) -> str:
    if goal in _DIRECTIONS:
        return f"to the {goal}"
    return f"{prep} the {goal}"


def captions(facts: CaptionFacts, split: str = "train", *, with_phase: bool = True) -> list[str]:
    """Every caption the split's templates make from `facts` (deduplicated, stable order)."""
    if split not in SPLITS:
        raise InputError(f"unknown caption split '{split}'", field="split", expected=" | ".join(SPLITS))
    base, third, ing, past, prep = _verb(facts.task)
    obj = " ".join(w for w in (facts.colour, facts.shape) if w) or None
    if facts.shape is None and facts.colour is not None:
        obj = f"{facts.colour} object"
    fields = {"V": base, "Vs": third, "Ving": ing, "Ved": past, "obj": obj,
              "goal": _goal_phrase(facts.goal, prep) if facts.goal else None,
              "ph": _PHASES.get(facts.phase, facts.phase) if facts.phase else None}
    plain, phased = (_TRAIN, _TRAIN_PHASE) if split == "train" else (_HELDOUT, _HELDOUT_PHASE)
    templates = plain + (phased if with_phase and facts.phase else ())
    required = {n for n in ("obj", "goal") if fields[n] is not None}
    out: list[str] = []
    for t in templates:
        names = [n for n in fields if "{" + n + "}" in t]
        if any(fields[n] is None for n in names) or not required <= set(names):
            continue
        text = t.format(**{n: fields[n] for n in names})
        if text not in out:
            out.append(text)
    if split == "train" and facts.task_text and facts.task_text not in out:
        out.append(facts.task_text)
    if not out:  # only the bare verb is known
        out.append(base if split == "train" else f"the arm {third}")
    return out
