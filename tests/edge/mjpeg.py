"""A tiny MJPEG-over-HTTP camera (multipart/x-mixed-replace), to test stream sources for real."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from tests.support.mosquitto import free_port


class MjpegCamera:
    """Serves a moving square at ``fps``; ``stop()`` drops every client like a camera losing power."""

    def __init__(self, fps: float = 20.0, size: tuple[int, int] = (160, 96), port: int | None = None):
        self.fps, self.size = fps, size
        self.port = port or free_port()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.frames_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def _jpeg(self, i: int) -> bytes:
        w, h = self.size
        img = np.full((h, w, 3), 100, np.uint8)
        x = (i * 3) % w
        cv2.rectangle(img, (x, h // 3), (x + 16, h // 3 + 16), (0, 0, 230), -1)
        return cv2.imencode(".jpg", img)[1].tobytes()

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while camera.server is not None:
                        data = camera._jpeg(i)
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        camera.frames_sent += 1
                        i += 1
                        time.sleep(1 / camera.fps)
                except OSError:
                    return

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()  # the streaming handler sees server=None and drops its client
