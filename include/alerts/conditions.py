"""Alert conditions: whether a query's value meets a condition (pure logic, no I/O)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
NULL_CHECKS = ("is_null", "is_not_null")
#: Relative change since the previous value, in percent: any direction, decrease, increase.
CHANGE_CHECKS = ("change_pct", "drop_pct", "rise_pct")
CONDITIONS = (*COMPARISONS, *NULL_CHECKS, *CHANGE_CHECKS)

#: Other spellings accepted on input (Redash's legacy names, SQL-ish forms).
ALIASES = {
    "is null": "is_null",
    "is not null": "is_not_null",
    "not null": "is_not_null",
    "=": "==",
    "<>": "!=",
    "gt": ">",
    "greater than": ">",
    "gte": ">=",
    "lt": "<",
    "less than": "<",
    "lte": "<=",
    "eq": "==",
    "equals": "==",
    "ne": "!=",
}


class ConditionError(ValueError):
    """The value cannot be judged by the condition (the alert goes to ``error``)."""


def normalize_condition(condition: str) -> str:
    """The canonical name of ``condition``; unknown names raise, listing the valid ones."""
    text = " ".join(str(condition).strip().lower().split())
    text = ALIASES.get(text, text)
    if text not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
    return text


def needs_threshold(condition: str) -> bool:
    return condition not in NULL_CHECKS


@dataclass(frozen=True)
class QueryValue:
    """The single value an alert query returned: as a number when it is one, and as text."""

    number: float | None
    text: str | None
    is_null: bool


def to_query_value(raw: Any) -> QueryValue:
    """Convert a value from the database; booleans count as 1/0, numeric strings as numbers."""
    if raw is None:
        return QueryValue(None, None, True)
    if isinstance(raw, bool):
        return QueryValue(1.0 if raw else 0.0, str(raw).lower(), False)
    if isinstance(raw, (int, float, Decimal)):
        number = float(raw)
        return QueryValue(number if math.isfinite(number) else None, str(raw), False)
    text = str(raw)
    try:
        number = float(text)
    except ValueError:
        return QueryValue(None, text[:200], False)
    return QueryValue(number if math.isfinite(number) else None, text[:200], False)


def change_percent(value: float, previous: float) -> float:
    """Signed change from ``previous`` to ``value`` in percent (infinite when previous is 0)."""
    if previous == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - previous) / abs(previous) * 100.0


def condition_met(
    condition: str,
    threshold: float | None,
    value: QueryValue,
    previous: float | None = None,
) -> bool:
    """Whether ``value`` meets ``condition``.

    Comparisons and change conditions need a numeric value; change conditions are not met on
    the first check (there is no previous value yet). Raises :class:`ConditionError` when the
    value cannot be judged.
    """
    if condition == "is_null":
        return value.is_null
    if condition == "is_not_null":
        return not value.is_null
    if condition not in COMPARISONS and condition not in CHANGE_CHECKS:
        raise ConditionError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
    if threshold is None:
        raise ConditionError(f"condition {condition!r} needs a threshold")
    if value.is_null:
        raise ConditionError(
            "the query returned no value (NULL or no rows); use the 'is_null' condition to alert on missing data"
        )
    if value.number is None:
        raise ConditionError(f"the query returned {value.text!r}, which is not a number")
    if condition in COMPARISONS:
        return COMPARISONS[condition](value.number, threshold)
    if previous is None:
        return False
    change = change_percent(value.number, previous)
    if condition == "drop_pct":
        return -change > threshold
    if condition == "rise_pct":
        return change > threshold
    return abs(change) > threshold


def describe_condition(condition: str, threshold: float | None) -> str:
    """Human words for a condition, e.g. ``value > 100`` or ``dropped by more than 20 %``."""
    shown = format_number(threshold)
    if condition == "is_null":
        return "value is null"
    if condition == "is_not_null":
        return "value is not null"
    if condition == "change_pct":
        return f"changed by more than {shown} % since the previous check"
    if condition == "drop_pct":
        return f"dropped by more than {shown} % since the previous check"
    if condition == "rise_pct":
        return f"rose by more than {shown} % since the previous check"
    return f"value {condition} {shown}"


def format_number(number: float | None) -> str:
    """A number for people: integers without ``.0``, others with up to 6 significant digits."""
    if number is None:
        return "null"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.6g}"
