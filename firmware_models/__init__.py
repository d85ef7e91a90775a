"""Build-time model tooling for edgesight and the committed reference models.

``firmware_models.world`` (numpy + OpenCV only) renders camera scenes with ground truth; the edge agent
imports it for its ``synthetic:`` source. Training needs the ``train`` extra (torch); quantization and
evaluation need only the ``quantize`` extra.
"""

from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
