"""torch → ONNX (opset 17, batch 1, BatchNorm folded) with the manifest's facts in ``metadata_props``."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from shared.manifest import ModelManifest

from .nets import fuse_batchnorm
from .onnx_meta import manifest_props, set_props

OPSET = 17


def export_onnx(net: nn.Module, manifest: ModelManifest, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = fuse_batchnorm(copy.deepcopy(net).eval())
    dummy = torch.zeros(manifest.input.shape, dtype=torch.float32)
    output_names = [o.name for o in manifest.outputs]
    # The TorchScript exporter is deprecated upstream but exact for these plain conv nets, and the
    # dynamo exporter needs onnxscript; torch is pinned (train extra), so the warning is only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[manifest.input.name],
            output_names=output_names,
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    model.producer_name = "edgesight.firmware_models"
    model.doc_string = manifest.description
    set_props(model, manifest_props(manifest))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
