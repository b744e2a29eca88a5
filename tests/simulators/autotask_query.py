"""Autotask REST query filters: ``[{"op": "eq", "field": "companyID", "value": 1}, ...]``.

Top-level items are ANDed; ``{"op": "and"|"or", "items": [...]}`` groups.
Operators are the documented ones, spelled as documented (``beginsWith``,
``notExist``; ``startsWith`` or ``isNull`` are refused). Field names and the
keys of a filter item (``op``/``Op``) are case-insensitive, as .NET model
binding is. Values are coerced to the field's type (``"123"`` for an integer
field is accepted, ``"abc"`` is refused); strings compare case-insensitively
(SQL Server collation). ``"udf": true`` filters on ``userDefinedFields`` by name.
"""

import operator
from collections.abc import Callable, Mapping
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

COMPARISONS = ("eq", "noteq", "gt", "gte", "lt", "lte", "beginsWith", "endsWith", "contains")
OPERATORS = (*COMPARISONS, "exist", "notExist", "in", "notIn")
GROUPS = ("and", "or")
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class QueryError(ValueError):
    """A filter the API would refuse (answered 500 with ``{"errors": [...]}``)."""


def lower_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in item.items()}


def _coerce(value: Any, kind: type, field: str) -> Any:
    if value is None:
        return None
    if kind is int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise QueryError(f"Value {value!r} is not valid for the integer field {field}.")
    if isinstance(value, dict | list):
        raise QueryError(f"Value {value!r} is not valid for the field {field}.")
    return str(value).lower()


def _cmp(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return op == "noteq" and right is not None
    if op == "eq":
        return bool(left == right)
    if op == "noteq":
        return bool(left != right)
    if op in ("beginsWith", "endsWith", "contains"):
        text, part = str(left), str(right)
        if op == "beginsWith":
            return text.startswith(part)
        if op == "endsWith":
            return text.endswith(part)
        return part in text
    try:
        return bool(_ORDER[op](left, right))
    except TypeError:
        return False


def compile_filter(items: Any, fields: Mapping[str, type]) -> Predicate:
    """A predicate for a filter list; :class:`QueryError` for anything invalid."""
    if not isinstance(items, list) or not items:
        raise QueryError("A filter is required: at least one filter item must be given.")
    canonical = {name.lower(): name for name in fields}
    parts = [_compile(item, fields, canonical) for item in items]
    return lambda record: all(p(record) for p in parts)


def _compile(item: Any, fields: Mapping[str, type], canonical: Mapping[str, str]) -> Predicate:
    if not isinstance(item, Mapping):
        raise QueryError(f"A filter item must be an object, got {item!r}.")
    spec = lower_keys(item)
    op = spec.get("op")
    if op in GROUPS:
        children = spec.get("items")
        if not isinstance(children, list) or not children:
            raise QueryError(f"The {op!r} group needs a non-empty items list.")
        parts = [_compile(child, fields, canonical) for child in children]
        if op == "and":
            return lambda record: all(p(record) for p in parts)
        return lambda record: any(p(record) for p in parts)
    if op not in OPERATORS:
        raise QueryError(f"{op!r} is not a valid filter operator.")
    raw_field = spec.get("field")
    if not isinstance(raw_field, str) or not raw_field:
        raise QueryError("A filter item needs a field.")
    if spec.get("udf"):
        return _compile_udf(op, raw_field, spec.get("value"))
    field = canonical.get(raw_field.lower())
    if field is None:
        raise QueryError(f"Unable to find {raw_field} in the entity.")
    kind = fields[field]

    def get(record: Record) -> Any:
        value = record.get(field)
        return _coerce(value, kind, field) if value is not None else None

    if op in ("exist", "notExist"):
        want = op == "exist"
        return lambda record: (get(record) not in (None, "")) is want
    if "value" not in spec:
        raise QueryError(f"The {op} filter on {field} needs a value.")
    value = spec["value"]
    if op in ("in", "notIn"):
        if not isinstance(value, list):
            raise QueryError(f"The {op} filter on {field} needs a list of values.")
        allowed = [_coerce(v, kind, field) for v in value]
        inside = op == "in"
        return lambda record: (get(record) in allowed) is inside
    if op in ("beginsWith", "endsWith", "contains") and kind is not str:
        raise QueryError(f"The {op} operator is only valid for string fields ({field}).")
    target = _coerce(value, kind, field)
    return lambda record: _cmp(op, get(record), target)


def _compile_udf(op: str, name: str, value: Any) -> Predicate:
    def get(record: Record) -> Any:
        for udf in record.get("userDefinedFields") or []:
            if str(udf.get("name", "")).lower() == name.lower():
                found = udf.get("value")
                return None if found is None else str(found).lower()
        return None

    if op in ("exist", "notExist"):
        want = op == "exist"
        return lambda record: (get(record) not in (None, "")) is want
    if op in ("in", "notIn"):
        allowed = [str(v).lower() for v in value or []]
        inside = op == "in"
        return lambda record: (get(record) in allowed) is inside
    target = None if value is None else str(value).lower()
    return lambda record: _cmp(op, get(record), target)
