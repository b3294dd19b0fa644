from dataclasses import dataclass

import pytest

from raynas._registry import Registry


@dataclass(frozen=True)
class Thing:
    name: str


def test_duplicates_are_refused_and_misses_list_valid_names():
    reg: Registry[Thing] = Registry("thing")
    reg.add_named(Thing("a"))
    reg.add("b", Thing("b"))
    with pytest.raises(KeyError, match="already registered"):
        reg.add_named(Thing("a"))
    with pytest.raises(KeyError, match="valid names: a, b"):
        reg.get("c")
    assert reg.names() == ["a", "b"] and "a" in reg
