"""Camera effects applied per frame: defocus/motion blur, sensor noise, JPEG artefacts.

Noise comes from a small seeded bank so a frame costs one add, and frame ``i`` is always identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NOISE_BANK = 6


@dataclass
class CameraEffects:
    blur: int  # Gaussian kernel size (0 = sharp, else odd)
    noise_std: float
    jpeg_quality: int | None
    bank: np.ndarray | None = None

    @classmethod
    def random(cls, rng: np.random.Generator, width: int, height: int, night: bool) -> CameraEffects:
        blur = int(rng.choice([0, 0, 3, 3, 5]))
        noise = float(rng.uniform(4.0, 10.0) if night else rng.uniform(1.0, 5.0))
        quality = None if rng.random() < 0.25 else int(rng.integers(35, 95))
        bank = rng.normal(0.0, noise, (NOISE_BANK, height, width, 1)).astype(np.int16) if noise > 0 else None
        return cls(blur, noise, quality, bank)

    def apply(self, img: np.ndarray, index: int) -> np.ndarray:
        if self.blur:
            img = cv2.GaussianBlur(img, (self.blur, self.blur), 0)
        if self.bank is not None:
            img = np.clip(img.astype(np.int16) + self.bank[index % NOISE_BANK], 0, 255).astype(np.uint8)
        if self.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return img
