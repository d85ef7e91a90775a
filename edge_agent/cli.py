"""``edge-agent``: run the agent, validate its config, or check a camera end to end.

    edge-agent run --config /etc/edgesight/agent.yaml
    edge-agent run --config agent.yaml --validate-config   # validate only, exit 0/2
    edge-agent check --config agent.yaml                   # validate, open sources, load models, infer once

Exit codes: 0 ok, 2 bad config, 3 a source or model failed the check / at start.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from edge_agent import __version__
from edge_agent.config import AgentConfig, ConfigError, load_config
from edge_agent.preflight import check_broker, check_outbox
from edge_agent.sources import SourceEnded, SourceError, SourceLost, create_source
from model_runtime import ModelLoadError, ModelRuntime
from shared import cpu_features
from shared.int8_precision import PRECISION_KEY
from shared.logstream import CurrentStderrHandler

EXIT_CONFIG = 2
EXIT_RUNTIME = 3


class JsonFormatter(logging.Formatter):
    """One JSON object per line (journald and log shippers parse it without regexes)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, fmt: str) -> None:
    handler = CurrentStderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)


def check(config: AgentConfig) -> int:
    """Open every source, load every model, run one inference on a real frame; report each step."""
    failures = 0
    print(f"cpu: {cpu_features.current().summary}")
    for camera in config.cameras:
        prefix = f"camera {camera.name}:"
        source = create_source(camera.source)
        try:
            source.open()
            frame = source.read()
            print(f"{prefix} source ok ({source.describe()}, {frame.width}x{frame.height}, fps {source.fps})")
        except (SourceError, SourceLost, SourceEnded) as exc:
            print(f"{prefix} source FAILED: {exc}")
            failures += 1
            frame = None
        finally:
            source.close()
        try:
            model = ModelRuntime(camera.model.path, config.runtime)
        except ModelLoadError as exc:
            print(f"{prefix} model FAILED: {exc}")
            failures += 1
            continue
        precise = model.session.get_session_options().get_session_config_entry(PRECISION_KEY) == "1"
        print(
            f"{prefix} model ok ({model.ref}, decoder {model.manifest.decoder.type}, "
            f"providers {model.session.get_providers()}, int8 kernels "
            f"{'u8 x u8 (exact on this CPU without VNNI, slower)' if precise else 'u8 x s8'}, "
            f"runs {model.variant})"
        )
        if model.int8_exact_mode:
            print(
                f"{prefix} note: this int8 model runs in the slower exact mode here; its fp32 variant "
                f"({model.ref}+fp32, if registered) may be faster — `python -m firmware_models evaluate` "
                "measures both"
            )
        if frame is not None:
            started = time.perf_counter()
            found = model.detect(frame.image)
            ms = (time.perf_counter() - started) * 1000
            print(f"{prefix} inference ok ({ms:.1f} ms, {len(found)} detection(s) on the first frame)")
    problem = check_outbox(config)
    print(f"outbox FAILED: {problem}" if problem else f"outbox ok ({config.outbox.path.parent} is writable)")
    failures += bool(problem)
    problem = check_broker(config)
    accepted = f"broker ok ({config.mqtt.url} accepted {config.device.id})"
    print(f"broker FAILED: {problem}" if problem else accepted)
    failures += bool(problem)
    print("check passed" if not failures else f"check FAILED ({failures} problem(s))")
    return 0 if not failures else EXIT_RUNTIME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent", description="edgesight edge agent")
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", required=True)
    run.add_argument("--validate-config", action="store_true", help="validate the config and exit")
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    chk = sub.add_parser("check", help="validate, open the sources, load the models, one dry inference")
    chk.add_argument("--config", required=True)
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"invalid config:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check":
        setup_logging("WARNING", "text")
        print(f"config ok: {args.config} ({len(config.cameras)} camera(s))")
        return check(config)
    if args.validate_config:
        print(f"config ok: {args.config} ({len(config.cameras)} camera(s))")
        return 0
    setup_logging(config.log_level, args.log_format)
    from edge_agent.agent import Agent  # heavy imports only when actually running

    try:
        return Agent(config).run_forever()
    except ModelLoadError as exc:
        logging.getLogger("edge_agent").error("%s", exc)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
