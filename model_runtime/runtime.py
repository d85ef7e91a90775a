"""A model ready to run: verified manifest → session → ``detect(frame)`` → detections.

``load_manifest`` checks the model file's sha256 first, so a corrupt or swapped file is refused before
onnxruntime ever parses it. Outputs are fetched by the manifest's names and handed to the decoder by
name; their order in the graph does not matter.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from model_runtime.decoders import DecoderError, decode, get_decoder, named
from model_runtime.detection import Detection
from model_runtime.preprocessing import Letterbox, preprocess
from model_runtime.session import SessionSettings, open_session, overridable_initializers
from shared.int8_precision import PRECISION_KEY
from shared.manifest import ManifestError, ModelManifest, load_manifest

log = logging.getLogger(__name__)


class HasSessionSettings(Protocol):
    """A caller's own configuration that knows its session settings (the agent's ``RuntimeConfig``)."""

    def session_settings(self) -> SessionSettings: ...


class ModelLoadError(RuntimeError):
    """The model cannot be trusted or cannot be run; the message says which and why."""


class ModelRuntime:
    def __init__(
        self,
        model_dir: str | Path,
        settings: SessionSettings | HasSessionSettings | None = None,
        *,
        manifest: ModelManifest | None = None,
        model_path: str | Path | None = None,
    ):
        """From a model directory (manifest verified against the file), or an explicit ``manifest``
        with ``model_path`` (the toolchain, evaluating a file the manifest does not name yet)."""
        if settings is None:
            settings = SessionSettings()
        elif not isinstance(settings, SessionSettings):
            settings = settings.session_settings()
        if manifest is None:
            try:
                manifest, path = load_manifest(model_dir)
            except ManifestError as exc:
                raise ModelLoadError(f"refusing model at {model_dir}: {exc}") from None
        else:
            path = Path(model_path) if model_path is not None else Path(model_dir) / manifest.file
        self.manifest, self.model_path, self.settings = manifest, Path(path), settings
        try:
            get_decoder(manifest.decoder.type)
        except DecoderError as exc:
            raise ModelLoadError(str(exc)) from None
        try:
            self.session = open_session(self.model_path, settings)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ModelLoadError(f"onnxruntime cannot load {self.model_path}: {exc}") from None
        inputs = [i.name for i in self.session.get_inputs()]
        if manifest.input.name not in inputs:
            raise ModelLoadError(f"{self.model_path}: manifest input {manifest.input.name!r} not in {inputs}")
        self.input_name = manifest.input.name
        names = [o.name for o in self.session.get_outputs()]
        self.output_names = [o.name for o in manifest.outputs]
        unknown = [n for n in self.output_names if n not in names]
        if unknown or not self.output_names:
            raise ModelLoadError(
                f"{self.model_path}: manifest outputs {unknown or '[]'} not in the graph ({names})"
            )
        folded = overridable_initializers(self.session)
        if folded:
            log.warning(
                "%s lists %d weights as graph inputs, so onnxruntime cannot fold them (slower); "
                "clean it with `python -m firmware_models import`",
                self.model_path,
                len(folded),
            )
        if self.int8_exact_mode:
            log.warning(
                "%s is int8 and this CPU has no VNNI: onnxruntime runs it in its exact u8 x u8 mode, often "
                "slower than fp32 (python -m firmware_models evaluate measures both); the registry's "
                "%s+fp32 variant may be the faster choice here",
                manifest.ref,
                manifest.ref,
            )
        for _ in range(settings.warmup_runs):
            self.dry_run()

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @property
    def precision(self) -> str:
        return self.manifest.precision

    @property
    def int8_exact_mode(self) -> bool:
        """An int8 model that this CPU runs in onnxruntime's slower exact mode (x86 without VNNI)."""
        entry = self.session.get_session_options().get_session_config_entry(PRECISION_KEY)
        return self.manifest.precision == "int8" and entry == "1"

    @property
    def variant(self) -> str:
        """What this device runs, in words: ``int8``, ``int8 (exact mode)`` or ``fp32``."""
        return "int8 (exact mode)" if self.int8_exact_mode else self.manifest.precision

    def dry_run(self) -> float:
        """One inference on a blank input (warm-up, ``edge-agent check``); returns milliseconds."""
        blank = np.zeros((self.manifest.input.height, self.manifest.input.width, 3), dtype=np.uint8)
        started = time.perf_counter()
        self.detect(blank)
        return (time.perf_counter() - started) * 1000.0

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Raw outputs in the manifest's output order."""
        return self.session.run(self.output_names, {self.input_name: tensor})

    def outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        return named(self.infer(tensor), self.manifest)

    def decode(self, outputs: list[np.ndarray], lb: Letterbox, shape: tuple[int, int]) -> list[Detection]:
        """Raw outputs (manifest order) → detections normalised to the ``shape`` (h, w) image."""
        return decode(named(outputs, self.manifest), self.manifest, lb, shape)

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
