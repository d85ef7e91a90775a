"""The architecture's import rules, checked on the source: edge_agent and cloud_hub never import each
other, shared imports neither, and nothing the edge runs pulls in torch (the `train` extra only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level package names imported by each module of ``package``."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("edge_agent", {"cloud_hub", "torch"}),
        ("cloud_hub", {"edge_agent", "torch"}),
        ("shared", {"edge_agent", "cloud_hub", "firmware_models", "torch"}),
        ("firmware_models/world", {"torch", "onnxruntime", "edge_agent", "cloud_hub"}),
    ],
)
def test_import_boundaries(package: str, forbidden: set[str]) -> None:
    modules = imported_packages(package)
    assert modules, f"no modules found under {package}"
    offenders = {module: sorted(names & forbidden) for module, names in modules.items() if names & forbidden}
    assert offenders == {}
