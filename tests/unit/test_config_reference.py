"""docs/configuration.md is what the code generates: field, type, default and the comment beside it."""

from dataclasses import dataclass
from pathlib import Path

from raynas.config_reference import field_comments, render, section

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Example:
    """An example section."""

    # read above the field
    plain: int = 1
    commented: str = "a"  # beside the field
    wrapped: float = 2.0  # inside a wrapped default
    bare: bool = False


def test_comments_are_read_beside_above_and_inside_a_wrapped_field():
    assert field_comments(Example) == {
        "plain": "read above the field",
        "commented": "beside the field",
        "wrapped": "inside a wrapped default",
    }
    table = "\n".join(section("example", Example))
    assert '| `commented` | `str` | `"a"` | beside the field |' in table and "| `bare` | `bool` | `false` |  |" in table


def test_the_committed_reference_is_the_generated_one():
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: run `raynas config-reference --out docs/configuration.md`"
    )
