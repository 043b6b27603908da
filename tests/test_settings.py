"""The one config builder: types strict, rules and choices checked, derived keys refused, errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from midtecg.settings import build, checked, derived


@dataclass(frozen=True)
class Item:
    name: str = "a"
    size: int = checked(1, min=1, max=10)


@dataclass
class Section:
    count: int = checked(2, min=0, max=5)
    ratio: float = checked(0.5, above=0, below=2)
    kind: str = checked("x", one_of=("x", "y"))
    folds: tuple[int, ...] = checked((1,), one_of=(1, 2, 3), nonempty=True, unique=True)
    flag: bool = False
    length: int = derived(100, by="the data", min=1, max=1000)
    items: tuple[Item, ...] = derived(by="the data", default_factory=lambda: (Item(),))


@dataclass
class Top:
    name: str = "t"
    section: Section = field(default_factory=Section)


def test_a_valid_table_builds_the_dataclass_with_tuples_and_floats():
    top = build(Top, {"section": {"count": 3, "ratio": 1, "kind": "y", "folds": [2, 3], "flag": True}}, "f.toml")
    assert top.section == Section(count=3, ratio=1.0, kind="y", folds=(2, 3), flag=True)
    assert isinstance(top.section.ratio, float) and top.section.folds == (2, 3)


@pytest.mark.parametrize(
    "table, message",
    [
        ({"count": 6}, r"count = 6: must be at most 5"),
        ({"count": 2.0}, r"count = 2.0: must be an integer"),
        ({"count": True}, r"count = True: must be an integer"),
        ({"ratio": 2.0}, r"ratio = 2.0: must be below 2"),
        ({"ratio": float("nan")}, r"ratio = nan: must be a finite number"),
        ({"kind": "z"}, r"kind = 'z': must be one of 'x', 'y'"),
        ({"folds": 1}, r"folds = 1: must be a list of int values"),
        ({"folds": []}, r"folds = \[\]: must hold at least one value"),
        ({"folds": [1, 1]}, r"folds = \[1, 1\]: must not repeat a value"),
        ({"folds": [4]}, r"folds = \[4\]: item 4 must be one of 1, 2, 3"),
        ({"flag": "no"}, r"flag = 'no': must be true or false"),
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]; expected some of \['count', 'flag'"),
        ({"length": 10}, r"length: is set by midtecg from the data; remove it"),
    ],
)
def test_bad_values_name_the_source_section_and_key(table, message):
    with pytest.raises(ValueError, match=rf"^f\.toml: \[section\] {message}"):
        build(Top, {"section": table}, "f.toml")


def test_derived_keys_are_admitted_and_checked_for_files_midtecg_wrote():
    section = build(Section, {"length": 500, "items": [{"name": "b", "size": 3}]}, "config.json", derived_ok=True)
    assert section.length == 500 and section.items == (Item("b", 3),)
    with pytest.raises(ValueError, match=r"config.json: \[model\] length = 1000000000: must be at most 1000"):
        build(Section, {"length": 10**9}, "config.json", "model", derived_ok=True)
    with pytest.raises(ValueError, match=r"\[model.items\[0\]\] size = 11: must be at most 10"):
        build(Section, {"items": [{"size": 11}]}, "config.json", "model", derived_ok=True)


def test_a_section_that_is_not_a_table_is_refused():
    with pytest.raises(ValueError, match=r"f.toml: \[section\] must be a table, not int"):
        build(Top, {"section": 3}, "f.toml")
