"""Is this a whole JPEG, and how big is it? A marker walk, no image library (the hub has no OpenCV).

Checks what a truncated, spliced or fake upload gets wrong: the SOI marker first, well-formed segments up
to a start-of-frame with a non-zero size, a start-of-scan after it, and the EOI marker last.
"""

from __future__ import annotations

SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadJpeg(ValueError):
    """Not a JPEG the hub keeps; the message says what is wrong."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a structurally whole baseline/progressive JPEG; raises BadJpeg."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise BadJpeg("no JPEG start-of-image marker")
    if data[-2:] != b"\xff\xd9":
        raise BadJpeg("no JPEG end-of-image marker (truncated?)")
    pos, size = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise BadJpeg(f"broken JPEG segment at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            raise BadJpeg(f"JPEG segment at byte {pos} runs past the end")
        if marker in SOF_MARKERS:
            if length < 7:
                raise BadJpeg("JPEG start-of-frame segment too short")
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            if not width or not height:
                raise BadJpeg(f"JPEG frame size {width}x{height}")
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to EOI
            if size is None:
                raise BadJpeg("JPEG scan before any start-of-frame")
            return size
        pos += 2 + length
    raise BadJpeg("no JPEG start-of-scan")
