#!/usr/bin/env bash
# Install the system packages edgesight needs on Debian/Ubuntu when they are missing.
# Mosquitto: the tests start real brokers. Chromium + chromedriver: dashboard tests. PostgreSQL: the
# production database, tested beside SQLite.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ "${EDGESIGHT_NEED_POSTGRES:-0}" = 1 ] && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} — install them (sudo apt-get install ${need[*]}) and retry" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
