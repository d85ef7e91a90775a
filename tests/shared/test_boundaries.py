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
        # The agent runs without the toolchain: the rendered world is its own package.
        ("edge_agent", {"cloud_hub", "firmware_models", "torch", "tests", "benchmarks"}),
        ("cloud_hub", {"edge_agent", "firmware_models", "torch"}),
        # One runtime for camera, hub and toolchain: it depends on none of them, and never on torch.
        (
            "model_runtime",
            {"edge_agent", "cloud_hub", "firmware_models", "synthetic_world", "torch", "tests"},
        ),
        ("firmware_models", {"edge_agent", "cloud_hub"}),
        ("shared", {"edge_agent", "cloud_hub", "firmware_models", "torch"}),
        ("synthetic_world", {"torch", "onnx", "onnxruntime", "edge_agent", "cloud_hub", "firmware_models"}),
    ],
)
def test_import_boundaries(package: str, forbidden: set[str]) -> None:
    modules = imported_packages(package)
    assert modules, f"no modules found under {package}"
    offenders = {
        module: sorted(names & forbidden - ALLOWED.get(module, set()))
        for module, names in modules.items()
        if names & forbidden - ALLOWED.get(module, set())
    }
    assert offenders == {}


# The one sanctioned crossing: the hub's adaptation worker runs the toolchain's adapt() (issue 24: "the hub
# job calls the same code"), in its own process, from the `train` extra.
ALLOWED = {"cloud_hub/adapt/worker.py": {"firmware_models"}}


def test_the_adapt_worker_imports_the_toolchain_only_when_it_trains() -> None:
    """No module-level import: loading the worker module (the CLI does, to register its command) pulls in
    neither firmware_models nor torch, so `cloud-hub serve` and `ingest` stay torch-free."""
    tree = ast.parse((REPO / "cloud_hub/adapt/worker.py").read_text())
    top = {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    top |= {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert not top & {"firmware_models", "torch"}
    nested = [
        n
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("firmware_models")
    ]
    assert nested, "the worker no longer calls firmware_models: drop it from ALLOWED"


def test_code_only_tests_use_is_not_in_the_runtime_packages() -> None:
    """The fleet simulator lives in benchmarks/, the agent keeps no list of what it emitted."""
    assert not (REPO / "edge_agent/updater/sim.py").exists()
    assert "self.emitted" not in (REPO / "edge_agent/agent.py").read_text()


def test_one_runtime_no_second_copy_of_decoders_or_preprocessing() -> None:
    """The agent and the toolchain have no decoders, preprocessing or golden handling of their own."""
    for gone in ("edge_agent/model", "firmware_models/decoders.py", "firmware_models/preprocess.py"):
        assert not (REPO / gone).exists(), gone
    users = {
        "edge_agent/pipeline.py",
        "edge_agent/updater/selftest.py",
        "cloud_hub/rollout/validate.py",
        "firmware_models/evaluate.py",
        "firmware_models/quantize.py",
        "firmware_models/train.py",
    }
    for path in users:
        assert "model_runtime" in imported_packages_of(REPO / path), path


def imported_packages_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_hub_validates_models_without_opencv() -> None:
    """The hub image has no OpenCV: its model validation must not pull it in through model_runtime."""
    import subprocess
    import sys

    code = "import sys; import cloud_hub.rollout.validate; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_place_builds_onnxruntime_sessions() -> None:
    """Providers, threads and the int8 precision mode are set in model_runtime/session.py only."""
    builders = sorted(
        str(path.relative_to(REPO))
        for package in ("edge_agent", "cloud_hub", "firmware_models", "model_runtime", "benchmarks", "shared")
        for path in (REPO / package).rglob("*.py")
        if "InferenceSession(" in path.read_text() or "SessionOptions()" in path.read_text()
    )
    assert builders == ["model_runtime/session.py"]


def test_the_hub_loads_without_torch_or_the_toolchain() -> None:
    """What `cloud-hub serve` and `ingest` load — the app, every CLI command, the adapt worker's module —
    in a fresh interpreter: neither torch nor firmware_models comes with it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cloud_hub import create_app\n"
        "import cloud_hub.cli, cloud_hub.adapt.worker, cloud_hub.adapt.commands\n"
        "print(sorted(m for m in ('torch', 'firmware_models') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
