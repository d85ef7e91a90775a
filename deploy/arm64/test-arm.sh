#!/usr/bin/env bash
# make test-arm: the agent's tests on aarch64 (Debian bookworm arm64 under QEMU user emulation), once as
# a Raspberry Pi 4 core (Cortex-A72: NEON, no dot product) and once as a Pi 5 core (Cortex-A76: dot
# product). Proves correctness on ARM, never speed (emulation is 35-250x slower than a board).
#
#   sudo deploy/arm64/test-arm.sh          # as root: binfmt_misc, chroot, mounts
#
# The root file system is cached in $EDGESIGHT_ARM_CACHE (default /var/cache/edgesight) under a name
# made from the hash of the pins and the build script: the first run builds it (rootfs.sh, minutes),
# later ones reuse it. Each run builds the project's wheel, installs it with the `edge` extra into the
# rootfs's venv (from the cached aarch64 wheels, no network), and runs every test module marked
# `arm64` (pytest -m arm64). MQTT tests reach real Mosquitto brokers on the host through
# tests/support/broker_control.py (the chroot shares the host's network).
#
# EDGESIGHT_SKIP_ARM=1 skips it on a developer's machine; CI (CI=true) refuses to skip.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/deploy/arm64"
PY="${PY:-$REPO/.venv/bin/python}"
CPUS=(${EDGESIGHT_ARM_CPUS:-cortex-a72 cortex-a76})

if [ "${EDGESIGHT_SKIP_ARM:-0}" = 1 ]; then
  if [ "${CI:-}" = true ]; then
    echo "EDGESIGHT_SKIP_ARM=1 is for developers' machines: CI runs the arm64 suite" >&2
    exit 1
  fi
  echo "arm64 suite SKIPPED (EDGESIGHT_SKIP_ARM=1); CI runs it"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "make test-arm needs root (binfmt_misc, chroot, mount): sudo make test-arm, or EDGESIGHT_SKIP_ARM=1" >&2
  exit 1
fi
started=$SECONDS

bash "$HERE/binfmt.sh"
KEY=$(cat "$HERE/requirements.txt" "$HERE/rootfs.sh" | sha256sum | cut -c1-16)
CACHE="${EDGESIGHT_ARM_CACHE:-/var/cache/edgesight}"
ROOT="$CACHE/arm64-$KEY"
mkdir -p "$CACHE"
exec 9>"$CACHE/arm64.lock"
flock 9  # one test-arm at a time per cache
if [ ! -x "$ROOT/opt/venv/bin/python" ]; then
  echo "==> no cached arm64 rootfs for these pins ($ROOT): building it"
  PYTHON="$PY" bash "$HERE/rootfs.sh" "$ROOT"
  for old in "$CACHE"/arm64-*; do  # rootfs of older pins or scripts: a few hundred MB each
    [ "$old" = "$ROOT" ] || [ ! -d "$old" ] || rm -rf "$old"
  done
else
  echo "==> cached arm64 rootfs $ROOT"
fi

WORK=$(mktemp -d /tmp/test-arm.XXXXXX)
CONTROL_PID=""
cleanup() {
  [ -z "$CONTROL_PID" ] || kill "$CONTROL_PID" 2>/dev/null || true
  [ -z "$CONTROL_PID" ] || wait "$CONTROL_PID" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The host's CA bundle and resolver, fresh each run (the chroot shares the host's network).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

echo "==> the project's wheel and tests into the rootfs"
# From a clean copy: setuptools' build/ in a checkout keeps files of deleted modules.
mkdir "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
  --exclude=__pycache__ --exclude=./var --exclude=.pytest_cache --exclude=.ruff_cache -cf - . \
  | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" >"$WORK/wheel.log" 2>&1 \
  || { cat "$WORK/wheel.log" >&2; exit 1; }
SRC=/opt/edgesight-src  # tests, deploy files, docs: everything but the code, which comes from the wheel
rm -rf "$ROOT$SRC" "$ROOT/opt/dist"
mkdir -p "$ROOT$SRC"
cp -r "$WORK/src/tests" "$WORK/src/deploy" "$WORK/src/pyproject.toml" "$ROOT$SRC/"
mkdir -p "$ROOT$SRC/docs" && cp -r "$WORK/src/docs/edge" "$ROOT$SRC/docs/"
cp -r "$WORK/dist" "$ROOT/opt/dist"
WHEEL=$(cd "$ROOT/opt/dist" && ls edgesight-*.whl)

# The test modules that make sense on a camera carry `pytestmark = pytest.mark.arm64`.
mapfile -t MODULES < <(cd "$REPO" && grep -rlE --include='test_*.py' 'pytest\.mark\.arm64' tests | sort)
[ ${#MODULES[@]} -gt 0 ] || { echo "no test module is marked arm64" >&2; exit 1; }

echo "==> x86 reference outputs for the cross-architecture golden test (and toolchain-made int8 models)"
rm -rf "$ROOT/opt/x86-reference"
(cd "$REPO" && "$PY" -m tests.arm64.cross_arch --out "$ROOT/opt/x86-reference" --toolchain)

echo "==> Mosquitto brokers on the host for the chroot's MQTT tests"
(cd "$REPO" && exec "$PY" -m tests.support.broker_control --port-file "$WORK/control") &
CONTROL_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/control" ] && break; sleep 0.1; done
[ -s "$WORK/control" ] || { echo "broker control did not start" >&2; exit 1; }

# Never bind /sys: onnxruntime reads the host's CPU lists there and crashes. /proc is enough.
mount -t proc proc "$ROOT/proc"
# env -i: the host's pip and CA variables point at files the chroot does not have and break TLS.
in_chroot() {
  env -i PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
    EDGESIGHT_BROKER_CONTROL="$(cat "$WORK/control")" EDGESIGHT_X86_REFERENCE=/opt/x86-reference "$@"
}
echo "==> pip install $WHEEL[edge] (cached aarch64 wheels, no network)"
in_chroot chroot "$ROOT" /bin/sh -ec "
  /opt/venv/bin/pip uninstall -q -y edgesight >/dev/null 2>&1 || true
  /opt/venv/bin/pip install -q --no-index --find-links /opt/wheelhouse '/opt/dist/$WHEEL[edge]'
"
# Two emulated CPUs at once (each emulation is one busy core; CI has two), then the i8mm golden run
# beside the install path. Each writes its own log, printed whole when it ends.
run_bg() {  # NAME COMMAND...: run in the background, output to $WORK/NAME.log
  local name="$1"; shift
  ( "$@" >"$WORK/$name.log" 2>&1; echo $? >"$WORK/$name.rc" ) &
}
pytest_on() {  # CPU FILES...
  local cpu="$1"; shift
  in_chroot QEMU_CPU="$cpu" EDGESIGHT_ARM_CPU="$cpu" timeout 1200 chroot "$ROOT" /bin/sh -c \
    "cd $SRC && exec python -m pytest -m arm64 -p no:cacheprovider --basetemp=/tmp/pytest-$cpu $PYTEST_ARGS $*"
}
report() {  # NAME TITLE: print the log; 0 when it passed
  echo "==> $2"
  # onnxruntime's cpuinfo cannot read /sys (not mounted, on purpose) and says so at every start.
  grep -vE '^(Error in cpuinfo|onnxruntime (cpuid_info )?warning:.*cpuinfo)' "$WORK/$1.log" || true
  [ "$(cat "$WORK/$1.rc" 2>/dev/null)" = 0 ] || { echo "==> FAILED: $2" >&2; return 1; }
}
PYTEST_ARGS="$*"
status=0
for cpu in "${CPUS[@]}"; do
  run_bg "pytest-$cpu" pytest_on "$cpu" "${MODULES[@]}"
done
wait_jobs() { for job in $(jobs -p); do [ "$job" = "$CONTROL_PID" ] || wait "$job" || true; done; }
wait_jobs
for cpu in "${CPUS[@]}"; do
  report "pytest-$cpu" "pytest -m arm64 on aarch64 as QEMU_CPU=$cpu: ${MODULES[*]}" || status=1
done
# QEMU's `max` core has i8mm (SMMLA), the int8 kernels of Armv8.6 boards: the golden test again there.
# SVE off: with it, onnxruntime's SVE float Softmax differs from x86 by 1 ulp (docs/edge/README.md).
run_bg golden-max pytest_on max,sve=off tests/arm64/test_cross_arch.py
# The install path a Pi owner follows: install.sh, the systemd unit verified, edge-agent check.
run_bg install in_chroot QEMU_CPU=cortex-a72 chroot "$ROOT" /bin/sh "$SRC/deploy/arm64/install-check.sh" \
  "/opt/dist/$WHEEL"
wait_jobs
report golden-max "cross-architecture golden test as QEMU_CPU=max,sve=off (i8mm)" || status=1
report install "deploy/edge/install.sh in the arm64 rootfs, systemd-analyze verify, edge-agent check" || status=1
echo "==> test-arm took $((SECONDS - started)) s"
exit "$status"
