"""Training loops for the reference models (Adam + cross-entropy). Needs the ``train`` extra (torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_runtime.preprocessing import to_tensor

from .data import IGNORE
from .nets import DesignCNN, FomoNet
from .reference import ReferenceModel

OBJECT_WEIGHT = 10.0  # FOMO: an object cell costs this many background cells (objects are rare)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_net(ref: ReferenceModel) -> nn.Module:
    if ref.kind == "classifier":
        return DesignCNN(len(ref.labels), size=ref.input.height)
    return FomoNet(len(ref.labels), softmax=False, stride=ref.stride, head=ref.head)


def _augment(
    x: np.ndarray, y: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Horizontal flips and brightness/contrast jitter (the renderer already varies everything else)."""
    flip = rng.random(len(x)) < 0.5
    x = x.copy()
    x[flip] = x[flip, :, ::-1]
    if y is not None and y.ndim == 3:
        y = y.copy()
        y[flip] = y[flip, :, ::-1]
    gain = rng.uniform(0.75, 1.25, (len(x), 1, 1, 1))
    bias = rng.uniform(-20, 20, (len(x), 1, 1, 1))
    x = np.clip(x.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return x, y


def train(ref: ReferenceModel, images: np.ndarray, targets: np.ndarray, progress: bool = True) -> nn.Module:
    """Train ``ref``'s network on BGR uint8 images and integer targets (class per crop or per cell)."""
    seed_everything(ref.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    net = build_net(ref)
    weights = None
    if ref.class_weights is not None:
        weights = torch.tensor(ref.class_weights, dtype=torch.float32)
    elif ref.kind == "fomo":
        weights = torch.full((len(ref.labels),), OBJECT_WEIGHT)
        weights[0] = 1.0
    loss_fn = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE)
    opt = torch.optim.Adam(net.parameters(), lr=ref.lr)
    steps = ref.epochs * max(1, int(np.ceil(len(images) / ref.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=ref.lr, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(ref.seed)
    bar = tqdm(total=steps, desc=f"train {ref.name}", unit="step", disable=not progress)
    net.train()
    for epoch in range(ref.epochs):
        order = rng.permutation(len(images))
        total, seen = 0.0, 0
        for start in range(0, len(order), ref.batch_size):
            idx = order[start : start + ref.batch_size]
            x, y = _augment(images[idx], targets[idx], rng)
            xb = torch.from_numpy(to_tensor(x, ref.input))
            yb = torch.from_numpy(np.ascontiguousarray(y))
            loss = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{total / max(seen, 1):.4f}")
    bar.close()
    net.eval()
    if isinstance(net, FomoNet):
        net.softmax = True
    return net
