"""The real edge agent hosts the updater: its one MQTT connection, its camera pipelines, its frames."""

from __future__ import annotations

from pathlib import Path

import yaml

from edge_agent.agent import Agent
from edge_agent.config import parse_config
from tests.rollout.support import make_offer, repackage, wait_for


def _agent(mosquitto, tmp_path: Path, baseline: Path, public_key: Path, **health) -> Agent:
    data = {
        "device": {"id": "agent-1"},
        "mqtt": {"url": mosquitto.url, "reconnect_min_s": 1, "reconnect_max_s": 1},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "telemetry": {"interval_s": 1},
        "cameras": [
            {
                "name": "street",
                "source": "synthetic:street?seed=5",
                "detect_fps": 20,
                "motion": {"enabled": False},
                "model": {"path": str(baseline)},
            }
        ],
        "updater": {
            "store_dir": str(tmp_path / "models"),
            "hub_public_key": str(public_key),
            "health": {"min_inferences": 10, **health},
            "shadow": {"sample_rate": 0.5, "report_every": 10},
        },
    }
    return Agent(parse_config(yaml.safe_dump(data), source="agent.yaml")).start()


def test_agent_swaps_model_between_frames_and_keeps_it_after_restart(
    mosquitto, plain_hub, hub_keys, baseline, tmp_path: Path
) -> None:
    agent = _agent(mosquitto, tmp_path, baseline, hub_keys[1])
    try:
        pipeline = agent.cameras[0].pipeline
        wait_for(lambda: pipeline.stats.processed > 5, what="frames flowing")
        offer, data = make_offer(hub_keys[0], repackage(baseline, tmp_path / "v120", "2.2.0"))
        plain_hub.offer("agent-1", offer, data)
        wait_for(lambda: plain_hub.last("agent-1", "ACTIVE"), timeout=60, what="ACTIVE")
        assert pipeline.model.ref == "fomo-street@2.2.0"
        from shared.payloads import StatusPayload

        status = wait_for(
            lambda: [
                m
                for m in plain_hub.statuses
                if StatusPayload.model_validate_json(m).model == "fomo-street@2.2.0"
            ],
            what="a retained status naming the new model",
        )
        assert status
        assert agent.cameras[0].worker.errors == 0, "no frame failed across the swap"
        before = pipeline.stats.processed
        wait_for(lambda: pipeline.stats.processed > before + 5, what="frames after the swap")
    finally:
        agent.stop()
    restarted = _agent(mosquitto, tmp_path, baseline, hub_keys[1])
    try:
        assert restarted.cameras[0].pipeline.model.ref == "fomo-street@2.2.0", "the committed model survives"
    finally:
        restarted.stop()


def test_agent_reverts_a_model_that_fails_its_health_window(
    mosquitto, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    agent = _agent(mosquitto, tmp_path, baseline, hub_keys[1], max_latency_ms_p95=0.001)
    try:
        offer, data = make_offer(hub_keys[0], repackage(baseline, tmp_path / "v120", "2.2.0"))
        plain_hub.offer("agent-1", offer, data)
        rolled = wait_for(lambda: plain_hub.last("agent-1", "ROLLED_BACK"), timeout=60, what="ROLLED_BACK")
        assert rolled.reason.startswith("health: p95 latency")
        assert agent.cameras[0].pipeline.model.ref == "fomo-street@2.1.1"
        before = agent.cameras[0].pipeline.stats.processed
        wait_for(
            lambda: agent.cameras[0].pipeline.stats.processed > before + 5, what="previous model running"
        )
    finally:
        agent.stop()
