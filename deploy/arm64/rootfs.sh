#!/usr/bin/env bash
# Build the arm64 root file system the agent's tests run in (under QEMU user emulation on x86):
# Debian bookworm (the base of Raspberry Pi OS) with python3 and systemd, and /opt/venv holding the
# aarch64 wheels pinned in requirements.txt. Built into DEST.part and renamed, so a half-built tree
# is never taken for a cache hit.
#
#   deploy/arm64/rootfs.sh DEST        (as root; about 5 minutes; needs Debian's and PyPI's registries)
#
# The Debian mirror is the one this machine's apt uses (override: EDGESIGHT_DEBIAN_MIRROR).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEST="${1:?usage: rootfs.sh DEST}"
SUITE=bookworm
PYTHON="${PYTHON:-python3}"

host_mirror() {
  # The first Debian (not -security) URI in apt's deb822 sources, else in the one-line sources.list.
  local uri
  uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
  fi
  echo "$uri"
}
MIRROR="${EDGESIGHT_DEBIAN_MIRROR:-$(host_mirror)}"
[ -n "$MIRROR" ] || { echo "no Debian mirror in apt's sources: set EDGESIGHT_DEBIAN_MIRROR" >&2; exit 1; }

bash "$HERE/binfmt.sh"
PART="$DEST.part"
mkdir -p "$(dirname "$DEST")"
if [ -f "$PART/.debootstrapped" ]; then
  echo "==> reusing the debootstrapped $PART (an earlier build stopped after it)"
else
  rm -rf "$PART"
  echo "==> debootstrap arm64 $SUITE into $PART"
  started=$SECONDS
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,systemd,passwd \
    "$SUITE" "$PART" "$MIRROR" >"$PART.log" 2>&1 || { tail -30 "$PART.log" >&2; exit 1; }
  mv "$PART.log" "$PART/root/debootstrap.log"
  rm -rf "$PART/var/cache/apt/archives/"*.deb
  touch "$PART/.debootstrapped"
  echo "    debootstrap took $((SECONDS - started)) s"
fi

echo "==> aarch64 wheels (downloaded on the host, installed inside)"
started=$SECONDS
install -d "$PART/opt/wheelhouse"
# pip takes a foreign platform's tags literally: name every manylinux glibc level bookworm (2.36) runs.
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
"$PYTHON" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version 3.11 \
  --implementation cp --abi cp311 --abi abi3 --abi none -d "$PART/opt/wheelhouse" -r "$HERE/requirements.txt" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
cp "$HERE/requirements.txt" "$PART/opt/requirements.txt"
# The host's CA bundle and resolver: the chroot shares the host's network (and its TLS proxy, if any).
cp /etc/ssl/certs/ca-certificates.crt "$PART/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$PART/etc/resolv.conf" 2>/dev/null || true
# Never bind /sys: onnxruntime reads the host's CPU lists there and crashes. /proc is enough.
mount -t proc proc "$PART/proc"
trap 'umount "$PART/proc" 2>/dev/null || true' EXIT
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$PART" /bin/sh -ec '
  python3 -m venv /opt/venv
  /opt/venv/bin/pip install -q --no-index --find-links /opt/wheelhouse -r /opt/requirements.txt
  /opt/venv/bin/python -c "import platform, numpy, onnxruntime, cv2; print(platform.machine(), onnxruntime.__version__)"
'
echo "    wheels took $((SECONDS - started)) s"
umount "$PART/proc"
trap - EXIT
rm -f "$PART/.debootstrapped"
rm -rf "$DEST"
mv "$PART" "$DEST"
echo "==> arm64 rootfs ready: $DEST ($(du -sh "$DEST" | cut -f1))"
