"""The seam between the updater and whatever runs inference (the agent, or a simulated camera)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ModelSwitcher(Protocol):
    """Implemented by the agent. Every method is called from the updater's worker thread."""

    def current_model(self) -> Path | None:
        """Directory (with manifest.json) of the model running now."""
        ...

    def activate(self, model_dir: Path) -> None:
        """Swap the running model between two frames (load first, then swap; no frame dropped).

        Raise if the model cannot be loaded; the old one must then still be running.
        """
        ...

    def start_shadow(self, model_dir: Path, sample_rate: float) -> None:
        """Run ``model_dir`` beside the active model on a sample of frames and report each pair with
        ``Updater.record_shadow``; its detections never leave the device."""
        ...

    def stop_shadow(self) -> None: ...
