"""The board's UART framing (firmware_models/mcu/board/link.h): 0xE5, type, u32 LE length, payload."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .reference import BoardDetection

MAGIC = 0xE5
CONFIG, FRAME, MQTT, QUIT = b"C", b"F", b"M", b"Q"
RESULT, READY, STATS, LOG = b"R", b"A", b"S", b"L"
DET = struct.Struct("<B7f")


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    return bytes([MAGIC]) + kind + struct.pack("<I", len(payload)) + payload


def frame_packet(index: int, ts_ms: int, pixels: np.ndarray) -> bytes:
    return packet(FRAME, struct.pack("<IQ", index, ts_ms) + np.ascontiguousarray(pixels, np.uint8).tobytes())


def config_packet(**values: object) -> bytes:
    text = "".join(f"{k}={v}\n" for k, v in values.items() if v is not None)
    return packet(CONFIG, text.encode())


@dataclass(frozen=True)
class BoardResult:
    """One frame as the firmware saw it: its raw head tensor, detections and SysTick ticks."""

    index: int
    ticks: int
    raw: np.ndarray
    detections: list[BoardDetection]


def parse_result(payload: bytes, raw_bytes: int) -> BoardResult:
    index, ticks, n = struct.unpack_from("<IIH", payload)
    raw = np.frombuffer(payload, np.uint8, raw_bytes, 10).copy()
    dets = []
    for i in range(n):
        label, score, cx, cy, x1, y1, x2, y2 = DET.unpack_from(payload, 10 + raw_bytes + i * DET.size)
        dets.append(BoardDetection(label, score, (cx, cy), (x1, y1, x2, y2)))
    return BoardResult(index, ticks, raw, dets)


class PacketReader:
    """Reassembles packets from a byte stream."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out = []
        while True:
            start = self.buf.find(bytes([MAGIC]))
            if start < 0:
                self.buf.clear()
                return out
            del self.buf[:start]
            if len(self.buf) < 6:
                return out
            (length,) = struct.unpack_from("<I", self.buf, 2)
            if len(self.buf) < 6 + length:
                return out
            out.append((bytes(self.buf[1:2]), bytes(self.buf[6 : 6 + length])))
            del self.buf[: 6 + length]
