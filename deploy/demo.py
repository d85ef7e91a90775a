"""`make demo`: the whole system on one machine with embedded defaults.

Starts, in order: the embedded MQTT broker (unless EDGESIGHT_MQTT_URL names one), the database migration,
the hub's signing key and model registry (the reference detector registered), the hub's ingest worker,
rollout service and web server, and three edge agents with their model updaters on: one on real CC BY
footage of a hall (deploy/media/hall.mp4) with the distilled real-world student, two on rendered scenes
with the rendered world's reference model; prints the dashboard URL; Ctrl-C stops everything in reverse
order.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("EDGESIGHT_DEMO_DIR", REPO / "var" / "demo"))
BIN = Path(sys.executable).parent
WEB_PORT = int(os.environ.get("EDGESIGHT_DEMO_PORT", "8000"))
NEXT_VERSION = "2.2.0"  # the version docs/rollout.md rolls out
# docs/rollout.md rolls out to group:street
GROUPS = {"demo-hall": "hall", "demo-street": "street", "demo-lobby": "street"}
HALL_CLIP = REPO / "deploy" / "media" / "hall.mp4"  # real footage, CC BY 4.0: deploy/media/ATTRIBUTION.md
# The real-world student (docs/models/README.md): distilled on footage that includes this hall, so the demo
# shows it at its best; on a view it has never seen it is much weaker, which is what site adaptation is for.
REAL_MODEL = REPO / "firmware_models" / "experimental" / "fomo-real"
STREET_MODEL = REPO / "firmware_models" / "reference" / "fomo-street"
# The hall as the camera sees it (normalised): the table people walk up to, and the way out on the right.
HALL_GEOMETRY = """\
    zones:
    - {name: table, polygon: [[0.38, 0.15], [0.78, 0.15], [0.78, 1.0], [0.38, 1.0]], loiter_s: 15}
    lines:
    - {name: exit, a: [0.8, 0.4], b: [0.8, 1.0]}
"""


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise SystemExit(f"demo: {what} did not come up within {timeout:.0f}s (logs in {VAR})")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def scene_geometry(scene: str, seed: int) -> str:
    """Zones and lines of the rendered scene, as agent YAML (a real install draws its own)."""
    import yaml

    from synthetic_world import SyntheticVideo

    video = SyntheticVideo(seed=seed, width=320, height=192, fps=10.0, duration_s=1.0, scene=scene)
    def point(p: tuple[float, float]) -> list[float]:
        return [round(p[0], 3), round(p[1], 3)]

    geometry = {
        "zones": [{"name": name, "polygon": [point(p) for p in poly], "loiter_s": 15}
                  for name, poly in video.zones.items()],
        "lines": [{"name": name, "a": point(a), "b": point(b)} for name, (a, b) in video.lines.items()],
    }
    text = yaml.safe_dump(geometry, default_flow_style=None, sort_keys=False)
    return "".join(f"    {line}\n" for line in text.splitlines())


AGENT_CONFIG = """\
device:
  id: {device_id}
mqtt:
  url: {mqtt_url}
cameras:
  - name: {camera}
    source: "{source}"
    detect_fps: 5
    model:
      path: {model}
{geometry}outbox:
  path: {outbox}
telemetry:
  interval_s: 5
preview:
  enabled: true
  interval_s: 2
updater:
  store_dir: {store}
  hub_public_key: {public_key}
"""


class Demo:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        VAR.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.setdefault("EDGESIGHT_DATABASE_URL", f"sqlite:///{VAR / 'hub.db'}")
        self.env.setdefault("EDGESIGHT_INSTANCE_PATH", str(VAR / "instance"))

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(VAR / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(list(args), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        print(f"  started {name:<10} pid {proc.pid}  log {VAR / (name + '.log')}")
        return proc

    def hub(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(BIN / "cloud-hub"), *args], cwd=REPO, env=self.env, input=stdin,
            capture_output=True, text=True,
        )
        if done.returncode != 0 and check:
            raise SystemExit(f"demo: cloud-hub {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip()

    def credentials(self) -> tuple[str, str]:
        """The demo's admin (made once, by command, never a default password) and an API token."""
        secret_file = VAR / "admin-password.txt"
        if not secret_file.exists():
            password = secrets.token_urlsafe(12)
            self.hub("users", "add", "admin", "--role", "admin", "--password-stdin", stdin=password + "\n")
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
        password = secret_file.read_text().strip()
        token = self.hub("tokens", "create", "admin", "--name", "demo").splitlines()[-1]
        return password, token

    def model_registry(self) -> Path:
        """The hub's signing key and the agents' models in the registry, a newer fomo-street to roll out."""
        public_key = Path(self.env["EDGESIGHT_INSTANCE_PATH"]) / "keys" / "hub-ed25519.pub.pem"
        if not public_key.exists():
            self.hub("keys", "init")
        reference = REPO / "firmware_models" / "reference" / "fomo-street"
        manifest = reference / "manifest.json"
        self.hub("models", "add", str(reference / "model.onnx"), "--manifest", str(manifest))
        # A second version to roll out, so docs/rollout.md can be followed word for word.
        newer = VAR / "models" / f"fomo-street-{NEXT_VERSION}"
        newer.mkdir(parents=True, exist_ok=True)
        for item in reference.iterdir():
            if item.is_file() and item.name != "manifest.json":
                shutil.copy2(item, newer / item.name)
        data = json.loads(manifest.read_text())
        data["version"] = NEXT_VERSION
        (newer / "manifest.json").write_text(json.dumps(data, indent=2))
        self.hub("models", "add", str(newer / "model.onnx"), "--manifest", str(newer / "manifest.json"))
        # demo-hall's model, so the registry knows what every agent runs (site adaptation starts from it)
        real = REAL_MODEL
        self.hub("models", "add", str(real / "model.onnx"), "--manifest", str(real / "manifest.json"))
        return public_key

    def enrol(self, device_id: str, group: str) -> None:
        """Agents in rollout groups (``--target group:street``). The embedded broker trusts its machine, so
        the printed secret is not needed here; on a real broker it goes in the agent's config."""
        self.hub("devices", "add", device_id, "--group", group, check=False)

    def run(self) -> None:
        print("edgesight demo: starting the hub, a broker and three edge agents")
        if "EDGESIGHT_MQTT_URL" not in self.env:
            port = free_port(1883)
            self.env["EDGESIGHT_MQTT_URL"] = f"mqtt://127.0.0.1:{port}"
            self.spawn("broker", str(BIN / "cloud-hub"), "broker", "--port", str(port))
            wait_for(lambda: port_open(port), "embedded broker")
        self.hub("db", "upgrade")
        password, token = self.credentials()
        public_key = self.model_registry()
        self.spawn("ingest", str(BIN / "cloud-hub"), "ingest")
        self.spawn("rollout", str(BIN / "cloud-hub"), "rollout", "serve")
        web_port = free_port(WEB_PORT)
        self.spawn("web", str(BIN / "cloud-hub"), "serve", "--host", "127.0.0.1", "--port", str(web_port))
        url = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: http_ok(f"{url}/healthz"), "hub web")
        agents = [("demo-hall", "hall", f"file:{HALL_CLIP}?loop=true", REAL_MODEL, HALL_GEOMETRY)]
        for device_id, camera, scene, seed in (
            ("demo-street", "street", "street", 101),
            ("demo-lobby", "lobby", "indoor", 202),
        ):
            source = f"synthetic:{scene}?seed={seed}&width=320&height=192"
            agents.append((device_id, camera, source, STREET_MODEL, scene_geometry(scene, seed)))
        for device_id, camera, source, model, geometry in agents:
            config = VAR / f"{device_id}.yaml"
            config.write_text(
                AGENT_CONFIG.format(
                    device_id=device_id,
                    mqtt_url=self.env["EDGESIGHT_MQTT_URL"],
                    camera=camera,
                    source=source,
                    model=model,
                    outbox=VAR / f"{device_id}-outbox.db",
                    geometry=geometry,
                    store=VAR / f"{device_id}-models",
                    public_key=public_key,
                )
            )
            self.enrol(device_id, GROUPS[device_id])
            self.spawn(device_id, str(BIN / "edge-agent"), "run", "--config", str(config))
        exports = " ".join(f"{k}={shlex.quote(self.env[k])}" for k in
                           ("EDGESIGHT_DATABASE_URL", "EDGESIGHT_INSTANCE_PATH", "EDGESIGHT_MQTT_URL"))
        print(
            f"\n  Dashboard:  {url}/   (log in as admin / {password})"
            f"\n  Broker:     {self.env['EDGESIGHT_MQTT_URL']}   (agents: mqtt.url in their YAML)"
            f"\n  Rollouts:   {url}/rollouts   (fomo-street 2.1.1 runs, {NEXT_VERSION} is registered; "
            "demo-street and demo-lobby in group street)"
            f"\n  Events API: curl -H 'Authorization: Bearer {token}' {url}/api/v1/events"
            "\n\n  To run cloud-hub commands against this demo (devices, rollout, …), in another shell:"
            f"\n  export {exports}"
            "\n\nCtrl-C stops everything.",
            flush=True,
        )
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"demo: {name} exited with {proc.returncode} (see {VAR / name}.log)")
            time.sleep(1)

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            print(f"  stopped {name}")


def main() -> None:
    demo = Demo()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C stops everything even when started in the background (where a shell ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        demo.run()
    except KeyboardInterrupt:
        print()
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
