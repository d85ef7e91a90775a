#!/usr/bin/env bash
# Install the system packages edgesight needs on Debian/Ubuntu when they are missing.
# Mosquitto: the tests start real brokers. Chromium + chromedriver: dashboard tests. PostgreSQL: the
# production database, tested beside SQLite. GStreamer's RTSP server, run by the system python3: the
# RTSP camera of the edge fault tests (tests/edge/rtsp.py). The Arm GCC toolchain, newlib and QEMU: the
# microcontroller firmware (firmware_models/mcu) is built and run on an emulated Cortex-M7.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
/usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst
Gst.init(None); assert all(map(Gst.ElementFactory.find, ["appsrc", "videoconvert", "jpegenc", "rtpjpegpay"]))' \
  >/dev/null 2>&1 || need+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+dp/hard/librdimon_nano.a ] || [ -f /usr/lib/arm-none-eabi/lib/thumb/v7e-m+dp/hard/librdimon_nano.a ] || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
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
