"""Numbers are numbers: one rule for bemctl.toml, experiment specs and variant configs.

YAML and TOML `true` is a bool, and Python's bool is an int, so pydantic would read
`batch_size: true` as 1. Specs refuse strings in number fields too (`"16"`, `"1e-3"`): a
quoted number is a typo the user should see, not something to guess at; and an integer
field takes no float (`rank_dimension: 8.0`). (bemctl.toml's
fields keep accepting strings, because BEMCTL_* environment variables are strings.)
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def not_a_bool(value: Any) -> Any:
    """A number field refuses a boolean (bemctl.toml's `Int`/`Float`)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _what(expected: type) -> str:
    return "an integer" if expected is int else "a number"


class NotANumber:
    """Stands in for a value a number field must refuse: no int or float validator accepts
    it, so pydantic reports the field (with its exact location, list items included), and
    `format_validation_errors` shows `reason` and the original value instead of pydantic's
    generic "Input should be a valid integer"."""

    __slots__ = ("reason", "value")

    def __init__(self, value: Any, reason: str) -> None:
        self.value, self.reason = value, reason

    def __repr__(self) -> str:
        return repr(self.value)


def mark_non_numbers(annotation: Any, value: Any) -> Any:
    """`value` with every boolean, string (and, for an int, float) that would land in an
    int or float (also optional, or inside a list, tuple or dict) replaced by a NotANumber;
    `value` itself when there is nothing to refuse. Other types are not judged here."""
    if annotation in (int, float):
        reason = None
        if isinstance(value, bool):
            reason = f"must be {_what(annotation)}, not a boolean"
        elif isinstance(value, str):
            reason = f"must be {_what(annotation)}, not a string"
        elif annotation is int and isinstance(value, float):
            reason = "must be an integer, not a float"
        return value if reason is None else NotANumber(value, reason)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return mark_non_numbers(args[0], value)
    if origin in (typing.Union, types.UnionType):
        numeric = [a for a in args if a is not type(None)]
        if value is None or len(numeric) != 1:
            return value  # None is fine; int | str etc. is not a number field
        return mark_non_numbers(numeric[0], value)
    if origin in (list, set, frozenset, tuple) and isinstance(value, list | tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            types_ = list(args) + [Any] * max(0, len(value) - len(args))
        else:
            types_ = [args[0] if args else Any] * len(value)
        marked = [mark_non_numbers(t, v) for t, v in zip(types_, value, strict=False)]
        changed = any(m is not v for m, v in zip(marked, value, strict=False))
        return type(value)(marked) if changed else value
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        marked_dict = {k: mark_non_numbers(args[1], v) for k, v in value.items()}
        changed = any(marked_dict[k] is not v for k, v in value.items())
        return marked_dict if changed else value
    return value


class StrictNumbers(BaseModel):
    """Base of spec sections and variant configs: every int/float field (also optional or
    inside a list, tuple or dict) refuses booleans and strings (an int field also floats),
    and floats must be finite. Subclasses get the rule for the fields they add, without
    marking each one (the discriminator `variant` of a variant config is a Literal and is
    left alone)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        result = data
        for name, field in cls.model_fields.items():
            if name not in data:
                continue
            marked = mark_non_numbers(field.annotation, data[name])
            if marked is not data[name]:
                if result is data:
                    result = dict(data)
                result[name] = marked
        return result
