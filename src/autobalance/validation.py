"""Field checks of the config dataclasses: declared fields only, types and ranges.

A config value that silently corrupts a run (a negative clip norm or bound, a NaN learning rate,
``epochs: true`` read as 1) is refused where it is set, with one line naming the field, the
valid range and the value. :class:`StrictConfig` is the mixin: every assignment — in
``__init__`` and later, ``cfg.train.epochs = 5`` — is checked against the field's type hint and
its rule in ``RULES``; assigning a field the class does not declare (``cfg.train.epoch = 1``)
raises AttributeError. Cross-field checks stay in each class's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Union, cast, get_args, get_origin, get_type_hints

Rule = Callable[[Any], str | None]


def at_least(lo: float) -> Rule:
    return lambda v: None if v >= lo else f"must be ≥ {lo:g}"


def greater_than(lo: float) -> Rule:
    return lambda v: None if v > lo else f"must be > {lo:g}"


def within(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """``v`` in the interval from ``lo`` to ``hi`` (closed unless ``*_open``)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"

    def rule(v: Any) -> str | None:
        ok_lo = v > lo if lo_open else v >= lo
        ok_hi = v < hi if hi_open else v <= hi
        return None if ok_lo and ok_hi else f"must lie in {left}{lo:g}, {hi:g}{right}"

    return rule


def nonempty(v: Any) -> str | None:
    return None if len(v) else "must not be empty"


def _is_optional(hint: Any) -> tuple[bool, Any]:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) < len(get_args(hint)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return False, hint


def check_type(hint: Any, value: Any, where: str) -> Any:
    """``value`` as type ``hint`` (ints as int, finite floats as float, lists as tuples)."""
    optional, inner = _is_optional(hint)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{where} must not be null")
    hint = inner
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, numbers.Integral):
            return int(cast(Any, value))
        if math.isfinite(float(value)) and float(value).is_integer():
            return int(float(value))
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{where} must be finite, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{where} must be a string, got {value!r}")
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list, got {value!r}")
        args = get_args(hint)
        item = args[0] if args else Any
        return tuple(check_type(item, v, where) for v in value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise ValueError(f"{where} must be a {hint.__name__}, got {type(value).__name__}")
    return value


class StrictConfig:
    """Mixin of the config dataclasses (see the module docstring).

    Subclasses set ``SECTION`` (the prefix in messages, e.g. ``"train."``) and ``RULES``
    (field → range rules, each returning None or what is wrong).
    """

    SECTION: ClassVar[str] = ""
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {}
    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _field_hints(cls) -> dict[str, Any]:
        hints = StrictConfig._hints.get(cls)
        if hints is None:
            names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
            hints = {k: v for k, v in get_type_hints(cls).items() if k in names}
            StrictConfig._hints[cls] = hints
        return hints

    def _check(self, name: str, value: Any) -> Any:
        cls = type(self)
        hints = cls._field_hints()
        if name not in hints:
            raise AttributeError(
                f"{cls.__name__} has no setting '{cls.SECTION}{name}'; valid: {sorted(hints)}"
            )
        where = f"{cls.SECTION}{name}"
        value = check_type(hints[name], value, where)
        if value is not None:
            for rule in cls.RULES.get(name, ()):
                problem = rule(value)
                if problem:
                    raise ValueError(f"{where} {problem}, got {value!r}")
        return value

    if not typing.TYPE_CHECKING:  # keep mypy's checks of attribute names

        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, self._check(name, value))


__all__ = ["Rule", "StrictConfig", "at_least", "check_type", "greater_than", "nonempty", "within"]
