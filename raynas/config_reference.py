"""The configuration reference (docs/configuration.md), generated from the config dataclasses: each
field's name, type, default and the comment written beside it in the code, so the page cannot drift
from what ``raynas run`` accepts (a test compares the two; ``raynas config-reference`` rewrites it)."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import tokenize
from typing import Any

from raynas.api import strategy_class, strategy_names
from raynas.config import ExperimentConfig

HEADER = """# Configuration reference

Generated from the config dataclasses by `raynas config-reference --out docs/configuration.md`; do not
edit by hand. A config is one YAML file (examples: `experiments/configs/`); every field below may be
left out (its default applies) except `name` and `targets`. Give a nested section as a mapping
(`data:`, `search:`, ...); override any field from the command line with `--set section.field=value`.
Bad values are refused before any work starts, with an error naming the field.
"""


def field_comments(cls: type) -> dict[str, str]:
    """The comment written on (or directly above) each field of a dataclass's source."""
    comments: dict[str, list[str]] = {}
    pending: list[str] = []
    current, depth, line_start = None, 0, True
    for tok in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        if tok.type == tokenize.COMMENT:
            (comments.setdefault(current, []) if current and not line_start else pending).append(tok.string.lstrip("# ").strip())
        elif tok.type == tokenize.NAME and line_start and depth == 0 and tok.start[1] > 0:
            current, line_start = tok.string, False
            comments.setdefault(current, []).extend(pending)
            pending = []
        elif tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.NEWLINE:
            line_start = True
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            line_start = line_start and tok.type == tokenize.COMMENT
    return {name: " ".join(text) for name, text in comments.items() if text}


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "section"
    return f"`{json.dumps(value, default=str)}`"  # as YAML reads it: null, true, [..]


def section(title: str, cls: type, *, intro: str = "") -> list[str]:
    """One Markdown section: the class's docstring, then a table of its plain fields."""
    doc = inspect.getdoc(cls) or ""
    notes = field_comments(cls)
    lines = [f"## `{title}`" if title else "## Top level", ""]
    if intro:
        lines += [intro, ""]
    if doc and not doc.startswith(f"{cls.__name__}("):
        lines += [" ".join(doc.split("\n\n")[0].split()), ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name == "sections":
            continue
        meaning = notes.get(f.name, "").replace("|", "\\|")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        lines.append(f"| `{f.name}` | `{kind.replace('|', 'or')}` | {_default(f)} | {meaning} |")
    return lines + [""]


def nested(cls: type) -> list[tuple[str, type]]:
    """The dataclass-valued fields of ``cls`` (its sub-sections), in order."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            value: Any = f.default_factory()
            if dataclasses.is_dataclass(value):
                out.append((f.name, type(value)))
    return out


def render() -> str:
    """The whole reference page."""
    lines = [HEADER]
    lines += section("", ExperimentConfig)
    for name, cls in nested(ExperimentConfig):
        lines += with_subsections(name, cls)
    readers: dict[str, list[str]] = {}
    for strategy in strategy_names():
        readers.setdefault(strategy_class(strategy).section, []).append(strategy)
    for name, strategies in readers.items():
        names = ", ".join(f"`{s}`" for s in strategies)
        lines += with_subsections(name, strategy_class(strategies[0]).config_type, intro=f"Read by strategy {names}.")
    return "\n".join(lines).rstrip() + "\n"


def with_subsections(name: str, cls: type, *, intro: str = "") -> list[str]:
    """A section and, after it, each of its dataclass-valued fields as a section of its own."""
    return section(name, cls, intro=intro) + [line for sub, sub_cls in nested(cls) for line in section(f"{name}.{sub}", sub_cls)]
