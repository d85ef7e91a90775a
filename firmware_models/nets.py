"""The reference network architectures (torch; only for training — the ``train`` extra)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class DesignCNN(nn.Module):
    """The design's CNN: Conv32 3x3, MaxPool2, Conv64 3x3, MaxPool2, Conv64 3x3, Flatten, Dense64, DenseN.

    Valid (unpadded) 3x3 convolutions as in the classic Keras tutorial network the design quotes;
    a 64x64 input leaves a 12x12x64 map before Flatten. Outputs logits.
    """

    def __init__(self, num_classes: int, size: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
        )
        side = ((size - 2) // 2 - 2) // 2 - 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 64), nn.ReLU(), nn.Linear(64, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class FomoNet(nn.Module):
    """FOMO-style centroid detector: a fully convolutional trunk to 1/8 resolution and a 1x1 class head.

    The last 3x3 is dilated so the receptive field (~75 px) covers a near car at 160x96 input. With
    ``stride=4`` the output grid is 1/4 of the input, two ways (``head``):

    - ``shuffle``: each 1/8 cell predicts the classes of its 2x2 sub-cells (``PixelShuffle``, ONNX
      ``DepthToSpace``), and the 3x3 at 1/2 resolution is dropped to pay for it (int8 inference
      ~0.37 ms against ~0.40 ms for the stride-8 net);
    - ``skip``: the 1/8 context is brought to 1/4 (``PixelShuffle``) and added to the 1/4 features (a
      one-level feature pyramid), then a 3x3 at 1/4 decides which cell holds each centroid: the 1/4
      features still see where one person ends and the next begins, which the 1/8 cells pooled away.
      ~25–35 % more per int8 inference; on the events benchmark it was not worth it (docs/edge).

    With ``softmax`` the model outputs per-cell class probabilities (what the edge decoder expects).
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        softmax: bool = True,
        stride: int = 8,
        head: Literal["shuffle", "skip"] = "shuffle",
    ) -> None:
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"FomoNet stride must be 4 or 8, got {stride}")
        if head not in ("shuffle", "skip") or (head == "skip" and stride != 4):
            raise ValueError(f"FomoNet head must be 'shuffle', or 'skip' with stride 4; got {head!r}")
        w1, w2, w3 = width // 2, width, width * 2
        half = _cbr(3, w1, 2) + (_cbr(w1, w1) if stride == 8 else [])
        quarter = [*half, *_cbr(w1, w2, 2), *_cbr(w2, w2)]
        eighth = [*_cbr(w2, w3, 2), *_cbr(w3, w3), *_cbr(w3, w3, dilation=2)]
        self.skip = head == "skip"
        if self.skip:
            self.quarter = nn.Sequential(*quarter)
            # 1/8 context to 1/4 by DepthToSpace (a Resize + its quantize nodes cost twice as much)
            self.eighth = nn.Sequential(*eighth, nn.Conv2d(w3, w1 * 4, 1), nn.PixelShuffle(2))
            self.lateral = nn.Conv2d(w2, w1, 1)
            self.head = nn.Sequential(nn.ReLU(), *_cbr(w1, w1), nn.Conv2d(w1, num_classes, 1))
        else:
            sub = (8 // stride) ** 2  # sub-cells per 1/8 cell
            self.trunk = nn.Sequential(
                *quarter, *eighth, nn.Conv2d(w3, w2, 1), nn.ReLU(), nn.Conv2d(w2, num_classes * sub, 1)
            )
            self.to_grid = nn.PixelShuffle(8 // stride) if sub > 1 else nn.Identity()
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:
            f4 = self.quarter(x)
            logits = self.head(self.eighth(f4) + self.lateral(f4))
        else:
            logits = self.to_grid(self.trunk(x))
        return torch.softmax(logits, dim=1) if self.softmax else logits


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every Conv→BatchNorm pair (eval mode) so the exported graph has plain convolutions."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                    module[i + 1] = nn.Identity()
    return model
