"""The model manifest: everything runtime code may know about a model.

The edge agent never hard-codes an input size, a label or a decoder: it reads them from here
(the roboflow/ultralytics pattern of metadata that travels with the model). The same manifest is what
the hub validates, signs and offers during a rollout.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SEMVER_RE = r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$"
MANIFEST_FILENAME = "manifest.json"


class ManifestError(ValueError):
    """A manifest that is invalid or does not describe its model file."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecoderType(StrEnum):
    CLASSIFIER = "classifier"
    FOMO = "fomo"
    SSD = "ssd"
    YOLO = "yolo"
    GFL = "gfl"


class InputSpec(Strict):
    name: str
    shape: tuple[int, int, int, int] = Field(description="batch, then layout order; batch is 1")
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "uint8", "int8"] = "float32"
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    resize: Literal["stretch", "letterbox"] = "stretch"
    align: Literal["center", "top-left"] = Field(default="center", description="letterbox placement")
    pad_value: Annotated[int, Field(ge=0, le=255)] = Field(default=114, description="letterbox pad pixel")
    interpolation: Literal["area", "linear", "nearest", "cubic"] = "area"
    scale: float = Field(default=1.0 / 255.0, description="pixel * scale, then (x - mean) / std")
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    @property
    def height(self) -> int:
        return self.shape[2] if self.layout == "NCHW" else self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[3] if self.layout == "NCHW" else self.shape[2]

    @property
    def channels(self) -> int:
        return self.shape[1] if self.layout == "NCHW" else self.shape[3]


class OutputSpec(Strict):
    name: str
    shape: tuple[int | str, ...] | None = None
    role: str | None = Field(
        default=None,
        description="what the decoder reads here (ssd: boxes, scores; gfl: scores/8, distances/8, ...)",
    )


class LabelMap(Strict):
    """The model's labels (e.g. COCO-80) → the names the rules use."""

    names: dict[str, str] = Field(default_factory=dict, description="model label → rule label")
    drop_unmapped: bool = Field(default=False, description="labels not in names produce no detections")


class DecoderSpec(Strict):
    """How raw outputs become labelled detections; ``type`` selects the registered decoder."""

    type: DecoderType
    score_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    iou_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.45
    background_index: int | None = Field(
        default=None, description="label index that means 'nothing here' (fomo, classifier)"
    )
    apply_softmax: bool = False
    params: dict[str, Any] = Field(default_factory=dict)


class GoldenSpec(Strict):
    """Golden inputs with expected outputs, for validation and the on-device self-test."""

    file: str = Field(description="npz beside the model: arrays 'input_0..', 'output_0..'")
    atol: float = 0.05


class ModelManifest(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    version: Annotated[str, Field(pattern=SEMVER_RE)]
    task: Literal["classification", "detection"]
    description: str = ""
    file: str = "model.onnx"
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    size_bytes: int | None = None
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    decoder: DecoderSpec
    labels: tuple[str, ...]
    label_map: LabelMap | None = None
    precision: Literal["fp32", "int8"] = "int8"
    metrics: dict[str, Any] = Field(default_factory=dict)
    quantization: dict[str, Any] = Field(default_factory=dict)
    golden: GoldenSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if not self.labels:
            raise ValueError("labels must not be empty")
        bg = self.decoder.background_index
        if bg is not None and not 0 <= bg < len(self.labels):
            raise ValueError(f"decoder.background_index {bg} outside labels (0..{len(self.labels) - 1})")
        if len(self.input.mean) != len(self.input.std):
            raise ValueError("input.mean and input.std must have the same length")
        if self.decoder.type == DecoderType.FOMO:
            self._check_grouping()
        if self.label_map is not None:
            unknown = sorted(set(self.label_map.names) - set(self.labels))
            if unknown:
                raise ValueError(f"label_map.names: {unknown} are not labels of the model")
        names = [o.name for o in self.outputs]
        if len(names) != len(set(names)):
            raise ValueError(f"outputs: names repeat ({names})")
        return self

    def _check_grouping(self) -> None:
        """FOMO's per-label grouping settings (docs/edge/decoders.md): known labels, sane values —
        checked here so a bad manifest is refused at load, not on every frame."""
        params = self.decoder.params
        for key, ok, want in (
            ("connectivity", lambda v: v in (4, 8), "4 or 8"),
            (
                "merge_gap",
                lambda v: (
                    (isinstance(v, int) and v >= 0)
                    or (
                        isinstance(v, (list, tuple))
                        and len(v) == 2
                        and all(isinstance(n, int) and n >= 0 for n in v)
                    )
                ),
                "a cell radius n or [columns, rows] (whole numbers >= 0)",
            ),
        ):
            per_label = params.get(key, {})
            if not isinstance(per_label, dict):
                raise ValueError(f"decoder.params.{key} must map labels to values, got {per_label!r}")
            for label, value in per_label.items():
                if label not in self.labels:
                    raise ValueError(f"decoder.params.{key}: {label!r} is not one of the labels")
                if isinstance(value, bool) or not ok(value):
                    raise ValueError(f"decoder.params.{key}.{label}: {value!r} is not {want}")

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_manifest(data: dict[str, Any] | str | bytes, source: str = "manifest") -> ModelManifest:
    try:
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        return ModelManifest.model_validate(data)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: invalid JSON: {exc}") from None
    except ValidationError as exc:
        lines = [
            f"{source}: {'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ManifestError("\n".join(lines)) from None


def load_manifest(path: str | Path, *, verify_file: bool = True) -> tuple[ModelManifest, Path]:
    """Load ``manifest.json`` (or the manifest beside a model dir) and return it with the model path.

    With ``verify_file`` the model's sha256 and size must match the manifest: a corrupt or swapped
    file is refused before onnxruntime ever sees it.
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILENAME if path.is_dir() else path
    if not manifest_path.exists():
        raise ManifestError(f"{manifest_path}: no such manifest")
    manifest = parse_manifest(manifest_path.read_bytes(), source=str(manifest_path))
    model_path = manifest_path.parent / manifest.file
    if verify_file:
        if not model_path.exists():
            raise ManifestError(f"{manifest_path}: model file {manifest.file!r} is missing")
        if manifest.sha256 is None:
            raise ManifestError(f"{manifest_path}: sha256 is required to trust {manifest.file!r}")
        actual = sha256_file(model_path)
        if actual != manifest.sha256:
            raise ManifestError(f"{model_path}: sha256 {actual} does not match manifest {manifest.sha256}")
        size = model_path.stat().st_size
        if manifest.size_bytes is not None and size != manifest.size_bytes:
            raise ManifestError(f"{model_path}: size {size} != manifest size_bytes {manifest.size_bytes}")
    return manifest, model_path
