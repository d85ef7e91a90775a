#!/bin/sh
# Inside the arm64 rootfs (make test-arm): the install path a Pi owner follows, from nothing.
#   install-check.sh WHEEL
# deploy/edge/install.sh --wheel (offline, from the cached aarch64 wheels), the systemd unit verified,
# then `edge-agent check` as the service's user with the config install.sh wrote.
set -eu
WHEEL="$1"
SRC=/opt/edgesight-src
rm -rf /opt/edgesight /etc/edgesight /etc/systemd/system/edge-agent.service  # a fresh install each run
PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheelhouse bash "$SRC/deploy/edge/install.sh" --wheel "$WHEEL"
if command -v systemd-analyze >/dev/null; then
  echo "==> systemd-analyze verify edge-agent.service"
  SYSTEMD_LOG_LEVEL=notice systemd-analyze verify /etc/systemd/system/edge-agent.service
  echo "    unit ok"
else
  echo "==> systemd-analyze not available here: unit not verified"
fi
echo "==> edge-agent check as user edgesight"
cd /var/lib/edgesight
runuser -u edgesight -- /opt/edgesight/venv/bin/edge-agent check --config /etc/edgesight/agent.yaml
