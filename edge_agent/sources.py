"""Frame sources, registered by their config ``type`` (file, stream, usb, synthetic).

A source yields ``Frame`` objects and raises ``SourceLost`` when the device or stream goes away; the
capture thread (capture.py) owns reconnecting, so every source stays a small, blocking reader.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge_agent.config import FileSource, StreamSource, SyntheticSource, UsbSource

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """The source cannot be opened at all (bad path, unknown device)."""


class SourceLost(RuntimeError):
    """The source was open and stopped delivering frames; the capture thread will reopen it."""


class SourceEnded(Exception):
    """A finite source (a file without loop) has no more frames."""


@dataclass
class Frame:
    image: np.ndarray  # BGR, HxWx3 uint8
    index: int  # frame number since the source was opened
    ts: float  # UNIX seconds when the frame was captured (or its video time for offline runs)
    truth: Any = field(default=None, repr=False)  # synthetic ground truth, if any

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class Source(ABC):
    """Base class: open(), grab() + retrieve() (or read()), close(). ``fps`` is the native rate if known.

    ``grab`` advances to the next frame as cheaply as the source allows (decode without colour
    conversion, or no rendering at all); ``retrieve`` materialises the grabbed frame. The capture
    thread retrieves only the frames the pipeline will look at (detect_fps below the camera's fps).
    """

    realtime = True
    fps: float | None = None

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def grab(self) -> None: ...

    @abstractmethod
    def retrieve(self) -> Frame: ...

    def read(self) -> Frame:
        self.grab()
        return self.retrieve()

    def close(self) -> None:  # noqa: B027 - optional hook: most sources hold nothing to release
        pass

    def describe(self) -> str:
        return type(self).__name__


_REGISTRY: dict[str, Callable[[Any], Source]] = {}


def register(kind: str) -> Callable[[Callable[[Any], Source]], Callable[[Any], Source]]:
    def wrap(factory: Callable[[Any], Source]) -> Callable[[Any], Source]:
        _REGISTRY[kind] = factory
        return factory

    return wrap


def create_source(config: Any) -> Source:
    try:
        factory = _REGISTRY[config.type]
    except KeyError:
        raise SourceError(f"no source registered for type {config.type!r}") from None
    return factory(config)


class _OpenCvSource(Source):
    """Shared reader for everything OpenCV's VideoCapture can open."""

    def __init__(self) -> None:
        self.cap: cv2.VideoCapture | None = None
        self.index = 0

    @abstractmethod
    def _capture(self) -> cv2.VideoCapture: ...

    def open(self) -> None:
        self.close()
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.describe()}")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 240 else self.fps
        self.cap = cap
        self.index = 0

    def _grab_once(self) -> bool:
        if self.cap is None:
            raise SourceLost(f"{self.describe()} is not open")
        return bool(self.cap.grab())

    def grab(self) -> None:
        if not self._grab_once():
            raise SourceLost(f"{self.describe()} stopped delivering frames")
        self.index += 1

    def retrieve(self) -> Frame:
        assert self.cap is not None
        ok, image = self.cap.retrieve()
        if not ok or image is None:
            raise SourceLost(f"{self.describe()} delivered an undecodable frame")
        return Frame(image, self.index - 1, time.time())

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


@register("file")
class FileVideoSource(_OpenCvSource):
    def __init__(self, config: FileSource):
        super().__init__()
        self.config = config
        self.realtime = config.realtime

    def describe(self) -> str:
        return f"file {self.config.path}"

    def _capture(self) -> cv2.VideoCapture:
        if not self.config.path.exists():
            raise SourceError(f"video file {self.config.path} does not exist")
        return cv2.VideoCapture(str(self.config.path))

    def grab(self) -> None:
        if not self._grab_once():
            if not self.config.loop:
                raise SourceEnded(self.describe())
            assert self.cap is not None
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            if not self._grab_once():
                raise SourceLost(f"{self.describe()} cannot be rewound")
        self.index += 1


@register("stream")
class StreamVideoSource(_OpenCvSource):
    def __init__(self, config: StreamSource):
        super().__init__()
        self.config = config

    def describe(self) -> str:
        return f"stream {self.config.url}"

    def _capture(self) -> cv2.VideoCapture:
        timeout_ms = int(self.config.open_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        return cv2.VideoCapture(self.config.url, cv2.CAP_FFMPEG, params)


@register("usb")
class UsbVideoSource(_OpenCvSource):
    def __init__(self, config: UsbSource):
        super().__init__()
        self.config = config

    def describe(self) -> str:
        return f"usb camera /dev/video{self.config.index}"

    def _capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.config.index, cv2.CAP_V4L2)
        if self.config.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        if self.config.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        if self.config.fps:
            cap.set(cv2.CAP_PROP_FPS, self.config.fps)
        return cap


@register("synthetic")
class SyntheticVideoSource(Source):
    """Frames of synthetic_world.SyntheticVideo; each Frame carries its ground truth."""

    def __init__(self, config: SyntheticSource):
        self.config = config
        self.realtime = config.realtime
        self.fps = config.fps
        self._loops = 0
        self.video: Any = None
        self.index = 0

    def describe(self) -> str:
        return f"synthetic {self.config.scene} seed={self.config.seed}"

    def open(self) -> None:
        try:
            from synthetic_world import SyntheticVideo
        except ImportError as exc:
            raise SourceError(f"synthetic source needs synthetic_world: {exc}") from None
        c = self.config
        try:
            self.video = SyntheticVideo(
                seed=c.seed, width=c.width, height=c.height, fps=c.fps, duration_s=c.duration_s, scene=c.scene
            )
        except (ValueError, KeyError) as exc:
            raise SourceError(f"synthetic scene {c.scene!r}: {exc}") from None
        self.index = 0
        self._loops = 0

    def grab(self) -> None:
        assert self.video is not None, "open() first"
        if self.index >= len(self.video) * (self._loops + 1):
            if not self.config.loop:
                raise SourceEnded(self.describe())
            self._loops += 1
        self.index += 1

    def retrieve(self) -> Frame:
        """Render only the frames that are looked at: the world is a pure function of the index."""
        rendered = self.video.frame((self.index - 1) % len(self.video))
        return Frame(np.ascontiguousarray(rendered.image), self.index - 1, time.time(), truth=rendered)
