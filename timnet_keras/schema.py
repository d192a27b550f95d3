"""Typed JSON in: a record's fields checked against its dataclass, so a typo or a wrong type is named, never dropped.

Run configs and registry records are hand-editable JSON. Before this, an
unknown key vanished and `"seed": "46"` failed far away with a traceback;
now the file, the field and what was expected are in one error line.
"""
import dataclasses
import types
import typing

from timnet_keras.errors import RecordError  # noqa: F401  (raised here; callers import it from here too)


def _accepts(kind, value):
    if kind is typing.Any:
        return True
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return any(_accepts(member, value) for member in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is tuple or typing.get_origin(kind) is tuple:
        return isinstance(value, (list, tuple))
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True


def _name(kind):
    return getattr(kind, "__name__", str(kind)).replace("NoneType", "null")


def checked_fields(cls, data, where, ignored=(), nested=()):
    """`data`'s fields for `cls(**fields)`, after checking names and types; RecordError otherwise.

    `ignored` keys are derived ones a writer adds for human readers; `nested` fields are
    converted by the caller, so only their presence is checked here.

    Example:
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int
        ...     label: str = ""
        >>> checked_fields(Point, {"x": 1}, "p.json")
        {'x': 1}
        >>> checked_fields(Point, {"x": "1"}, "p.json")
        Traceback (most recent call last):
        ...
        timnet_keras.errors.RecordError: p.json: field 'x' is "1" (a str); expected int
    """
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object, found {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields) - set(ignored))
    if unknown:
        raise RecordError(f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key in fields and key not in nested and not _accepts(hints[key], value):
            shown = f'"{value}"' if isinstance(value, str) else repr(value)
            raise RecordError(f"{where}: field {key!r} is {shown} (a {type(value).__name__}); expected {_name(hints[key])}")
    missing = [name for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecordError(f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    return {k: v for k, v in data.items() if k in fields}
