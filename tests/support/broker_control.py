"""Real Mosquitto brokers on the host for tests that run where there is no Mosquitto binary.

`make test-arm` runs the agent's tests in an arm64 chroot under QEMU; the chroot shares the host's
network but has no (x86) Mosquitto it could start. This server runs on the host and starts, stops and
reads the logs of brokers on request, one JSON line per connection on 127.0.0.1; ``MosquittoBroker``
uses it when ``EDGESIGHT_BROKER_CONTROL`` (host:port) is set, so the same tests run unchanged.

    python -m tests.support.broker_control --port-file F    # until SIGTERM; writes its port to F
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import socketserver
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.support.mosquitto import MosquittoBroker, free_port


def call(address: str, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """One request to the control server at ``host:port``; raises RuntimeError on its refusal."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline() or b"{}")
    if not reply.get("ok"):
        raise RuntimeError(f"broker control refused {request.get('op')}: {reply.get('error', 'no reply')}")
    return reply


class Brokers:
    """The host's brokers by the caller's key; a restarted key keeps its port and persistence dir."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.brokers: dict[str, MosquittoBroker] = {}
        self.lock = threading.Lock()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op, key = request.get("op"), str(request.get("key", ""))
        with self.lock:
            broker = self.brokers.get(key)
            if op == "start":
                if broker is None:
                    workdir = self.workdir / f"broker{len(self.brokers)}"
                    workdir.mkdir()
                    broker = MosquittoBroker(
                        workdir, port=int(request["port"]), base_config=request.get("base_config"),
                        extra_config=request.get("extra_config", ""), local=True,
                    )
                    self.brokers[key] = broker
                broker.start()
                return {"ok": True}
            if op == "stop" and broker is None:
                return {"ok": True}  # never started (a fixture stops whatever it made)
            if broker is None:
                return {"ok": False, "error": f"no broker {key!r}"}
            if op == "stop":
                broker.stop(kill=bool(request.get("kill")))
                return {"ok": True}
            if op == "log":
                return {"ok": True, "log": broker.log()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def stop_all(self) -> None:
        with self.lock:
            for broker in self.brokers.values():
                broker.stop()


def serve(port_file: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="broker-control-") as tmp:
        brokers = Brokers(Path(tmp))

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    reply = brokers.handle(json.loads(self.rfile.readline()))
                except Exception as exc:  # reported to the caller, whose test then fails with it
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), Handler)
        server.daemon_threads = True
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        port_file.write_text(f"127.0.0.1:{server.server_address[1]}\n")
        try:
            server.serve_forever()
        finally:
            brokers.stop_all()
            server.server_close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    serve(parser.parse_args().port_file)
