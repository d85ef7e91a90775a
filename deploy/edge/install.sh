#!/usr/bin/env bash
# Install the edgesight edge agent on Raspberry Pi OS / Debian (aarch64 or x86_64) as a systemd service.
#
#   sudo deploy/edge/install.sh                 # from a source checkout
#   sudo deploy/edge/install.sh --wheel edgesight-0.1.0-py3-none-any.whl
#   sudo PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels deploy/edge/install.sh --wheel …   # offline
#
# Every Python dependency of the `edge` extra (onnxruntime, opencv-python-headless, numpy, paho-mqtt,
# pydantic, pyyaml) ships manylinux aarch64 wheels, so nothing is compiled on the device.
set -euo pipefail

PREFIX=/opt/edgesight
CONFIG_DIR=/etc/edgesight
STATE_DIR=/var/lib/edgesight
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WHEEL=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheel) WHEEL="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "run as root (sudo)" >&2
    exit 1
fi

echo "==> system packages"
export DEBIAN_FRONTEND=noninteractive
# python3-venv for the isolated environment; libgl/glib are not needed with opencv-python-headless.
PACKAGES=(python3 python3-venv python3-pip ca-certificates)
missing=()
for pkg in "${PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "    ${PACKAGES[*]}: already installed"
fi

echo "==> user and directories"
id -u edgesight >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin edgesight
usermod -a -G video edgesight
install -d -m 0755 "$PREFIX" "$CONFIG_DIR"
install -d -m 0750 -o edgesight -g edgesight "$STATE_DIR" "$STATE_DIR/models"

echo "==> Python environment in $PREFIX/venv"
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade pip
if [[ -n "$WHEEL" ]]; then
    "$PREFIX/venv/bin/pip" install -q "${WHEEL}[edge]"
else
    "$PREFIX/venv/bin/pip" install -q "${SRC}[edge]"
fi

echo "==> reference model and docs"
MODEL_SRC="$("$PREFIX/venv/bin/python" -c 'import firmware_models, pathlib; print(pathlib.Path(firmware_models.__file__).parent / "reference")')"
if [[ -d "$MODEL_SRC/fomo-street" ]]; then
    cp -r "$MODEL_SRC/fomo-street" "$STATE_DIR/models/"
    chown -R edgesight:edgesight "$STATE_DIR/models"
fi
if [[ -d "$SRC/docs/edge" ]]; then
    install -d "$PREFIX/docs"
    cp -r "$SRC/docs/edge" "$PREFIX/docs/"
fi

echo "==> configuration"
if [[ ! -f "$CONFIG_DIR/agent.yaml" ]]; then
    sed -e "s#path: firmware_models/reference/fomo-street#path: $STATE_DIR/models/fomo-street#" \
        -e "s#path: /var/lib/edgesight/outbox.db#path: $STATE_DIR/outbox.db#" \
        "$SRC/deploy/edge/example.yaml" > "$CONFIG_DIR/agent.yaml"
    chmod 0640 "$CONFIG_DIR/agent.yaml"
    chgrp edgesight "$CONFIG_DIR/agent.yaml"
    echo "    wrote $CONFIG_DIR/agent.yaml — edit device.id, mqtt.url and the camera source"
else
    echo "    keeping existing $CONFIG_DIR/agent.yaml"
fi
"$PREFIX/venv/bin/edge-agent" run --config "$CONFIG_DIR/agent.yaml" --validate-config

echo "==> systemd unit"
install -m 0644 "$SRC/deploy/edge/edge-agent.service" /etc/systemd/system/edge-agent.service
if [[ ! -d /run/systemd/system ]]; then
    # Not booted with systemd (an image being built in a chroot, a container): enable for the next boot.
    echo "    systemd is not running here: enabling the unit offline, for the next boot"
    export SYSTEMD_OFFLINE=1
fi
systemctl daemon-reload
systemctl enable edge-agent.service
echo
echo "Installed. Next:"
echo "  sudoedit $CONFIG_DIR/agent.yaml"
echo "  sudo -u edgesight $PREFIX/venv/bin/edge-agent check --config $CONFIG_DIR/agent.yaml"
echo "  sudo systemctl start edge-agent && journalctl -u edge-agent -f"
