"""Build-time model tooling for edgesight and the committed reference models.

The rendered world the models train on is its own package, ``synthetic_world`` (the edge agent's
``synthetic:`` source uses it without this toolchain). Training needs the ``train`` extra (torch);
quantization and evaluation need only the ``quantize`` extra.
"""

from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
# Models not (yet) held to the reference bar (e.g. not checked on arm64 by make test-arm).
EXPERIMENTAL_DIR = Path(__file__).resolve().parent / "experimental"
