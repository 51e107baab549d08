"""The engine never imports streamlit; only quadviz.app does."""

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "quadviz"


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_engine_has_no_streamlit_import():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        if "app" in path.relative_to(ENGINE).parts[:1]:
            continue
        if any(m.split(".")[0] == "streamlit" for m in imported_modules(path)):
            offenders.append(str(path.relative_to(ENGINE)))
    assert offenders == []


def test_engine_never_prints():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        if "app" in path.relative_to(ENGINE).parts[:1] or path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
