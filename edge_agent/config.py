"""The agent's YAML configuration as pydantic models (Frigate style: ``extra="forbid"`` everywhere).

Every error names the field's dotted path *and* the YAML line it came from, so an installer on a
camera can fix the file without reading Python. Geometry (zones, lines) is in normalised frame
coordinates (0..1, origin top-left) so one config works at any resolution; a point outside the frame
is a config error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.updater.config import UpdaterConfig
from model_runtime.session import SessionSettings
from shared.topics import DEFAULT_PREFIX, DEVICE_ID_RE

Point = tuple[float, float]
PositiveFloat = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class ConfigError(ValueError):
    """A config file that cannot be used; the message lists every problem with its location."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------- device, mqtt
class DeviceConfig(Section):
    id: str = Field(description="device id; also the MQTT client id and username")
    password: str | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not DEVICE_ID_RE.match(value):
            raise ValueError("1-64 chars of letters, digits, '_', '.', '-'")
        return value


class TlsConfig(Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(default=False, description="skip hostname check (lab use only)")


class MqttConfig(Section):
    url: str = "mqtt://127.0.0.1:1883"
    prefix: str = DEFAULT_PREFIX
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # paho's reconnect delays are whole seconds: below 1 s a bound rounds to 0, a busy reconnect loop.
    reconnect_min_s: Annotated[float, Field(ge=1.0)] = 1.0
    reconnect_max_s: Annotated[float, Field(ge=1.0)] = 30.0
    max_inflight: Annotated[int, Field(ge=1, le=1000)] = 20
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _reconnect_bounds(self) -> MqttConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s ({self.reconnect_min_s:g}) must not exceed reconnect_max_s"
                f" ({self.reconnect_max_s:g})"
            )
        return self

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://host:port or mqtts://host:port")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)


# -------------------------------------------------------------------------------------------- sources
class FileSource(Section):
    type: Literal["file"] = "file"
    path: Path
    loop: bool = False
    realtime: bool = Field(default=True, description="pace frames at the file's fps, like a camera")


class StreamSource(Section):
    """RTSP or HTTP(S) (MJPEG/HLS) through OpenCV's FFmpeg backend; reconnects with backoff."""

    type: Literal["stream"] = "stream"
    url: str
    reconnect_min_s: PositiveFloat = 1.0
    reconnect_max_s: PositiveFloat = 30.0
    open_timeout_s: PositiveFloat = 10.0


class UsbSource(Section):
    type: Literal["usb"] = "usb"
    index: Annotated[int, Field(ge=0)] = 0
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    reconnect_min_s: PositiveFloat = 1.0
    reconnect_max_s: PositiveFloat = 30.0


class SyntheticSource(Section):
    """The rendered street world of synthetic_world, with ground truth (demos, tests, benchmarks)."""

    type: Literal["synthetic"] = "synthetic"
    scene: str = "street"
    seed: int = 0
    width: Annotated[int, Field(ge=32)] = 640
    height: Annotated[int, Field(ge=32)] = 360
    fps: PositiveFloat = 10.0
    duration_s: PositiveFloat = 60.0
    loop: bool = True
    realtime: bool = True


SourceConfig = Annotated[FileSource | StreamSource | UsbSource | SyntheticSource, Field(discriminator="type")]


def source_from_string(value: str) -> dict[str, Any]:
    """Shorthand: ``rtsp://…``, ``http(s)://…``, ``usb:0`` / ``/dev/video0``, ``synthetic:street?seed=3``,
    ``file:/clips/hall.mp4?loop=true``, or a file path."""
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme in ("rtsp", "rtsps", "http", "https", "rtmp"):
        return {"type": "stream", "url": value}
    if scheme == "usb":
        return {"type": "usb", "index": int(parts.path or 0)}
    if value.startswith("/dev/video"):
        return {"type": "usb", "index": int(value.removeprefix("/dev/video"))}
    if scheme == "synthetic":
        return {"type": "synthetic", "scene": parts.path or "street", **dict(parse_qsl(parts.query))}
    if scheme == "file":  # file:/path/clip.mp4?loop=true
        return {"type": "file", "path": parts.path, **dict(parse_qsl(parts.query))}
    return {"type": "file", "path": value}


# ------------------------------------------------------------------------------- motion, model, tracker
class MotionConfig(Section):
    """Frigate-style motion gate: the CNN runs only when something moves (plus a periodic check)."""

    enabled: bool = True
    frame_height: Annotated[int, Field(ge=16, le=1080)] = 120
    threshold: Annotated[int, Field(ge=1, le=255)] = 25
    contour_area: Annotated[float, Field(ge=0, le=1)] = 0.0005
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.1
    lightning_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    periodic_s: PositiveFloat = Field(default=5.0, description="inference at least this often, motion or not")
    hold_s: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="keep inferring after motion stops"
    )
    track_radius: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.15,
        description="motion within this margin of a tracked object is that object, and within it of where "
        "the CNN just found nothing is nothing new (frame share)",
    )
    cnn_interval_s: Annotated[float, Field(ge=0)] = Field(
        default=0.6,
        description="while only known objects move far from zone edges and lines, infer at most this often "
        "(0 = every processed frame)",
    )
    known_hits: Annotated[int, Field(ge=1)] = Field(
        default=5, description="with cnn_interval_s: detections before a track's motion may skip the CNN"
    )
    rule_radius: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.03,
        description="with cnn_interval_s: a track this close to a zone edge or line, or predicted to cross "
        "one before the next inference, gets the CNN on every processed frame (decisions are made there)",
    )
    mask: list[list[Point]] = Field(default_factory=list, description="polygons where motion is ignored")


class ModelConfig(Section):
    path: Path = Field(description="model directory holding manifest.json")
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    labels: list[str] | None = Field(default=None, description="keep only these labels")


class TrackerConfig(Section):
    match: Literal["distance", "iou"] = Field(
        default="distance", description="centre distance (FOMO/centroid models) or box IoU (box detectors)"
    )
    iou_threshold: Annotated[float, Field(ge=0, le=1)] = 0.1
    max_distance: Annotated[float, Field(gt=0, le=2)] = Field(
        default=0.10, description="distance match: never further than this from the prediction (frame share)"
    )
    gate: Annotated[float, Field(gt=0)] = Field(
        default=40.0,
        description="distance match: squared distance from the prediction in units of its variance "
        "(the Kalman filter's own uncertainty) beyond which a detection is not that track's",
    )
    process_noise: Annotated[float, Field(gt=0)] = Field(
        default=0.1, description="Kalman acceleration noise (frame fractions / s²): lower = steadier"
    )
    skip_speed: Annotated[float, Field(ge=0)] = Field(
        default=0.5,
        description="distance gate growth per second of inference skipped by the motion gate (frame share/s)",
    )
    min_hits: Annotated[int, Field(ge=1)] = 4
    label_lock: Annotated[int, Field(ge=0)] = Field(
        default=20,
        description="after this many detections a track never takes a detection of a label it has never "
        "had (labels that flicker, like person/bicycle, have had both by then); 0 = never",
    )
    max_age: Annotated[int, Field(ge=1)] = 5
    max_lost: Annotated[int, Field(ge=0)] = Field(
        default=6,
        description="inferences a track missed for longer than max_age still waits, unseen by the rules, "
        "for a detection that also matches its colours (an object back from behind a truck); 0 = end at "
        "max_age",
    )
    appearance_weight: Annotated[float, Field(ge=0)] = Field(
        default=3.0,
        description="distance match: cost of a detection's colour distance (0..1) from the track, in the "
        "same units as the position cost (0 = position only)",
    )
    appearance_gate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.7,
        description="a coasting track matches a detection beyond 4 sigma of its prediction only when their "
        "colour distance (Bhattacharyya) is at most this",
    )
    exit_margin: Annotated[float, Field(ge=0, le=0.2)] = Field(
        default=0.02,
        description="a missed track whose box is this close to the frame border, moving out, has left "
        "(ends at once instead of coasting max_age inferences; 0 = off)",
    )


# ------------------------------------------------------------------------------------------------ rules
class ZoneConfig(Section):
    name: Name
    polygon: Annotated[list[Point], Field(min_length=3)]
    labels: list[str] | None = None
    loiter_s: PositiveFloat | None = Field(default=None, description="dwell longer than this → loiter")
    crowd_count: Annotated[int, Field(ge=1)] | None = Field(default=None, description="crowd when ≥ N")
    crowd_for_s: Annotated[float, Field(ge=0)] = 3.0
    margin: Annotated[float, Field(ge=0, le=0.2)] = Field(
        default=0.02, description="hysteresis: enter/exit only once this far past the boundary"
    )


class LineConfig(Section):
    """A directional line from ``a`` to ``b``; crossing left→right of a→b is ``positive``."""

    name: Name
    a: Point
    b: Point
    labels: list[str] | None = None
    positive: str = "in"
    negative: str = "out"
    margin: Annotated[float, Field(ge=0, le=0.2)] = 0.02
    min_frames: Annotated[int, Field(ge=1)] = Field(
        default=2, description="inferences on the new side before a crossing counts (jitter filter)"
    )

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineConfig:
        if self.a == self.b:
            raise ValueError("line endpoints a and b must differ")
        return self


class SpeedConfig(Section):
    name: Name
    lines: tuple[str, str]
    distance_m: PositiveFloat
    limit_mps: PositiveFloat | None = None


class RedLightConfig(Section):
    name: Name
    line: str
    signal: Name = Field(description="signal name; state arrives on {prefix}/devices/{id}/signal/{signal}")
    direction: str | None = Field(default=None, description="only this direction counts (default: both)")


class EventsConfig(Section):
    anchor: Literal["center", "bottom"] = Field(default="center", description="point tested against rules")
    update_interval_s: Annotated[float, Field(ge=0)] = 0.0
    min_zone_frames: Annotated[int, Field(ge=1)] = 2
    zone_handoff_s: Annotated[float, Field(ge=0)] = Field(
        default=3.0,
        description="a track lost inside a zone exits only if no new track of its label appears in the "
        "zone within this time (s); 0 = exit at once",
    )


class SnapshotConfig(Section):
    enabled: bool = True
    max_width: Annotated[int, Field(ge=32, le=4096)] = 640
    quality: Annotated[int, Field(ge=10, le=100)] = 80
    crop: bool = True
    kinds: list[str] = Field(default_factory=lambda: ["object"], description="event kinds with snapshots")


class CameraConfig(Section):
    name: Name
    source: SourceConfig
    detect_fps: PositiveFloat = 5.0
    model: ModelConfig
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    speed: list[SpeedConfig] = Field(default_factory=list)
    red_light: list[RedLightConfig] = Field(default_factory=list)

    @field_validator("source", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return source_from_string(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        names = {line.name for line in self.lines}
        for rule in self.speed:
            for line in rule.lines:
                if line not in names:
                    raise ValueError(f"speed {rule.name!r}: unknown line {line!r}")
        for rule in self.red_light:
            if rule.line not in names:
                raise ValueError(f"red_light {rule.name!r}: unknown line {rule.line!r}")
        for kind, items in (("zone", self.zones), ("line", self.lines)):
            seen = [item.name for item in items]
            if len(seen) != len(set(seen)):
                raise ValueError(f"duplicate {kind} names")
        return self


# ---------------------------------------------------------------------------------- outbox, telemetry
class OutboxConfig(Section):
    path: Path = Path("/var/lib/edgesight/outbox.db")
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 256 * 1024 * 1024
    hub_ack: bool = Field(
        default=True,
        description="keep an event until the hub says it is stored (false: forget it on the broker's PUBACK)",
    )
    ack_timeout_s: Annotated[float, Field(ge=0.5)] = Field(
        default=30.0, description="publish an event again when the hub has not confirmed it by then"
    )
    ack_timeout_max_s: Annotated[float, Field(ge=0.5)] = Field(
        default=600.0, description="the timeout doubles with every attempt, up to this"
    )

    @model_validator(mode="after")
    def _ack_bounds(self) -> OutboxConfig:
        if self.ack_timeout_s > self.ack_timeout_max_s:
            raise ValueError(
                f"ack_timeout_s ({self.ack_timeout_s:g}) must not exceed ack_timeout_max_s"
                f" ({self.ack_timeout_max_s:g})"
            )
        return self


class TelemetryConfig(Section):
    interval_s: PositiveFloat = 10.0


class RuntimeConfig(Section):
    """onnxruntime session options shared by every model on this host."""

    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: Annotated[int, Field(ge=0, le=64)] = 1
    allow_spinning: bool = False
    warmup_runs: Annotated[int, Field(ge=0, le=100)] = 2
    int8_precision: Literal["auto", "exact", "fast"] = Field(
        default="auto", description="onnxruntime's exact int8 mode: auto asks for it on x86 without VNNI"
    )

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            providers=list(self.providers),
            threads=self.intra_op_threads,
            allow_spinning=self.allow_spinning,
            precision=self.int8_precision,
            warmup_runs=self.warmup_runs,
        )


class PreviewConfig(Section):
    """A low-rate preview frame for the dashboard (off unless asked: it costs bandwidth)."""

    enabled: bool = False
    interval_s: Annotated[float, Field(ge=0.5, le=3600)] = 2.0
    max_width: Annotated[int, Field(ge=64, le=640)] = 320
    quality: Annotated[int, Field(ge=20, le=95)] = 60


class AgentConfig(Section):
    device: DeviceConfig
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    preview: PreviewConfig = Field(default_factory=PreviewConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    cameras: Annotated[list[CameraConfig], Field(min_length=1)]
    updater: UpdaterConfig | None = Field(default=None, description="model rollouts (edge_agent/updater)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_cameras(self) -> AgentConfig:
        names = [camera.name for camera in self.cameras]
        if len(names) != len(set(names)):
            raise ValueError("camera names must be unique")
        return self


# Geometry is checked in a second pass so the error can point at the exact coordinate.
def _geometry_errors(config: AgentConfig) -> list[tuple[tuple[Any, ...], str]]:
    errors = []

    def check(loc: tuple[Any, ...], point: Point) -> None:
        if not (0.0 <= point[0] <= 1.0 and 0.0 <= point[1] <= 1.0):
            errors.append((loc, f"point {list(point)} is outside the frame (coordinates are 0..1)"))

    for c, camera in enumerate(config.cameras):
        for z, zone in enumerate(camera.zones):
            for p, point in enumerate(zone.polygon):
                check(("cameras", c, "zones", z, "polygon", p), point)
        for i, line in enumerate(camera.lines):
            check(("cameras", c, "lines", i, "a"), line.a)
            check(("cameras", c, "lines", i, "b"), line.b)
        for m, polygon in enumerate(camera.motion.mask):
            for p, point in enumerate(polygon):
                check(("cameras", c, "motion", "mask", m, p), point)
    return errors


# ------------------------------------------------------------------------------------ loading + lines
def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree; return the 1-based line."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            # else: a union tag or a missing key: stay on the mapping that should hold it
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _format(source: str, loc: tuple[Any, ...], msg: str, root: yaml.Node | None) -> str:
    path = ".".join(str(p) for p in loc if p not in ("file", "stream", "usb", "synthetic")) or "<root>"
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    return f"{where}: {path}: {msg}"


def parse_config(text: str, source: str = "<config>") -> AgentConfig:
    """Validate YAML text into an AgentConfig or raise ConfigError listing every problem with its line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_format(source, tuple(err["loc"]), err["msg"], root) for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    problems = _geometry_errors(config)
    if problems:
        raise ConfigError("\n".join(_format(source, loc, msg, root) for loc, msg in problems))
    return config


def load_config(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    config = parse_config(text, source=str(path))
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: AgentConfig, base: Path) -> AgentConfig:
    """Relative model/outbox/file paths are relative to the config file, like most daemons do."""

    def fix(p: Path) -> Path:
        return p if p.is_absolute() or p.exists() else (base / p)

    config.outbox.path = fix(config.outbox.path)
    for camera in config.cameras:
        camera.model.path = fix(camera.model.path)
        if isinstance(camera.source, FileSource):
            camera.source.path = fix(camera.source.path)
    return config
