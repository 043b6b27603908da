"""The rules of config dataclasses, and the one builder that checks a TOML or JSON table against them.

Every config section of midtecg is the library's own dataclass (``SSSDConfig`` for ``[model]``,
``DiffusionConfig`` for ``[diffusion]``, ``ObjectiveConfig`` for ``[objective]``, the training sections of
``midtecg.training.config``); a field states its rules in its metadata:

- ``checked(default, min=, max=, above=, below=, nonempty=, one_of=)``: a value with its allowed range or
  choices, checked on load (for a tuple field the rules apply to each item);
- ``derived(default, by=...)``: a value the library sets from the data (the cache's signal length, its
  sampling rate, the condition groups); a config file that states it is refused, since it would be ignored.

:func:`build` turns a table into the dataclass: types strict (an integer is an integer, a boolean a
boolean, a list a list), ranges and choices checked, unknown keys refused, each error naming the source
(the file), the section and the key. Nothing here imports torch, so a config is checked at once.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from typing import Any

__all__ = ["checked", "derived", "build"]


def checked(default, **rules):
    """A field with its rules (``min`` / ``max`` inclusive, ``above`` / ``below`` exclusive, ``one_of`` a
    tuple of choices, ``nonempty`` for a tuple field that needs an item); a list default is kept as a tuple."""
    if isinstance(default, (list, tuple)):
        value = tuple(default)
        return field(default_factory=lambda: value, metadata=rules)
    return field(default=default, metadata=rules)


def derived(default=dataclasses.MISSING, *, by: str, default_factory=dataclasses.MISSING, **rules):
    """A field the library sets (``by`` says from what), with its rules as for :func:`checked`; a config
    table may not state it, a model file written by midtecg does (and is checked against the rules)."""
    return field(default=default, default_factory=default_factory, metadata={"derived": by, **rules})


def _type_problem(kind, value) -> str | None:
    """Why ``value`` is not of the annotated ``kind`` (None when it is)."""
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false (a boolean)"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind is str:
        return None if isinstance(value, str) else "must be a string"
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple:  # tuple[X, ...]: an array of X
        if not isinstance(value, (list, tuple)):
            return f"must be a list of {args[0].__name__} values"
        problems = [_type_problem(args[0], item) for item in value]
        return next((f"item {item!r} {p}" for item, p in zip(value, problems) if p), None)
    if args:  # a union such as str | bool
        return (
            None
            if any(_type_problem(a, value) is None for a in args)
            else f"must be one of: {', '.join(a.__name__ for a in args)}"
        )
    raise TypeError(f"internal: no check for the type {kind}")


def _rule_problem(rules: dict, value) -> str | None:
    items = value if isinstance(value, (list, tuple)) else [value]
    if rules.get("nonempty") and not items:
        return "must hold at least one value"
    for item in items:
        what = "" if items is not value else f"item {item!r} "
        if "one_of" in rules and item not in rules["one_of"]:
            return f"{what}must be one of {', '.join(map(repr, rules['one_of']))}"
        if "min" in rules and item < rules["min"]:
            return f"{what}must be at least {rules['min']}"
        if "max" in rules and item > rules["max"]:
            return f"{what}must be at most {rules['max']}"
        if "above" in rules and item <= rules["above"]:
            return f"{what}must be above {rules['above']}"
        if "below" in rules and item >= rules["below"]:
            return f"{what}must be below {rules['below']}"
    if isinstance(value, (list, tuple)) and rules.get("unique") and len(set(value)) != len(value):
        return "must not repeat a value"
    return None


def build(cls, data: Any, source: str = "config", section: str = "", derived_ok: bool = False):
    """``cls(**data)`` after checking every key of ``data`` against ``cls``'s fields and their rules;
    nested dataclass fields are built from sub-tables. ``derived_ok`` admits the derived fields (a model
    file written by midtecg holds them). Errors are ``ValueError`` naming ``source``, the section and the key."""
    where = f"{source}: [{section}]" if section else f"{source}:"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        settable = sorted(n for n, f in fields.items() if derived_ok or "derived" not in f.metadata)
        raise ValueError(f"{where} unknown key(s) {unknown}; expected some of {settable}")
    types = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        rules, kind = fields[name].metadata, types[name]
        if "derived" in rules and not derived_ok:
            raise ValueError(f"{where} {name}: is set by midtecg from {rules['derived']}; remove it")
        key = f"{section}.{name}" if section else name
        if dataclasses.is_dataclass(kind):
            kwargs[name] = build(kind, value, source, key, derived_ok)
            continue
        item_kind = (typing.get_args(kind) or (None,))[0]
        if typing.get_origin(kind) is tuple and dataclasses.is_dataclass(item_kind):  # a list of tables
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{where} {name} = {value!r}: must be a list of tables")
            kwargs[name] = tuple(
                item if isinstance(item, item_kind) else build(item_kind, item, source, f"{key}[{i}]", derived_ok)
                for i, item in enumerate(value)
            )
            continue
        problem = _type_problem(kind, value) or _rule_problem(rules, value)
        if problem:
            raise ValueError(f"{where} {name} = {value!r}: {problem}")
        kwargs[name] = tuple(value) if isinstance(value, list) else float(value) if kind is float else value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:  # a rule between keys (__post_init__)
        raise ValueError(f"{where} {error}") from None
