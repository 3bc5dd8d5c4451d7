"""Validation of user attributes sent to ``POST /users/track`` (docs/api.md). Pure.

One attributes object is ``{"external_id": "u1", "country": "US", "age": 31, ...}``. It
becomes a ``UserAttributes``: the attributes to set (typed ``Value``s) and the names to
remove (those given as ``null``).

Values and their types (the ``t`` tag of ``Value``):

==========  =====================================================================
``"s"``     a string of at most ``MAX_STRING_LENGTH`` (1024) characters. Braze keeps
            255; we accept more so that anything Braze accepts is accepted here.
``"n"``     a number: an integer in the signed 64-bit range, or a finite float.
            ``true``/``false`` are booleans, never numbers.
``"b"``     a boolean.
``"d"``     a datetime, stored as microseconds since the Unix epoch (an instant). Given
            either as ``{"$time": "<ISO-8601>"}`` (Braze's explicit form; without an
            offset the time is UTC, a bare date is midnight UTC) or as a plain string
            that is an ISO-8601 datetime *with* an offset (``Z``, ``+02:00``, ``+0200``,
            ``+02``, ``-5:00``), e.g. ``"2025-06-01T12:00:00Z"``: Braze treats ISO-8601
            strings as times, and so do we when the instant is unambiguous. A string
            without an offset (``"2025-06-01"``, ``"2025-06-01T12:00"``) stays a string.
            Datetimes must lie within years 0001..9999 in UTC; a string outside that
            range stays a string.
``"a"``     an array of at most ``MAX_ARRAY_ITEMS`` (100) strings, each at most
            ``MAX_STRING_LENGTH`` characters, kept in the order given (duplicates
            kept). Array items are never converted to datetimes. ``[]`` is allowed.
==========  =====================================================================

``null`` removes the attribute. Objects other than ``{"$time": ...}`` are refused:
Braze's ``{"inc": n}``, ``{"add": [...], "remove": [...]}`` and nested custom
attributes are not supported.

Attribute names: 1..255 characters, not starting with ``$``, without control characters
(Unicode category Cc) or lone surrogates. At most ``MAX_ATTRIBUTES_PER_OBJECT`` (256)
attribute keys per object (``external_id`` and ``_update_existing_only`` not counted).

Identification is by ``external_id`` only (required, 1..997 characters). Braze keys that
we do not support (``user_alias``, ``braze_id``, ``events``/``purchases`` placed inside an
attributes object, ``_merge_objects``, push tokens, subscription groups) make the object
refused with a message naming the key. ``_update_existing_only`` is accepted as a
boolean and reported as ``UserAttributes.update_existing_only``; applying it is the
caller's job.

A request (``validate_users_batch``) is ``{"attributes": [...]}`` with at most 75
objects (as Braze). Each object is independent: valid ones are returned with their index
in ``attributes``, invalid ones as ``{"index": i, "message": ...}``. Braze's other parts,
``events`` and ``purchases`` (also at most 75 each), are not supported: each of their
objects is refused with ``{"index": i, "part": "events", "message": ...}`` where ``i`` is
the index within *that* part's array. Errors of ``attributes`` objects carry no
``part`` key, exactly like the errors of ``POST /sessions/track``. Other unknown
top-level keys are ignored. Several objects with the same ``external_id`` are all valid
and are meant to be applied in index order (the last write wins).

Storage form of a value (``encode_value``/``decode_value``): ``{"t": "s"|"n"|"b"|"d"|"a",
"v": ...}`` with datetimes as integer epoch microseconds and arrays as JSON arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from . import limits
from .timeparse import TimeParseError, parse_instant, parse_timestamp, to_epoch_micros

# ----------------------------------------------------------------------------- limits

MAX_EXTERNAL_ID_LENGTH = limits.MAX_EXTERNAL_ID_LENGTH  # 997, as Braze
MAX_ATTRIBUTE_NAME_LENGTH = 255
MAX_STRING_LENGTH = 1024
MAX_ARRAY_ITEMS = 100
MAX_ATTRIBUTES_PER_OBJECT = 256
MAX_OBJECTS_PER_REQUEST = 75  # per part (attributes, events, purchases), as Braze
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INSTANT_US = to_epoch_micros(datetime(1, 1, 1, tzinfo=UTC))
MAX_INSTANT_US = to_epoch_micros(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))

# ----------------------------------------------------------------------------- values

STRING = "s"
NUMBER = "n"
BOOLEAN = "b"
DATETIME = "d"
ARRAY = "a"

ScalarPayload = str | int | float | bool
Payload = ScalarPayload | tuple[str, ...]


class Value(NamedTuple):
    """A typed attribute value. ``v`` is: str (s), int or float (n), bool (b), int epoch
    microseconds (d), tuple of str (a). Immutable and hashable; equal values compare equal
    (``Value("n", 1) == Value("n", 1.0)``), values of different types never do."""

    t: str
    v: Payload


UPDATE_EXISTING_ONLY = "_update_existing_only"
UNSUPPORTED_KEYS: dict[str, str] = {
    "user_alias": "'user_alias' is not supported: users are identified by 'external_id' only",
    "braze_id": "'braze_id' is not supported: users are identified by 'external_id' only",
    "events": "'events' is not supported inside an attributes object (and events are not supported)",
    "purchases": "'purchases' is not supported inside an attributes object (and purchases are not supported)",
    "_merge_objects": "'_merge_objects' is not supported: nested custom attributes are not supported",
    "push_token_import": "'push_token_import' is not supported",
    "push_tokens": "'push_tokens' is not supported",
    "subscription_groups": "'subscription_groups' is not supported",
}
UNSUPPORTED_PARTS = ("events", "purchases")

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Cheap pre-filter before parse_instant: a datetime (date, 'T' or space, hh:mm) that ends
# in an explicit offset. Excludes timeparse's query-string forms (a space for '+').
_DATETIME_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+\-]\d{1,2}(?::?\d{2})?)",
    re.ASCII,
)


class AttributesError(ValueError):
    """One attributes object is invalid (the message says which key and why)."""


class UsersBatchError(ValueError):
    """The body is not ``{"attributes": [...]}`` of an acceptable shape."""


@dataclass(frozen=True, slots=True)
class UserAttributes:
    external_id: str
    set: dict[str, Value] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    update_existing_only: bool = False


# ----------------------------------------------------------------------------- helpers


def attribute_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid attribute name, or None if it is."""
    if not isinstance(name, str):
        return "attribute names must be strings"
    if not 1 <= len(name) <= MAX_ATTRIBUTE_NAME_LENGTH:
        return f"attribute names must be 1 to {MAX_ATTRIBUTE_NAME_LENGTH} characters"
    if name.startswith("$"):
        return "attribute names must not start with '$'"
    if _CONTROL.search(name):
        return "attribute names must not contain control characters"
    if _LONE_SURROGATE.search(name):
        return "attribute names must be valid Unicode text"
    return None


def string_instant(text: str) -> int | None:
    """Epoch microseconds if ``text`` is an ISO-8601 datetime with an offset, in range;
    else None. This is the rule that turns a string into a datetime, both for attribute
    values and for segment filter values."""
    if len(text) > 40 or not _DATETIME_WITH_OFFSET.fullmatch(text):
        return None
    try:
        micros = to_epoch_micros(parse_instant(text))
    except (TimeParseError, OverflowError, ValueError):
        return None
    return micros if MIN_INSTANT_US <= micros <= MAX_INSTANT_US else None


def time_object_instant(obj: Mapping[str, Any]) -> int:
    """Epoch microseconds of ``{"$time": "<ISO-8601>"}``, or ValueError.

    Any form ``timeparse`` reads is accepted; without an offset the time is UTC and a
    bare date is midnight UTC."""
    if len(obj) != 1 or "$time" not in obj:
        raise ValueError('a datetime object must be exactly {"$time": "<ISO-8601 datetime>"}')
    text = obj["$time"]
    if not isinstance(text, str):
        raise ValueError("'$time' must be an ISO-8601 datetime string")
    try:
        moment = parse_timestamp(text)
    except TimeParseError as exc:
        raise ValueError(f"'$time' {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = to_epoch_micros(moment)
    if not MIN_INSTANT_US <= micros <= MAX_INSTANT_US:
        raise ValueError("'$time' is out of range (years 0001 to 9999 in UTC)")
    return micros


def format_instant(micros: int) -> str:
    """ISO-8601 UTC text of epoch microseconds: ``2025-06-01T12:00:00Z`` (with
    ``.ffffff`` only when there are microseconds)."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.replace(tzinfo=None).isoformat() + "Z"  # isoformat pads years < 1000


def _valid_text(text: str) -> bool:
    return not _LONE_SURROGATE.search(text)


def parse_value(raw: Any) -> Value | None:
    """The typed value of one attribute as sent in JSON; None means "remove".

    ValueError (message without the attribute name) when the value is not acceptable."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return Value(BOOLEAN, raw)
    if isinstance(raw, int):
        if not MIN_INTEGER <= raw <= MAX_INTEGER:
            raise ValueError("is an integer out of range (must fit in a signed 64-bit integer)")
        return Value(NUMBER, raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number (NaN and Infinity are not allowed)")
        return Value(NUMBER, raw)
    if isinstance(raw, str):
        if len(raw) > MAX_STRING_LENGTH:
            raise ValueError(f"is a string longer than {MAX_STRING_LENGTH} characters")
        if not _valid_text(raw):
            raise ValueError("must be valid Unicode text")
        micros = string_instant(raw)
        return Value(STRING, raw) if micros is None else Value(DATETIME, micros)
    if isinstance(raw, list):
        if len(raw) > MAX_ARRAY_ITEMS:
            raise ValueError(f"is an array of {len(raw)} items; at most {MAX_ARRAY_ITEMS} are allowed")
        for position, item in enumerate(raw):
            if not isinstance(item, str):
                raise ValueError(f"must be an array of strings (item {position} is not a string)")
            if len(item) > MAX_STRING_LENGTH:
                raise ValueError(f"item {position} is longer than {MAX_STRING_LENGTH} characters")
            if not _valid_text(item):
                raise ValueError(f"item {position} must be valid Unicode text")
        return Value(ARRAY, tuple(raw))
    if isinstance(raw, dict):
        if "$time" in raw:
            return Value(DATETIME, time_object_instant(raw))
        keys = ", ".join(repr(key) for key in list(raw)[:3])
        raise ValueError(
            f"is an object ({keys or 'empty'}); only {{\"$time\": ...}} is supported "
            "(Braze's increments, array add/remove and nested attributes are not)"
        )
    raise ValueError("must be a string, number, boolean, array of strings, {\"$time\": ...} or null")


# ----------------------------------------------------------------------------- objects


def validate_user(obj: Any) -> UserAttributes:
    """One attributes object, or AttributesError naming the offending key."""
    if not isinstance(obj, dict):
        raise AttributesError("each attributes object must be a JSON object")
    for key, message in UNSUPPORTED_KEYS.items():
        if key in obj:
            raise AttributesError(message)
    external_id = obj.get("external_id")
    if external_id is None:
        raise AttributesError("'external_id' is required")
    if not isinstance(external_id, str):
        raise AttributesError("'external_id' must be a string")
    if not 1 <= len(external_id) <= MAX_EXTERNAL_ID_LENGTH:
        raise AttributesError(f"'external_id' must be 1 to {MAX_EXTERNAL_ID_LENGTH} characters")
    update_existing_only = obj.get(UPDATE_EXISTING_ONLY, False)
    if not isinstance(update_existing_only, bool):
        raise AttributesError(f"'{UPDATE_EXISTING_ONLY}' must be a boolean")
    count = len(obj) - 1 - (UPDATE_EXISTING_ONLY in obj)
    if count > MAX_ATTRIBUTES_PER_OBJECT:
        raise AttributesError(
            f"the object has {count} attributes; at most {MAX_ATTRIBUTES_PER_OBJECT} are allowed per object"
        )
    to_set: dict[str, Value] = {}
    to_remove: list[str] = []
    for name, raw in obj.items():
        if name in ("external_id", UPDATE_EXISTING_ONLY):
            continue
        problem = attribute_name_problem(name)
        if problem is not None:
            shown = name[:40] + "..." if isinstance(name, str) and len(name) > 40 else name
            raise AttributesError(f"attribute {shown!r}: {problem}")
        try:
            value = parse_value(raw)
        except ValueError as exc:
            raise AttributesError(f"attribute {name!r} {exc}") from None
        if value is None:
            to_remove.append(name)
        else:
            to_set[name] = value
    return UserAttributes(external_id, to_set, to_remove, update_existing_only)


def validate_users_batch(body: Any) -> tuple[list[tuple[int, UserAttributes]], list[dict[str, Any]]]:
    """All objects of a ``/users/track`` body: ``(valid, errors)``.

    ``valid`` is ``[(index in "attributes", UserAttributes)]`` in index order; ``errors``
    is ``[{"index", "message"}]`` for attributes objects, then ``[{"index", "part",
    "message"}]`` for each object of an unsupported part. UsersBatchError if the body
    itself is not of an acceptable shape (not an object, a part that is not an array, a
    part with more than 75 objects, or nothing at all to process)."""
    if not isinstance(body, dict):
        raise UsersBatchError('body must be a JSON object like {"attributes": [...]}')
    parts: dict[str, list[Any]] = {}
    for part in ("attributes", *UNSUPPORTED_PARTS):
        items = body.get(part)
        if items is None:
            continue
        if not isinstance(items, list):
            raise UsersBatchError(f"'{part}' must be an array of objects")
        if len(items) > MAX_OBJECTS_PER_REQUEST:
            raise UsersBatchError(
                f"'{part}' holds {len(items)} objects; "
                f"at most {MAX_OBJECTS_PER_REQUEST} are allowed per request"
            )
        parts[part] = items
    if not any(parts.values()):
        raise UsersBatchError("'attributes' must hold at least one attributes object")
    valid: list[tuple[int, UserAttributes]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(parts.get("attributes", ())):
        try:
            valid.append((index, validate_user(item)))
        except AttributesError as exc:
            errors.append({"index": index, "message": str(exc)})
    for part in UNSUPPORTED_PARTS:
        for index in range(len(parts.get(part, ()))):
            errors.append(
                {
                    "index": index,
                    "part": part,
                    "message": f"'{part}' are not supported by this service; only 'attributes' are processed",
                }
            )
    return valid, errors


def apply_update(current: Mapping[str, Value], update: UserAttributes) -> dict[str, Value]:
    """The attributes after ``update``: removals, then sets (a name cannot be in both)."""
    result = dict(current)
    for name in update.remove:
        result.pop(name, None)
    result.update(update.set)
    return result


# ----------------------------------------------------------------------------- storage


def encode_value(value: Value) -> dict[str, Any]:
    """JSON-serialisable storage form ``{"t": ..., "v": ...}``."""
    kind, payload = value
    if kind == ARRAY:
        return {"t": ARRAY, "v": list(cast(tuple[str, ...], payload))}  # an "a" payload is a tuple
    return {"t": kind, "v": payload}


def decode_value(obj: Any) -> Value:
    """The ``Value`` of a storage form; ValueError if it is not a well-formed one."""
    if not isinstance(obj, dict) or set(obj) != {"t", "v"}:
        raise ValueError('a stored value must be {"t": ..., "v": ...}')
    kind, payload = obj["t"], obj["v"]
    if kind == STRING and isinstance(payload, str):
        return Value(STRING, payload)
    if kind == NUMBER and isinstance(payload, int | float) and not isinstance(payload, bool):
        if isinstance(payload, float) and not math.isfinite(payload):
            raise ValueError("a stored number must be finite")
        return Value(NUMBER, payload)
    if kind == BOOLEAN and isinstance(payload, bool):
        return Value(BOOLEAN, payload)
    if kind == DATETIME and isinstance(payload, int) and not isinstance(payload, bool):
        return Value(DATETIME, payload)
    if kind == ARRAY and isinstance(payload, list | tuple) and all(isinstance(i, str) for i in payload):
        return Value(ARRAY, tuple(payload))
    raise ValueError(f"a stored value has type tag {kind!r} and a payload that does not fit it")


def encode_values(values: Mapping[str, Value]) -> dict[str, dict[str, Any]]:
    return {name: encode_value(value) for name, value in values.items()}


def decode_values(obj: Any) -> dict[str, Value]:
    if not isinstance(obj, dict):
        raise ValueError("stored attributes must be a JSON object")
    return {name: decode_value(stored) for name, stored in obj.items()}


def value_to_json(value: Value) -> Any:
    """The plain JSON a client would send for ``value`` (datetimes as ISO-8601 UTC text);
    ``parse_value(value_to_json(v)) == v`` for every valid value."""
    kind, payload = value
    if kind == DATETIME:
        return format_instant(cast(int, payload))  # a "d" payload is epoch microseconds
    if kind == ARRAY:
        return list(cast(tuple[str, ...], payload))  # an "a" payload is a tuple
    return payload
