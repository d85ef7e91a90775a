"""A real RTSP camera: GStreamer's gst-rtsp-server serving a moving red square as RTP/JPEG.

The server runs in its own process under the system Python (GStreamer's bindings, python3-gi, are a
Debian package, not in the venv): ``RtspCamera.start()`` launches ``python3 -m tests.edge.rtsp PORT``
and ``stop()`` SIGKILLs it, like a camera losing power. This module imports only the standard library
at the top so both interpreters can load it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
WIDTH, HEIGHT, FPS = 160, 96, 20  # RTP/JPEG wants sizes that are multiples of 8


def frame(i: int) -> bytes:
    """BGR bytes of the MJPEG test camera's scene: grey, a 16 px red square moving right and wrapping."""
    row = bytearray(b"\x64" * (WIDTH * 3))
    red_row = bytearray(row)
    x = (i * 3) % WIDTH
    side = min(16, WIDTH - x)
    red_row[x * 3 : (x + side) * 3] = b"\x00\x00\xe6" * side
    top = HEIGHT // 3
    return bytes(row) * top + bytes(red_row) * 16 + bytes(row) * (HEIGHT - top - 16)


def serve(port: int) -> None:
    """Run the RTSP server on 127.0.0.1:port at rtsp://…/cam until killed (system Python only)."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    duration = Gst.SECOND // FPS

    def need_data(src: Gst.Element, _length: int, state: dict[str, int]) -> None:
        i = state["i"]
        buf = Gst.Buffer.new_wrapped(frame(i))
        buf.pts, buf.duration = i * duration, duration
        state["i"] = i + 1
        src.emit("push-buffer", buf)

    def configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        src = media.get_element().get_child_by_name("src")
        src.connect("need-data", need_data, {"i": 0})

    factory = GstRtspServer.RTSPMediaFactory()
    caps = f"video/x-raw,format=BGR,width={WIDTH},height={HEIGHT},framerate={FPS}/1"
    factory.set_launch(  # rtpjpegpay takes 4:2:0 JPEGs only, hence the I420 step
        f"( appsrc name=src is-live=true format=time caps={caps} ! videoconvert ! video/x-raw,format=I420"
        " ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    factory.connect("media-configure", configure)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    server.get_mount_points().add_factory("/cam", factory)
    if not server.attach(None):
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    GLib.MainLoop().run()


class RtspCamera:
    """One server process; ``stop()``/``start()`` keep the port so the agent can reconnect to it."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty server can never block on it; kept for the camera's lifetime.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> RtspCamera:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, "-m", "tests.edge.rtsp", str(self.port)], cwd=REPO, stderr=self.stderr
        )
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            self.stderr.seek(0)
            raise RuntimeError(f"RTSP server did not start: {self.stderr.read().decode()}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


if __name__ == "__main__":
    serve(int(sys.argv[1]))
