"""``python -m cloud_hub.mqtt_health``: exit 0 when the broker in EDGESIGHT_MQTT_URL accepts these
credentials (and TLS, with EDGESIGHT_MQTT_CA_FILE), else 1 with the reason — a compose healthcheck for
services that hold an MQTT session (rollout), run inside their container with their own settings."""

from __future__ import annotations

import os
import sys

from cloud_hub.camera.publish import PublishError, connect_check


def main() -> int:
    url = os.environ.get("EDGESIGHT_MQTT_URL", "mqtt://127.0.0.1:1883")
    try:
        connect_check(url, ca_file=os.environ.get("EDGESIGHT_MQTT_CA_FILE"))
    except PublishError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
