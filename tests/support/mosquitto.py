"""Start a real Mosquitto broker on a free port from the project's own config (deploy/mosquitto)."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"


LOWEST_TEST_PORT = 20000
CONTROL_ENV = "EDGESIGHT_BROKER_CONTROL"


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range for clients' source ports (Linux default 32768-60999)."""
    try:
        low, high = (int(v) for v in path.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port *below* the ephemeral range. ``bind(0)`` returns one from that range, and there any
    outgoing connection of the suite (a PostgreSQL or MQTT client) may take it as its source port between
    our check and the server's bind: mosquitto then fails with "Address already in use"."""
    low, _ = ephemeral_range()
    if low - 1 > LOWEST_TEST_PORT:
        for _ in range(200):
            port = random.randint(LOWEST_TEST_PORT, low - 1)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use (or in TIME_WAIT): try another
                return port
    with socket.socket() as sock:  # an unusual port range: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Until something accepts on ``host:port``; with ``proc``, fail at once if that process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TimeoutError(f"the process meant to listen on {host}:{port} exited ({proc.returncode})")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def render_config(workdir: Path, port: int, base: str | None = None, extra: str = "") -> Path:
    """The deploy config with its listener moved to ``127.0.0.1:port`` and paths under ``workdir``."""
    text = base if base is not None else DEPLOY_CONF.read_text()
    text = re.sub(r"^listener\s+\d+.*$", f"listener {port} 127.0.0.1", text, count=1, flags=re.M)
    text = re.sub(r"^persistence_location .*$", f"persistence_location {workdir}/", text, flags=re.M)
    text = re.sub(r"^log_dest .*$", f"log_dest file {workdir}/mosquitto.log", text, flags=re.M)
    if os.geteuid() == 0 and not re.search(r"^user\s", text + extra, flags=re.M):
        # Run as root, Mosquitto drops to user `mosquitto`, which cannot write persistence into pytest's
        # 0700 temp dirs: queued QoS 1 messages would then be lost across a broker restart.
        extra = "user root\n" + extra
    conf = workdir / "mosquitto.conf"
    conf.write_text(text + "\n" + extra)
    return conf


class MosquittoBroker:
    """One broker process; ``stop()``/``start()`` keep the port so clients can reconnect to it."""

    def __init__(self, workdir: Path, port: int | None = None, base_config: str | None = None,
                 extra_config: str = "", local: bool = False):
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.conf = render_config(workdir, self.port, base_config, extra_config)
        self.proc: subprocess.Popen | None = None
        # Where a host runs the broker for us (tests/support/broker_control.py; make test-arm).
        self.control = None if local else os.environ.get(CONTROL_ENV)
        self.remote_config = {"base_config": base_config, "extra_config": extra_config}

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _remote(self, op: str, **fields) -> dict:
        from tests.support.broker_control import call

        return call(self.control, {"op": op, "key": str(self.workdir), **fields})

    def start(self) -> MosquittoBroker:
        if self.control:
            self._remote("start", port=self.port, **self.remote_config)
            wait_port(self.host, self.port)
            return self
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(self.host, self.port, proc=self.proc)
        except TimeoutError:
            self.proc.kill()
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            log = (self.workdir / "mosquitto.log")
            raise RuntimeError(
                f"mosquitto did not start: {err}\n{log.read_text() if log.exists() else ''}"
            ) from None
        return self

    def stop(self, kill: bool = False) -> None:
        if self.control:
            self._remote("stop", kill=kill)
            return
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        if self.control:
            return self._remote("log")["log"]
        path = self.workdir / "mosquitto.log"
        return path.read_text() if path.exists() else ""
