"""Bring your own model, after ``import``: quantize into packages the hub accepts as they are, and
evaluate fp32 against int8 on this CPU with a recommendation that does not hide a slower int8.

``quantize_package`` writes ``OUT/`` (int8 ``model.onnx``, ``golden.npz``, ``manifest.json``) and
``OUT/fp32/`` (the same model in fp32 as version ``V+fp32`` with its own golden file): on x86 CPUs
without VNNI the int8 model runs in onnxruntime's exact but slower mode, and there the fp32 variant is
the faster choice.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.int8_precision import ort_session_config
from shared.manifest import ModelManifest, load_manifest, sha256_file

from .calibration import load_frames
from .evaluate import EvalSet, latency_ms, predict, score
from .golden import write_golden
from .quantize import FLOAT_OPS, QuantizeFailed, quantize_model

FP32_SUFFIX = "+fp32"
FLOAT_FIRST_STEPS = (0, 2, 4, 8)


@dataclass
class QuantizeResult:
    out: Path
    asked: int
    used: int
    held_out: int
    agreement: dict[str, Any]
    quantization: dict[str, Any]
    sizes: dict[str, int]
    messages: list[str] = field(default_factory=list)

    def text(self) -> str:
        a = self.agreement
        lines = [
            f"calibration: {self.used} frames used of {self.asked} asked"
            + ("" if self.used >= self.asked else " (the source has no more; say --count to match)"),
            f"quantized: {self.quantization['quantize_nodes']} QuantizeLinear nodes, "
            f"{self.quantization['int8_weights']} int8 weight tensors; kept in float: ops "
            f"{self.quantization['float_ops']}"
            + (", the output tail after the last conv" if self.quantization["float_tail"] else "")
            + f" ({len(self.quantization['float_nodes'])} nodes)",
            f"agreement with fp32 on {self.held_out} held-out frames: {a['value']:.4f} "
            f"({a['metric']}; fp32 boxes within {a['dont_care_band']} of the threshold don't care; "
            f"{a['strict_value']:.4f} counting them; per class {a['per_class_f1']})",
            f"size: int8 {self.sizes['int8']:,} B = {self.sizes['int8'] / self.sizes['fp32']:.2f}x fp32 "
            f"{self.sizes['fp32']:,} B",
            *self.messages,
        ]
        return "\n".join(lines)


def micro_agreement(result: dict[str, Any]) -> float:
    """One figure over every box: F1 of int8 detections against fp32's (tp, fp, fn summed)."""
    per = result.get("per_class", {})
    if not per or not all(isinstance(v, dict) for v in per.values()):
        return float(result["value"])
    tp = sum(v["tp"] for v in per.values())
    fp = sum(v["fp"] for v in per.values())
    fn = sum(v["fn"] for v in per.values())
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


AGREEMENT_BAND = 0.05  # fp32 boxes scored within this of the threshold are don't-care


def agreement(
    fp32: Path, int8: Path, manifest: ModelManifest, frames: list[np.ndarray], band: float = AGREEMENT_BAND
) -> dict[str, Any]:
    """int8 against fp32 on the same frames (boxes matched at IoU 0.5, per class); fp32 boxes scored
    within ``band`` of the threshold may go either way."""
    data = EvalSet(frames, "held-out frames")
    out32 = predict(fp32, manifest, frames, "infer fp32")
    out8 = predict(int8, manifest, frames, "infer int8")
    result = score(manifest, out8, data, reference=out32, band=band)
    strict = score(manifest, out8, data, reference=out32)
    per = result.get("per_class", {})
    return {
        "metric": "box agreement F1 (IoU 0.5) of int8 with fp32"
        if manifest.decoder.type.value not in ("classifier", "fomo")
        else "agreement of int8 with fp32",
        "value": round(micro_agreement(result), 4),
        "dont_care_band": band,
        "strict_value": round(micro_agreement(strict), 4),
        "macro": result["value"],
        "per_class_f1": {k: v["f1"] if isinstance(v, dict) else v for k, v in per.items()},
        "per_class": per,
    }


def quantize_package(
    manifest_path: Path,
    calib: str,
    count: int,
    out: Path,
    min_agreement: float = 0.97,
    exclude_ops: tuple[str, ...] = FLOAT_OPS,
    exclude_nodes: tuple[str, ...] = (),
    reduce_range: bool = False,
    golden_atol: float = 0.05,
    float_tail: bool = True,
    float_first: int | None = None,
    model: Path | None = None,
    progress: bool = True,
) -> QuantizeResult:
    manifest, default_model = load_manifest(manifest_path, verify_file=False)
    fp32_source = Path(model) if model else default_model
    if manifest.precision != "fp32" and model is None:
        raise QuantizeFailed(f"{manifest_path}: precision is {manifest.precision!r}; quantize an fp32 model")
    # Twice the frames asked: even ones calibrate, odd ones are held out for the agreement check.
    frames = load_frames(calib, 2 * count)
    calib_frames, held_out = frames[0::2], frames[1::2] or frames[:1]
    out.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    int8_path = out / "model.onnx"
    fp32_copy = out / "model.fp32.onnx"
    shutil.copyfile(fp32_source, fp32_copy)
    # Mixed precision only as far as needed: the first layers stay in float until int8 agrees.
    tries = (float_first,) if float_first is not None else FLOAT_FIRST_STEPS
    for step in tries:
        try:
            step_info = quantize_model(
                fp32_copy,
                int8_path,
                manifest,
                calib_frames,
                progress=progress,
                calibration_source=str(calib),
                reduce_range=reduce_range,
                exclude_ops=exclude_ops,
                exclude_nodes=exclude_nodes,
                float_tail=float_tail,
                float_first=step,
            )
        except QuantizeFailed:
            if step == tries[0]:
                raise
            break  # more float layers leave nothing int8: the previous step stands as the best
        info = step_info
        agree = agreement(fp32_copy, int8_path, manifest, held_out)
        if agree["value"] >= min_agreement:
            break
        tried.append(f"first {step} weight layers in float: agreement {agree['value']:.4f}")
    info.update(
        {
            "calibration_frames_asked": count,
            "fp32_file": fp32_copy.name,
            "fp32_sha256": sha256_file(fp32_copy),
            "fp32_size_bytes": fp32_copy.stat().st_size,
        }
    )
    sizes = {"fp32": fp32_copy.stat().st_size, "int8": int8_path.stat().st_size}
    result = QuantizeResult(out, count, len(calib_frames), len(held_out), agree, info, sizes)
    result.messages += [f"tried: {t} < {min_agreement}" for t in tried]
    if info["float_first_weight_ops"]:
        result.messages.append(
            f"kept the first {info['float_first_weight_ops']} weight layers in float (int8 there costs "
            "agreement: wide activation ranges of raw pixels)"
        )
    if len(calib_frames) < count:
        result.messages.append(
            f"note: only {len(calib_frames)} calibration frames of {count} asked: {calib} has "
            f"{len(frames)} frames (half are held out for the agreement check)"
        )
    if agree["value"] < min_agreement:
        raise QuantizeFailed(
            f"int8 agrees with fp32 on {agree['value']:.4f} of boxes < --min-agreement {min_agreement} "
            f"(per class {agree['per_class_f1']}; tried {'; '.join(tried)}); no manifest written. Keep more "
            "ops in float (--exclude-op/--exclude-node/--float-first), calibrate on more representative "
            "frames, or use the fp32 model"
        )
    golden_frames = held_out[:2]
    int8_manifest = manifest.model_copy(
        update={"file": "model.onnx", "precision": "int8", "quantization": info, "golden": None}
    )
    golden = write_golden(int8_path, int8_manifest, golden_frames, atol=golden_atol)
    int8_manifest = int8_manifest.model_copy(
        update={
            "sha256": sha256_file(int8_path),
            "size_bytes": sizes["int8"],
            "golden": golden,
            "metrics": {"agreement_with_fp32": agree["value"], "agreement_frames": len(held_out)},
        }
    )
    (out / "manifest.json").write_text(int8_manifest.to_json())
    fp32_dir = write_fp32_variant(fp32_copy, manifest, out / "fp32", golden_frames)
    result.messages.append(
        f"wrote {int8_path} + golden.npz + manifest.json ({int8_manifest.ref}) and the fp32 variant in "
        f"{fp32_dir} ({manifest.name}@{manifest.version}{FP32_SUFFIX}); register with "
        f"`cloud-hub models add {int8_path} --manifest {out / 'manifest.json'}`"
    )
    return result


def write_fp32_variant(fp32: Path, manifest: ModelManifest, folder: Path, frames: list[np.ndarray]) -> Path:
    """The fp32 model as its own registry entry (version ``V+fp32``) with its own golden file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    shutil.copyfile(fp32, path)
    variant = manifest.model_copy(
        update={"file": "model.onnx", "precision": "fp32", "version": manifest.version + FP32_SUFFIX}
    )
    golden = write_golden(path, variant, frames, atol=0.01)
    variant = variant.model_copy(
        update={"sha256": sha256_file(path), "size_bytes": path.stat().st_size, "golden": golden}
    )
    (folder / "manifest.json").write_text(variant.to_json())
    return folder


def latency_by_mode(fp32: Path, int8: Path, manifest: ModelManifest, frame: np.ndarray, runs: int) -> dict:
    """p50/p99 of fp32 and int8 in each int8 precision mode, measured in one interleaved run each."""
    table: dict[str, Any] = {}
    for mode in ("exact", "fast"):
        lat32, lat8 = latency_ms([fp32, int8], manifest, frame, runs=runs, precision=mode)
        table[mode] = {
            "fp32": lat32,
            "int8": lat8,
            "int8_vs_fp32": round(lat8["p50_ms"] / lat32["p50_ms"], 3),
        }
    return table


def recommend(table: dict[str, Any], sizes: dict[str, int], agreement_value: float | None) -> dict[str, Any]:
    """Which variant this CPU should run, and why, in words."""
    auto = "exact" if ort_session_config().get("session.x64quantprecision") == "1" else "fast"
    ratio = table[auto]["int8_vs_fp32"]
    size = sizes["int8"] / sizes["fp32"]
    if ratio > 1.0:
        text = (
            f"run fp32 here: on this CPU int8 runs in onnxruntime's {auto} mode (x86 without VNNI: u8 x u8, "
            f"exact but slow) and is {ratio:.2f}x fp32's latency; register the fp32 variant for such devices "
            f"(int8 stays {size:.2f}x the size for devices with VNNI or ARM)"
        )
        choice = "fp32"
    else:
        text = f"run int8: {ratio:.2f}x fp32's latency in the {auto} mode this CPU uses, {size:.2f}x the size"
        choice = "int8"
    if agreement_value is not None:
        text += f"; int8 agrees with fp32 on {agreement_value:.3f} of boxes"
    return {"choice": choice, "mode_on_this_cpu": auto, "text": text}


def evaluate_package(
    folder: Path, data: str, count: int, runs: int, fp32: Path | None = None, progress: bool = False
) -> dict[str, Any]:
    """fp32 vs int8 of a quantized package: agreement on ``data`` frames, sizes, latency per mode."""
    manifest, int8 = load_manifest(folder)
    fp32 = fp32 or folder / manifest.quantization.get("fp32_file", "model.fp32.onnx")
    frames = load_frames(data, count)
    agree = agreement(fp32, int8, manifest, frames)
    sizes = {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size}
    table = latency_by_mode(fp32, int8, manifest, frames[0], runs)
    return {
        "name": manifest.name,
        "version": manifest.version,
        "decoder": manifest.decoder.type.value,
        "data": {"source": str(data), "frames": len(frames)},
        "agreement": agree,
        "bytes": sizes,
        "int8_vs_fp32_size": round(sizes["int8"] / sizes["fp32"], 3),
        "latency_ms": table,
        "recommendation": recommend(table, sizes, agree["value"]),
        "threads": 1,
    }
