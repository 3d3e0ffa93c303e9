"""The ``filters`` grammar and its translation into MongoDB conditions. Pure: no I/O.

Grammar (the ``filters=`` query parameter, ``footfall.dashboard_queries`` functions' ``filters``)::

    filters  = clause *( ";" clause )
    clause   = dimension op value *( "|" value )
    op       = "==" / "!=" / "~"

- ``dimension==v1|v2``: the dimension is one of the values; ``dimension!=v1|v2``: none of them;
  ``dimension~text``: contains ``text`` (case-insensitive; several ``|`` values: any of them).
- Clauses are ANDed. A backslash escapes the three special characters inside values: ``\\;``
  ``\\|`` ``\\\\``; any other escape is an error. Empty clauses (a trailing ``;``) are ignored.
- With ``==`` and ``!=``, the values ``Direct / None`` and ``(none)`` stand for "no value" (the labels
  a missing value has in a breakdown, docs/data-model.md); with ``~`` they are ordinary text.
- Example: ``page==/pricing;country==DE|AT;referrer!=Direct / None``.

Dimensions (docs/data-model.md): visit-level ``entry_page``, ``exit_page``, ``referrer``, ``source``,
``utm_source``, ``utm_medium``, ``utm_campaign``, ``country``, ``device``, ``browser``, ``os`` narrow
the visits by their own field; page-level ``page``, ``route`` and ``event`` narrow the visits by
their ``paths`` / ``routes`` / ``event_names`` arrays (``page==/a``: visits that viewed ``/a``;
``page!=/a``: visits that never viewed it). Page views are those of the matching visits, and
page-level clauses also apply to each page view's own ``path`` / ``route`` (``page==/a`` counts the
views of ``/a``; see :func:`view_condition`). ``source`` is ``utm_source``, else ``referrer_host``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from footfall.errors import InvalidQuery

__all__ = [
    "Clause", "Dimension", "DIMENSIONS", "NONE_LABELS", "parse_filters", "format_filters", "session_condition",
    "view_condition", "value_condition", "label_of", "as_clauses",
]

Operator = Literal["==", "!=", "~"]
DIRECT = "Direct / None"
NONE = "(none)"
NONE_LABELS = (DIRECT, NONE)
MAX_CLAUSES = 20
MAX_VALUES = 50
MAX_VALUE_LENGTH = 1000
_NAME = re.compile(r"[a-z_]*")


@dataclass(frozen=True, slots=True)
class Dimension:
    """A dimension queries can filter and break down by.

    :ivar name: its name in ``filters`` and ``dimension=``.
    :ivar session_field: the ``sessions`` field that holds it (an array for page-level ones; ``""``
        for ``source``, which is computed).
    :ivar view_field: the ``page_views`` field for ``page`` and ``route``, else ``None``.
    :ivar none_label: how a missing value shows.
    """

    name: str
    session_field: str
    view_field: str | None = None
    none_label: str = NONE

    @property
    def page_level(self) -> bool:
        """``page``, ``route`` and ``event``: many values per visit."""
        return self.name in ("page", "route", "event")


DIMENSIONS: dict[str, Dimension] = {d.name: d for d in (
    Dimension("page", "paths", "path"),
    Dimension("route", "routes", "route"),
    Dimension("event", "event_names"),
    Dimension("entry_page", "entry_path"),
    Dimension("exit_page", "exit_path"),
    Dimension("referrer", "referrer_host", none_label=DIRECT),
    Dimension("source", "", none_label=DIRECT),
    Dimension("utm_source", "utm_source"),
    Dimension("utm_medium", "utm_medium"),
    Dimension("utm_campaign", "utm_campaign"),
    Dimension("country", "country"),
    Dimension("device", "device"),
    Dimension("browser", "browser"),
    Dimension("os", "os"),
)}


@dataclass(frozen=True, slots=True)
class Clause:
    """One filter clause: ``dimension op values`` (``None`` = no value, for ``==`` / ``!=``)."""

    dimension: str
    op: Operator
    values: tuple[str | None, ...]


def _split(text: str, separator: str) -> list[str]:
    """Split at every ``separator`` not preceded by an escaping backslash; escapes stay in place."""
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(raw: str, clause: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\":
            escaped = raw[i + 1:i + 2]
            if escaped not in (";", "|", "\\") or not escaped:
                shown = "a trailing \\" if not escaped else f"\\{escaped}"
                raise InvalidQuery("filters", f"filters: bad escape {shown} in clause {clause[:80]!r}; "
                                              "only \\; \\| and \\\\ are escapes")
            out.append(escaped)
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _parse_clause(raw: str) -> Clause:
    name = _NAME.match(raw).group()  # type: ignore[union-attr]
    rest = raw[len(name):]
    op = next((o for o in ("==", "!=", "~") if rest.startswith(o)), None)
    if not name or op is None:
        raise InvalidQuery("filters", f"filters: clause {raw[:80]!r} is not dimension==value, dimension!=value or "
                                      "dimension~text")
    if name not in DIMENSIONS:
        raise InvalidQuery("filters", f"filters: unknown dimension {name!r} in clause {raw[:80]!r}; known: "
                                      f"{', '.join(DIMENSIONS)}")
    texts = [_unescape(part, raw) for part in _split(rest[len(op):], "|")]
    if len(texts) > MAX_VALUES:
        raise InvalidQuery("filters", f"filters: clause for {name} has {len(texts)} values; at most {MAX_VALUES}")
    for text in texts:
        if not text:
            raise InvalidQuery("filters", f"filters: empty value in clause {raw[:80]!r}")
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidQuery("filters", f"filters: a value for {name} is {len(text)} characters; at most "
                                          f"{MAX_VALUE_LENGTH}")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            raise InvalidQuery("filters", f"filters: control character in a value for {name}")
    values = tuple(texts) if op == "~" else tuple(None if t in NONE_LABELS else t for t in texts)
    return Clause(name, op, values)  # type: ignore[arg-type]


def parse_filters(text: str | None) -> tuple[Clause, ...]:
    """Parse the ``filters`` grammar (module doc).

    :param text: the filter expression; ``None`` or ``""`` for no filter.
    :return: the clauses, in order.
    :raises InvalidQuery: (parameter ``filters``) naming the clause and what is wrong with it.
    """
    if not text:
        return ()
    clauses = [_parse_clause(raw) for raw in _split(text, ";") if raw.strip()]
    if len(clauses) > MAX_CLAUSES:
        raise InvalidQuery("filters", f"filters: {len(clauses)} clauses; at most {MAX_CLAUSES}")
    return tuple(clauses)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace("|", "\\|")


def format_filters(clauses: Iterable[Clause]) -> str:
    """The expression :func:`parse_filters` reads back as ``clauses`` (``None`` as ``(none)`` /
    ``Direct / None``)."""
    return ";".join(
        clause.dimension + clause.op + "|".join(
            _escape(DIMENSIONS[clause.dimension].none_label if v is None else v) for v in clause.values)
        for clause in clauses)


def value_condition(clause: Clause, field: str) -> dict[str, Any]:
    """The MongoDB query condition that applies ``clause`` to ``field`` (a scalar or an array: an
    array matches ``==`` when any element is a value, ``!=`` when none is).

    :return: a condition for ``$match`` (never ``$expr``, so the planner keeps its index).
    """
    if clause.op == "==":
        return {field: {"$in": list(clause.values)}}
    if clause.op == "!=":
        return {field: {"$nin": list(clause.values)}}
    patterns = [{field: {"$regex": re.escape(v or ""), "$options": "i"}} for v in clause.values]
    return patterns[0] if len(patterns) == 1 else {"$or": patterns}


def _source_condition(clause: Clause, prefix: str) -> dict[str, Any]:
    """``source`` is ``utm_source`` when set, else ``referrer_host``."""
    utm, host = prefix + "utm_source", prefix + "referrer_host"
    if clause.op == "~":
        return {"$or": [value_condition(clause, utm), {utm: None, **value_condition(clause, host)}]}
    named = [v for v in clause.values if v is not None]
    equal = {"$or": [{utm: {"$in": named}}, {utm: None, host: {"$in": list(clause.values)}}]}
    return equal if clause.op == "==" else {"$nor": [equal]}


def _and(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    if not conditions:
        return {}
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def session_condition(clauses: Iterable[Clause], prefix: str = "") -> dict[str, Any]:
    """The condition on ``sessions`` documents for all clauses (``{}`` when there are none).

    :param prefix: prepended to the field names (``"visit."`` for a session joined into a page view).
    """
    conditions = []
    for clause in clauses:
        dimension = DIMENSIONS[clause.dimension]
        if dimension.name == "source":
            conditions.append(_source_condition(clause, prefix))
        else:
            conditions.append(value_condition(clause, prefix + dimension.session_field))
    return _and(conditions)


def view_condition(clauses: Iterable[Clause], prefix: str = "") -> dict[str, Any]:
    """The condition on a page view's own ``path`` / ``route`` for the ``page`` and ``route``
    clauses (``{}`` when there are none).

    :param prefix: prepended to the field names (``"view."`` when the view is nested).
    """
    return _and([value_condition(clause, prefix + DIMENSIONS[clause.dimension].view_field)  # type: ignore[operator]
                 for clause in clauses if DIMENSIONS[clause.dimension].view_field])


def label_of(dimension: str, value: Any) -> str:
    """How a breakdown shows ``value``: itself, or the dimension's label for a missing value."""
    return DIMENSIONS[dimension].none_label if value is None or value == "" else str(value)


def as_clauses(filters: str | Iterable[Clause] | None) -> tuple[Clause, ...]:
    """Clauses from either the grammar's text (parsed) or clauses already parsed.

    :raises InvalidQuery: (parameter ``filters``) the text does not parse.
    """
    if filters is None or isinstance(filters, str):
        return parse_filters(filters)
    return tuple(filters)
