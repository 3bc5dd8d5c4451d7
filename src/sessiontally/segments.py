"""The segment filter language (docs/api.md). Pure.

A filter is JSON::

    {"attribute": NAME, "op": OP, "value": V}       a condition on one attribute
    {"all": [F, ...]}                                every filter matches
    {"any": [F, ...]}                                at least one filter matches
    {"not": F}                                       F does not match

``parse_filter`` validates it into an immutable tree (``Condition``, ``AllOf``, ``AnyOf``,
``Not``) or raises ``FilterError`` whose message names the node, e.g.
``filter.all[2].op: unknown operator 'equals'``. Each node is compiled to a closure when
it is built, so ``compile_filter(filter)(attributes)`` costs a few function calls per node.

Values (``V``): a string, a number (integer in the signed 64-bit range or finite float;
``true``/``false`` are not numbers), a boolean, or a datetime ``{"$time": "<ISO-8601>"}``
(without an offset: UTC). What each operator takes:

=====================  =============================================================
``eq``, ``ne``         one string, number, boolean or datetime
``gt gte lt lte``      one string, number or datetime (strings: code-point order)
``in``, ``not_in``     a non-empty array (at most 1000) of such values, all of one type
``contains``           a string: substring of a string attribute, or an element of an
                       array attribute (exact, case-sensitive)
``starts_with``        a string; string attributes only (case-sensitive)
``exists``,            no ``value`` key at all
``not_exists``
=====================  =============================================================

Matching rules:

* Comparisons apply to values of the same type: numbers with numbers (``1 == 1.0``),
  strings with strings, booleans with booleans, datetimes with datetimes (as instants:
  ``2025-01-01T02:00:00+02:00`` equals ``2025-01-01T00:00:00Z``). A type mismatch does not
  match, for every operator: ``ne``/``not_in`` included (``{"op": "ne", "value": "US"}``
  does not match ``country = 5``). ``eq``/``in`` on an array attribute never match: use
  ``contains``.
* A filter string that is an ISO-8601 datetime *with* an offset (the rule of
  ``attributes.string_instant``, the same that stores such strings as datetimes) is
  compared as a datetime against datetime attributes, and as a string against string
  attributes. A string without an offset (``"2025-01-01"``) is only a string, so it never
  matches a datetime attribute: write ``"2025-01-01T00:00:00Z"`` or ``{"$time":
  "2025-01-01"}``.
* A missing attribute matches nothing except ``not_exists``: ``ne``, ``not_in`` do not
  match it either. ``not`` is plain negation of its child, so ``{"not": {"attribute":
  "country", "op": "eq", "value": "US"}}`` *does* match a user without ``country``
  (that is how to say "not US, or unknown").
* ``exists`` is true for any present value, ``""`` and ``[]`` included.

Limits: nesting at most ``MAX_DEPTH`` (10) levels (a lone condition is 1 level), at most
``MAX_NODES`` (100) nodes in all (conditions and combinators), ``all``/``any`` non-empty,
string values at most 1024 characters, attribute names as in ``attributes``.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from . import attributes as attrs
from .attributes import Value

OPERATORS = (
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with", "exists", "not_exists",
)
MAX_DEPTH = 10
MAX_NODES = 100
MAX_LIST_VALUES = 1000
MAX_VALUE_LENGTH = attrs.MAX_STRING_LENGTH

Matcher = Callable[[Mapping[str, Value]], bool]

_ORDERING = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_NO_VALUE_OPS = ("exists", "not_exists")
_SCALAR_OPS = ("eq", "ne")
_LIST_OPS = ("in", "not_in")
_STRING_OPS = ("contains", "starts_with")
_NODE_KEYS = ("attribute", "all", "any", "not")
_CONDITION_KEYS = ("attribute", "op", "value")
_SCALAR_EXPECTED = 'must be a string, number, boolean or {"$time": "<ISO-8601 datetime>"}'
_SHAPES = '{"attribute": ..., "op": ..., "value": ...}, {"all": [...]}, {"any": [...]} or {"not": {...}}'


class FilterError(ValueError):
    """An invalid filter. ``str(error)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Time:
    """A datetime filter value, given as ``{"$time": text}``."""

    text: str
    micros: int


Scalar = str | int | float | bool | Time
FilterValue = Scalar | tuple[Scalar, ...] | None


# Nodes. Build them with parse_filter: constructors do not validate. Each node compiles
# itself once into ``match`` (excluded from equality, hashing and repr).


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str
    op: str
    value: FilterValue = None
    match: Matcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", _compile_condition(self.attribute, self.op, self.value))

    def __reduce__(self) -> tuple[Any, ...]:  # pickle/copy rebuild (and recompile) the node
        return (Condition, (self.attribute, self.op, self.value))


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Filter, ...]
    match: Matcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", _compile_all(tuple(child.match for child in self.children)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (AllOf, (self.children,))


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Filter, ...]
    match: Matcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", _compile_any(tuple(child.match for child in self.children)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (AnyOf, (self.children,))


@dataclass(frozen=True, slots=True)
class Not:
    child: Filter
    match: Matcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        inner = self.child.match
        object.__setattr__(self, "match", lambda values: not inner(values))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Not, (self.child,))


Filter = Condition | AllOf | AnyOf | Not


# ----------------------------------------------------------------------------- public API


def parse_filter(obj: Any) -> Filter:
    """The filter tree of a JSON filter (already decoded), or FilterError."""
    return _Parser().node(obj, "filter", 1)


def parse_filter_json(text: str | bytes) -> Filter:
    """``parse_filter`` of JSON text; FilterError (path ``filter``) if it is not JSON."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FilterError("filter", f"is not valid JSON ({exc})") from None
    return parse_filter(obj)


def compile_filter(filter: Filter) -> Matcher:
    """The predicate: whether a user with these typed attributes (``attributes.Value``s)
    matches."""
    return filter.match


def filter_to_json(filter: Filter) -> dict[str, Any]:
    """Canonical JSON: conditions as ``{"attribute", "op", "value"}`` in that key order
    (no ``value`` for exists/not_exists), datetimes as ``{"$time": text}`` as given.
    ``parse_filter(filter_to_json(f)) == f``."""
    if isinstance(filter, Condition):
        out: dict[str, Any] = {"attribute": filter.attribute, "op": filter.op}
        if filter.op not in _NO_VALUE_OPS:
            out["value"] = _value_to_json(filter.value)
        return out
    if isinstance(filter, AllOf):
        return {"all": [filter_to_json(child) for child in filter.children]}
    if isinstance(filter, AnyOf):
        return {"any": [filter_to_json(child) for child in filter.children]}
    return {"not": filter_to_json(filter.child)}


def referenced_attributes(filter: Filter) -> frozenset[str]:
    """Names of the attributes the filter reads."""
    if isinstance(filter, Condition):
        return frozenset((filter.attribute,))
    if isinstance(filter, Not):
        return referenced_attributes(filter.child)
    return frozenset().union(*(referenced_attributes(child) for child in filter.children))


def describe(filter: Filter) -> str:
    """Human text, e.g. ``country equals 'US' and (plan is one of 'pro', 'team')``."""
    return _describe(filter, nested=False)


# ----------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, obj: Any, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"filters may be nested at most {MAX_DEPTH} levels deep")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(path, f"a filter may have at most {MAX_NODES} nodes")
        if not isinstance(obj, dict):
            raise FilterError(path, f"must be an object: {_SHAPES}")
        kinds = [key for key in _NODE_KEYS if key in obj]
        if not kinds:
            if not obj:
                raise FilterError(path, f"must not be empty; expected {_SHAPES}")
            raise FilterError(path, f"unknown key {next(iter(obj))!r}; expected {_SHAPES}")
        if len(kinds) > 1:
            found = ", ".join(repr(kind) for kind in kinds)
            raise FilterError(
                path, f"must have exactly one of 'attribute', 'all', 'any' or 'not' (found {found})"
            )
        kind = kinds[0]
        if kind == "attribute":
            return self.condition(obj, path)
        for key in obj:
            if key != kind:
                raise FilterError(path, f"unknown key {key!r} next to {kind!r}")
        if kind == "not":
            return Not(self.node(obj["not"], f"{path}.not", depth + 1))
        items = obj[kind]
        if not isinstance(items, list):
            raise FilterError(f"{path}.{kind}", "must be an array of filters")
        if not items:
            raise FilterError(f"{path}.{kind}", "must hold at least one filter")
        children = tuple(self.node(item, f"{path}.{kind}[{i}]", depth + 1) for i, item in enumerate(items))
        return AllOf(children) if kind == "all" else AnyOf(children)

    def condition(self, obj: dict[str, Any], path: str) -> Condition:
        for key in obj:
            if key not in _CONDITION_KEYS:
                raise FilterError(path, f"unknown key {key!r}; a condition has 'attribute', 'op' and 'value'")
        name = obj["attribute"]
        problem = attrs.attribute_name_problem(name)
        if problem is not None:
            raise FilterError(f"{path}.attribute", problem.replace("attribute names", "the attribute name"))
        op = obj.get("op")
        if op is None:
            raise FilterError(f"{path}.op", f"is required (one of {', '.join(OPERATORS)})")
        if not isinstance(op, str):
            raise FilterError(f"{path}.op", "must be a string")
        if op not in OPERATORS:
            expected = ", ".join(OPERATORS)
            raise FilterError(f"{path}.op", f"unknown operator {op!r} (expected one of {expected})")
        value_path = f"{path}.value"
        if op in _NO_VALUE_OPS:
            if "value" in obj:
                raise FilterError(value_path, f"{op!r} takes no value")
            return Condition(name, op)
        if "value" not in obj:
            raise FilterError(value_path, f"is required for {op!r}")
        raw = obj["value"]
        if raw is None:
            raise FilterError(value_path, "must not be null (test presence with 'exists' or 'not_exists')")
        if op in _LIST_OPS:
            return Condition(name, op, _list_value(raw, op, value_path))
        if isinstance(raw, list):
            hint = "use 'in' for a list of values" if op in _SCALAR_OPS else "not an array"
            if op == "contains":
                hint = "give one string; an array attribute matches when it holds that string"
            raise FilterError(value_path, f"must be a single value for {op!r} ({hint})")
        value = _scalar(raw, value_path)
        kind = _kind(value)
        if op in _STRING_OPS and kind != "string":
            raise FilterError(value_path, f"must be a string for {op!r} (got a {kind})")
        if op in _ORDERING and kind == "boolean":
            raise FilterError(value_path, f"must be a number, string or datetime for {op!r} (got a boolean)")
        return Condition(name, op, value)


def _scalar(raw: Any, path: str) -> Scalar:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        if not attrs.MIN_INTEGER <= raw <= attrs.MAX_INTEGER:
            raise FilterError(path, "is an integer out of range (must fit in a signed 64-bit integer)")
        return raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise FilterError(path, "must be a finite number (NaN and Infinity are not allowed)")
        return raw
    if isinstance(raw, str):
        if len(raw) > MAX_VALUE_LENGTH:
            raise FilterError(path, f"is a string longer than {MAX_VALUE_LENGTH} characters")
        if not _valid_text(raw):
            raise FilterError(path, "must be valid Unicode text")
        return raw
    if isinstance(raw, dict) and "$time" in raw:
        try:
            micros = attrs.time_object_instant(raw)
        except ValueError as exc:
            raise FilterError(path, str(exc)) from None
        return Time(raw["$time"], micros)
    raise FilterError(path, _SCALAR_EXPECTED)


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_value(raw: Any, op: str, path: str) -> tuple[Scalar, ...]:
    if not isinstance(raw, list):
        raise FilterError(path, f"must be an array of values for {op!r}")
    if not raw:
        raise FilterError(path, f"must hold at least one value for {op!r}")
    if len(raw) > MAX_LIST_VALUES:
        raise FilterError(path, f"holds {len(raw)} values; at most {MAX_LIST_VALUES} are allowed")
    values: list[Scalar] = []
    first_kind = None
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if isinstance(item, list) or item is None:
            raise FilterError(item_path, _SCALAR_EXPECTED)
        value = _scalar(item, item_path)
        kind = _kind(value)
        if first_kind is None:
            first_kind = kind
        elif kind != first_kind:
            raise FilterError(
                item_path,
                f"all values of {op!r} must have the same type (expected a {first_kind}, got a {kind})",
            )
        values.append(value)
    return tuple(values)


def _kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "datetime"


def _value_to_json(value: FilterValue) -> Any:
    if isinstance(value, Time):
        return {"$time": value.text}
    if isinstance(value, tuple):
        return [_value_to_json(item) for item in value]
    return value


# ----------------------------------------------------------------------------- compiling


def _typed(value: Scalar) -> list[Value]:
    """The attribute values a filter scalar is compared with, one per attribute type."""
    if isinstance(value, bool):
        return [Value(attrs.BOOLEAN, value)]
    if isinstance(value, int | float):
        return [Value(attrs.NUMBER, value)]
    if isinstance(value, Time):
        return [Value(attrs.DATETIME, value.micros)]
    typed = [Value(attrs.STRING, value)]
    micros = attrs.string_instant(value)
    if micros is not None:
        typed.append(Value(attrs.DATETIME, micros))
    return typed


def _compile_condition(name: str, op: str, value: FilterValue) -> Matcher:
    if op == "exists":
        return lambda values: values.get(name) is not None
    if op == "not_exists":
        return lambda values: values.get(name) is None
    if op == "contains":
        needle = cast(str, value)  # parse_filter allows contains only with a string

        def contains(values: Mapping[str, Value]) -> bool:
            current = values.get(name)
            # The tag tells the payload's type, which mypy cannot see (Value is one
            # NamedTuple); a cast would cost a call per user evaluated.
            return (
                current is not None
                and (current[0] == "s" or current[0] == "a")
                and needle in current[1]  # type: ignore[operator]  # "s"/"a": a str or tuple payload
            )

        return contains
    if op == "starts_with":
        prefix = cast(str, value)  # parse_filter allows starts_with only with a string

        def starts_with(values: Mapping[str, Value]) -> bool:
            current = values.get(name)
            return (
                current is not None
                and current[0] == "s"
                and current[1].startswith(prefix)  # type: ignore[union-attr]  # "s": a str payload
            )

        return starts_with
    # value is None only for exists/not_exists, handled above
    scalars = value if isinstance(value, tuple) else (cast(Scalar, value),)
    typed = [candidate for scalar in scalars for candidate in _typed(scalar)]
    if op in ("eq", "in"):
        if len(typed) == 1:
            target = typed[0]
            return lambda values: values.get(name) == target
        targets = frozenset(typed)

        def is_in(values: Mapping[str, Value]) -> bool:
            current = values.get(name)
            return current is not None and current[0] != "a" and current in targets

        return is_in
    if op in ("ne", "not_in"):
        types = frozenset(candidate.t for candidate in typed)
        excluded = frozenset(typed)

        def is_not_in(values: Mapping[str, Value]) -> bool:
            current = values.get(name)
            return current is not None and current[0] in types and current not in excluded

        return is_not_in
    compare = _ORDERING[op]
    if len(typed) == 1:
        kind, bound = typed[0]

        def ordered(values: Mapping[str, Value]) -> bool:
            current = values.get(name)
            return current is not None and current[0] == kind and compare(current[1], bound)

        return ordered
    bounds = {candidate.t: candidate.v for candidate in typed}

    def ordered_any(values: Mapping[str, Value]) -> bool:
        current = values.get(name)
        if current is None:
            return False
        bound = bounds.get(current[0])
        return bound is not None and compare(current[1], bound)

    return ordered_any


def _compile_all(matchers: tuple[Matcher, ...]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        return lambda values: first(values) and second(values)

    def all_of(values: Mapping[str, Value]) -> bool:
        for matcher in matchers:  # noqa: SIM110 - faster than all() over a generator
            if not matcher(values):
                return False
        return True

    return all_of


def _compile_any(matchers: tuple[Matcher, ...]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        return lambda values: first(values) or second(values)

    def any_of(values: Mapping[str, Value]) -> bool:
        for matcher in matchers:  # noqa: SIM110 - faster than any() over a generator
            if matcher(values):
                return True
        return False

    return any_of


# ----------------------------------------------------------------------------- describing

_PHRASES = {
    "eq": "equals",
    "ne": "does not equal",
    "gt": "is greater than",
    "gte": "is greater than or equal to",
    "lt": "is less than",
    "lte": "is less than or equal to",
    "in": "is one of",
    "not_in": "is not one of",
    "contains": "contains",
    "starts_with": "starts with",
    "exists": "exists",
    "not_exists": "does not exist",
}
_TIME_PHRASES = {"gt": "is after", "gte": "is on or after", "lt": "is before", "lte": "is on or before"}


def _describe(filter: Filter, nested: bool) -> str:
    if isinstance(filter, Condition):
        text = _describe_condition(filter)
        several = isinstance(filter.value, tuple) and len(filter.value) > 1
        return f"({text})" if nested and several else text
    if isinstance(filter, Not):
        return f"not ({_describe(filter.child, nested=False)})"
    if len(filter.children) == 1:
        return _describe(filter.children[0], nested)
    joiner = " and " if isinstance(filter, AllOf) else " or "
    text = joiner.join(_describe(child, nested=True) for child in filter.children)
    return f"({text})" if nested else text


def _describe_condition(condition: Condition) -> str:
    op, value = condition.op, condition.value
    phrase = _PHRASES[op]
    if op in _TIME_PHRASES and _is_time_like(value):
        phrase = _TIME_PHRASES[op]
    if op in _NO_VALUE_OPS:
        return f"{condition.attribute} {phrase}"
    if isinstance(value, tuple):
        shown = ", ".join(_show(item) for item in value)
    else:  # value is None only for exists/not_exists, returned above
        shown = _show(cast(Scalar, value))
    return f"{condition.attribute} {phrase} {shown}"


def _is_time_like(value: FilterValue) -> bool:
    return isinstance(value, Time) or (isinstance(value, str) and attrs.string_instant(value) is not None)


def _show(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value.text if isinstance(value, Time) else value
    escaped = json.dumps(text, ensure_ascii=False)[1:-1].replace('\\"', '"').replace("'", "\\'")
    return f"'{escaped}'"
