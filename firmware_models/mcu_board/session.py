"""One run of the firmware on QEMU's mps2-an500: the host plays the camera and the network.

QEMU connects the board's UART0 to a TCP port we listen on (``-serial tcp:127.0.0.1:PORT``). Over it
the host sends a config (device id and the device's own broker credentials), frames of a real clip
one at a time (the board says when it is ready for the next), and the broker's bytes; the board sends
its MQTT bytes, which the bridge passes unchanged to the real broker on a TCP socket, and, when asked,
each frame's raw head tensor and detections. The MQTT session is the board's own: the bridge does not
parse it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np

from . import link
from .build import FIRMWARE

QEMU = "qemu-system-arm"


class BoardError(RuntimeError):
    """The board did not do what the protocol says (timeout, crash, bad exit code)."""


class BoardSession:
    def __init__(
        self,
        firmware: Path = FIRMWARE,
        *,
        raw_bytes: int,
        broker: tuple[str, int] | None = None,
        icount: bool = False,
        timeout: float = 120.0,
    ):
        self.firmware = firmware
        self.raw_bytes = raw_bytes
        self.broker = broker
        self.icount = icount
        self.timeout = timeout
        self.results: list[link.BoardResult] = []
        self.stats: dict | None = None
        self.mqtt_bytes_out = 0
        self._ready = threading.Semaphore(0)
        self._done = threading.Event()
        self._write_lock = threading.Lock()
        self._broker_sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._board: socket.socket | None = None
        self.console = b""
        self.exit_code: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> BoardSession:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ):
        self.close()

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(30)
        port = server.getsockname()[1]
        cmd = [
            QEMU,
            "-M",
            "mps2-an500",
            "-nographic",
            "-monitor",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-serial",
            f"tcp:127.0.0.1:{port}",
            "-kernel",
            str(self.firmware),
        ]
        if self.icount:
            cmd[1:1] = ["-icount", "shift=0"]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            self._board, _ = server.accept()
        finally:
            server.close()
        self._board.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._read_board, daemon=True, name="board-uart").start()

    def close(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        for s in (self._board, self._broker_sock):
            if s:
                s.close()
        if self._proc and self._proc.stdout:
            self.console += self._proc.stdout.read() or b""
            self._proc.stdout.close()

    # -- host → board ----------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        assert self._board is not None
        with self._write_lock:
            self._board.sendall(data)

    def configure(self, **values: object) -> None:
        """device, username, password, boot, seq, keepalive, results (1: send back every frame), now."""
        self._send(link.config_packet(now=int(time.time()), **values))

    def feed(self, index: int, pixels: np.ndarray, ts_ms: int | None = None) -> None:
        """One frame, once the board said it is ready for it."""
        if not self._ready.acquire(timeout=self.timeout):
            raise BoardError(f"board not ready for frame {index} within {self.timeout}s{self._why()}")
        self._send(link.frame_packet(index, int(time.time() * 1000) if ts_ms is None else ts_ms, pixels))

    def finish(self, check: bool = True) -> dict:
        """Ask the board to deliver its queued events, go offline and stop; returns its stats. The
        firmware's exit code is kept in ``exit_code`` (5: the broker refused its CONNECT)."""
        if not self._ready.acquire(timeout=self.timeout):
            raise BoardError(f"board did not finish its last frame{self._why()}")
        self._send(link.packet(link.QUIT))
        if not self._done.wait(self.timeout):
            raise BoardError(f"board sent no stats{self._why()}")
        assert self._proc is not None
        code = self.exit_code = self._proc.wait(30)
        if check and code != 0:
            raise BoardError(f"firmware exited with {code}{self._why()}")
        assert self.stats is not None
        return self.stats

    def _why(self) -> str:
        alive = self._proc is not None and self._proc.poll() is None
        return "" if alive else f" (QEMU exited with {self._proc.returncode if self._proc else None})"

    # -- board → host ----------------------------------------------------------------------
    def _read_board(self) -> None:
        reader = link.PacketReader()
        assert self._board is not None
        while True:
            try:
                data = self._board.recv(65536)
            except OSError:
                break
            if not data:
                break
            for kind, payload in reader.feed(data):
                self._on_packet(kind, payload)
        self._done.set()
        if self._broker_sock:  # the board is gone: so is its TCP connection (the broker sends its will)
            with contextlib.suppress(OSError):
                self._broker_sock.shutdown(socket.SHUT_RDWR)

    def _on_packet(self, kind: bytes, payload: bytes) -> None:
        if kind == link.READY:
            self._ready.release()
        elif kind == link.RESULT:
            self.results.append(link.parse_result(payload, self.raw_bytes))
        elif kind == link.MQTT:
            self.mqtt_bytes_out += len(payload)
            self._to_broker(payload)
        elif kind == link.STATS:
            self.stats = json.loads(payload)
            self._done.set()

    def _to_broker(self, data: bytes) -> None:
        if self.broker is None:
            return
        if self._broker_sock is None:
            self._broker_sock = socket.create_connection(self.broker, timeout=10)
            self._broker_sock.settimeout(None)
            threading.Thread(target=self._read_broker, args=(self._broker_sock,), daemon=True).start()
        self._broker_sock.sendall(data)

    def _read_broker(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            for i in range(0, len(data), 256):
                try:
                    self._send(link.packet(link.MQTT, data[i : i + 256]))
                except OSError:
                    return
