"""House rule: at most three positional parameters besides ``self``/``cls``; the rest keyword-only.
Overrides of framework methods keep the signature their framework calls, listed here by name."""

from __future__ import annotations

import ast
from pathlib import Path

import raynas

MAX_POSITIONAL = 3
FRAMEWORK_OVERRIDES = {
    ("raynas/tracking/tune_callback.py", "on_trial_result"),  # ray.tune.Callback.on_trial_result(iteration, trials, trial, result)
}


def positional(fn: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return names[1:] if names and names[0] in ("self", "cls") else names


def test_no_function_takes_more_than_three_positional_parameters():
    root = Path(raynas.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (where, node.name) not in FRAMEWORK_OVERRIDES:
                if len(positional(node)) > MAX_POSITIONAL:
                    offenders.append(f"{where}:{node.lineno} {node.name}({', '.join(positional(node))})")
    assert not offenders, "make the parameters after the third keyword-only (*):\n" + "\n".join(offenders)
