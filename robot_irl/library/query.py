"""The one query syntax that selects episodes in every command and in the API.

Documented in demos/README.md ("Selecting episodes"); in short::

    place red                       task text contains "place" and "red"
    source:sim tag:good,checked     from the sim, tagged good or checked
    variant.color=red variant.start_range>0.02
    id:20261127-0321                ids starting with that prefix
    -success:false derived:keypoints frames>=100
    kind:run                        runs of a learned policy (kind:* for every kind)

Terms are ANDed; ``a,b`` inside one term is an OR; a leading ``-`` negates a term. A query runs
over catalog rows (:func:`robot_irl.library.catalog.summary`), never over episode files. A query
without a ``kind`` term selects demonstrations only, so a recorded run never enters training data
or a demo query's spec check unless asked for. A field no episode has (``variant.colour`` where
the episodes say ``variant.color``) is an error listing the fields there are, never an empty result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from robot_irl.errors import InputError, UnknownNameError

OPS = ("!=", "<=", ">=", ":", "=", "<", ">")
FIELDS = ("id", "task", "source", "kind", "robot", "env", "tag", "success", "derived", "camera", "frames", "rows",
          "duration", "created", "variant.<key>")
DEFAULT_KIND = "demo"
NUMERIC = ("frames", "rows", "duration")


def _bad(msg: str, query: str, expected: str) -> InputError:
    return InputError(f"{msg} in query {query!r}", field="query", expected=expected)


def _value(v: str) -> Any:
    """A query value as the type it spells: true/false, a number, or a string."""
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        x = float(v)
    except ValueError:
        return v
    return x if math.isfinite(x) else v


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a).lower() == str(b).lower()


@dataclass(frozen=True)
class Term:
    negate: bool
    field: str
    op: str
    values: tuple[str, ...]
    query: str

    def matches(self, row: dict[str, Any]) -> bool:
        hit = any(self._one(row, v) for v in self.values)
        return hit != self.negate

    def _one(self, row: dict[str, Any], raw: str) -> bool:
        f, op = self.field, self.op
        if f.startswith("variant."):
            key = f[len("variant."):]
            if key not in row["variant"]:
                return False
            have: Any = row["variant"][key]
        elif f == "tag":
            have = [t.lower() for t in row["tags"]]
        elif f == "derived":
            have = [d.lower() for d in row["derived"]]
        elif f == "camera":
            have = [c.lower() for c in row["cameras"]]
        else:
            have = row[f]
        if isinstance(have, list):  # membership fields
            if op not in (":", "=", "!="):
                raise _bad(f"'{f}' takes ':' or '!='", self.query, f"{f}:NAME")
            return (raw.lower() in have) != (op == "!=")
        if op in ("<", "<=", ">", ">="):
            want = _value(raw)
            if f == "created":
                have, want = str(have), raw
            elif not isinstance(want, float) or isinstance(want, bool):
                raise _bad(f"'{raw}' is not a number", self.query, f"{f}{op}NUMBER")
            if have is None or isinstance(have, (str, bool)) and f != "created":
                return False
            return {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]
        if f == "kind" and raw == "*":
            return op != "!="
        if op == ":" and f == "task":
            return raw.lower() in str(have).lower()
        if op == ":" and f == "id":
            return str(have).startswith(raw)
        if op == ":" and f == "created":
            return str(have).startswith(raw)
        same = _equal(have, _value(raw)) if f.startswith("variant.") or f in NUMERIC or f == "success" \
            else _equal(have, raw)
        return same != (op == "!=")


def _tokens(query: str) -> list[str]:
    """Split on whitespace outside double quotes; quotes stay in the token for the value parser."""
    out, cur, quoted = [], "", False
    for ch in query:
        if ch == '"':
            quoted = not quoted
            cur += ch
        elif ch.isspace() and not quoted:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if quoted:
        raise _bad("unclosed double quote", query, 'a closing "')
    if cur:
        out.append(cur)
    return out


def _values(text: str, query: str) -> tuple[str, ...]:
    vals, cur, quoted, had_quote = [], "", False, False
    for ch in text:
        if ch == '"':
            quoted, had_quote = not quoted, True
        elif ch == "," and not quoted:
            vals.append((cur, had_quote))
            cur, had_quote = "", False
        else:
            cur += ch
    vals.append((cur, had_quote))
    if any(v == "" and not q for v, q in vals):
        raise _bad("empty value", query, "a value after the operator (quote it if it has spaces)")
    return tuple(v for v, _ in vals)


def _term(tok: str, query: str) -> Term:
    negate = tok.startswith("-") and len(tok) > 1
    body = tok[1:] if negate else tok
    if not body.startswith('"'):
        for i, ch in enumerate(body):
            if ch == '"':
                break
            for op in OPS:
                if body.startswith(op, i):
                    field = body[:i]
                    is_variant = field.startswith("variant.") and len(field) > len("variant.")
                    if not is_variant and (field not in FIELDS or field == "variant.<key>"):
                        raise UnknownNameError("query field", field, FIELDS)
                    return Term(negate, field, op, _values(body[i + len(op):], query), query)
    return Term(negate, "task", ":", _values(body, query), query)


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...]

    def matches(self, row: dict[str, Any]) -> bool:
        if not any(t.field == "kind" for t in self.terms) and row.get("kind", DEFAULT_KIND) != DEFAULT_KIND:
            return False
        return all(t.matches(row) for t in self.terms)

    def filter(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows this query selects; a ``variant.<key>`` no row has is an InputError."""
        if rows:
            keys = {k for r in rows for k in r["variant"]}
            for t in self.terms:
                if t.field.startswith("variant.") and t.field[len("variant."):] not in keys:
                    valid = [f for f in FIELDS if f != "variant.<key>"] + [f"variant.{k}" for k in sorted(keys)]
                    raise InputError(f"no episode has field {t.field!r} in query {self.text!r}", field="query",
                                     expected=f"one of {valid}")
        return [r for r in rows if self.matches(r)]


def parse_query(query: str | None) -> Query:
    """Parse a selection; an empty or None query selects every episode."""
    text = (query or "").strip()
    return Query(text, tuple(_term(t, text) for t in _tokens(text)))

