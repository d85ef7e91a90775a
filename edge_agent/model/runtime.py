"""One onnxruntime session per model, built only from a verified manifest.

The manifest says everything: input size/layout/colour/normalisation, output order, decoder type and
labels. ``load_manifest`` checks the model file's sha256 first, so a corrupt or swapped file is refused
before onnxruntime ever parses it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edge_agent.config import RuntimeConfig
from edge_agent.imaging import Pyramid
from edge_agent.model.decoders import Detection, get_decoder
from shared.int8_precision import ort_session_config
from shared.manifest import InputSpec, ManifestError, load_manifest

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model cannot be trusted or cannot be run; the message says which and why."""


@dataclass(frozen=True)
class Letterbox:
    """How a region of the frame was fitted into the model input (to map boxes back)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float


def preprocess(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 image → model input tensor (batch 1) and the letterbox used."""
    h, w = image.shape[:2]
    tw, th = spec.width, spec.height
    if spec.resize == "letterbox":
        scale = min(tw / w, th / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = Pyramid.of(image).resized(nw, nh)
        px, py = (tw - nw) // 2, (th - nh) // 2
        canvas = np.full((th, tw, 3), 114, dtype=np.uint8)
        canvas[py : py + nh, px : px + nw] = resized
        fitted, box = canvas, Letterbox(scale, scale, px, py)
    else:
        fitted = Pyramid.of(image).resized(tw, th)
        box = Letterbox(tw / w, th / h, 0.0, 0.0)
    if spec.dtype == "float32" and spec.layout == "NCHW" and spec.color != "GRAY" and len(set(spec.std)) == 1:
        # OpenCV's blob builder does colour swap, (x - m) * s and HWC→NCHW in one C++ pass (4x numpy).
        std = spec.std[0]
        mean = tuple(m / spec.scale for m in spec.mean[:3])  # in the model's channel order (OpenCV docs)
        blob = cv2.dnn.blobFromImage(fitted, spec.scale / std, mean=mean, swapRB=spec.color == "RGB")
        return blob, box
    if spec.color == "RGB":
        fitted = cv2.cvtColor(fitted, cv2.COLOR_BGR2RGB)
    elif spec.color == "GRAY":
        fitted = cv2.cvtColor(fitted, cv2.COLOR_BGR2GRAY)[:, :, None]
    if spec.dtype == "float32":
        channels = fitted.shape[2]
        mean = np.asarray(spec.mean, dtype=np.float32)[:channels]
        std = np.asarray(spec.std, dtype=np.float32)[:channels]
        # (pixel * scale - mean) / std as one multiply-add: this runs on every inference.
        tensor = fitted.astype(np.float32) * (np.float32(spec.scale) / std)
        if mean.any():
            tensor -= mean / std
    elif spec.dtype == "uint8":
        tensor = fitted
    else:  # int8 inputs take pixels re-centred on zero
        tensor = (fitted.astype(np.int16) - 128).astype(np.int8)
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None]), box


def session_options(runtime: RuntimeConfig) -> ort.SessionOptions:
    """Small-device defaults: few threads, no busy-wait spinning (it burns a core on a Pi for nothing)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime.intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spin = "1" if runtime.allow_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    for key, value in ort_session_config().items():  # int8 exact on x86 CPUs without VNNI
        opts.add_session_config_entry(key, value)
    opts.log_severity_level = 3
    return opts


def choose_providers(requested: list[str]) -> list[str]:
    """Requested providers that this onnxruntime build has, in order; CPU always last as the fallback."""
    available = ort.get_available_providers()
    chosen = [p for p in requested if p in available]
    missing = [p for p in requested if p not in available]
    if missing:
        log.warning("execution providers not available here: %s (have %s)", missing, available)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class ModelRuntime:
    def __init__(self, model_dir: str | Path, runtime: RuntimeConfig | None = None):
        runtime = runtime or RuntimeConfig()
        try:
            self.manifest, self.model_path = load_manifest(model_dir)
        except ManifestError as exc:
            raise ModelLoadError(f"refusing model at {model_dir}: {exc}") from None
        self.decoder = get_decoder(self.manifest.decoder.type)
        try:
            self.session = ort.InferenceSession(
                str(self.model_path),
                sess_options=session_options(runtime),
                providers=choose_providers(runtime.providers),
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ModelLoadError(f"onnxruntime cannot load {self.model_path}: {exc}") from None
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        wanted = [o.name for o in self.manifest.outputs]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ModelLoadError(f"{self.model_path}: manifest outputs {unknown} not in the graph ({names})")
        self.output_names = wanted or names
        for _ in range(runtime.warmup_runs):
            self.dry_run()

    @property
    def ref(self) -> str:
        return self.manifest.ref

    def dry_run(self) -> float:
        """One inference on a blank input (warm-up, ``edge-agent check``); returns milliseconds."""
        blank = np.zeros((self.manifest.input.height, self.manifest.input.width, 3), dtype=np.uint8)
        started = time.perf_counter()
        self.detect(blank)
        return (time.perf_counter() - started) * 1000.0

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: tensor})

    def detect(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[Detection]:
        """Boxes normalised to the whole ``image`` (0..1); ``region`` (x1, y1, x2, y2 px) is cropped first."""
        fh, fw = image.shape[:2]
        ox, oy = 0, 0
        if region is not None:
            ox, oy, x2, y2 = region
            image = image[oy:y2, ox:x2]
        tensor, lb = preprocess(image, self.manifest.input)
        found = self.decode(self.infer(tensor), lb, image.shape[:2])
        if region is None:
            return found
        rh, rw = image.shape[:2]
        return [
            Detection(
                d.label,
                d.score,
                (
                    (d.box[0] * rw + ox) / fw,
                    (d.box[1] * rh + oy) / fh,
                    (d.box[2] * rw + ox) / fw,
                    (d.box[3] * rh + oy) / fh,
                ),
            )
            for d in found
        ]

    def decode(self, outputs: list[np.ndarray], lb: Letterbox, shape: tuple[int, int]) -> list[Detection]:
        """The model's raw ``outputs`` → detections normalised to the ``shape`` (h, w) image that ``lb``
        fitted into the input: the manifest's decoder, then the letterbox undone."""
        rh, rw = shape

        def fit(v: float, pad: float, scale: float, size: int) -> float:
            # Scalar min/max, not np.clip: four calls per detection, and np.clip on a scalar costs ~9 µs.
            return min(max((float(v) - pad) / scale, 0.0), float(size)) / size

        return [
            Detection(
                det.label,
                det.score,
                (
                    fit(det.box[0], lb.pad_x, lb.scale_x, rw),
                    fit(det.box[1], lb.pad_y, lb.scale_y, rh),
                    fit(det.box[2], lb.pad_x, lb.scale_x, rw),
                    fit(det.box[3], lb.pad_y, lb.scale_y, rh),
                ),
            )
            for det in self.decoder(outputs, self.manifest)
        ]
