#!/usr/bin/env bash
# Let this x86 kernel run aarch64 binaries through qemu-aarch64-static. Containers and boots without
# systemd lose this: binfmt_misc is not mounted and the handler is not registered, so redo it each time.
set -euo pipefail
if [ "$(uname -m)" = aarch64 ]; then
  exit 0  # a real ARM machine runs the rootfs natively
fi
if ! command -v qemu-aarch64-static >/dev/null || ! command -v update-binfmts >/dev/null \
   || ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing qemu-user-static, binfmt-support or debootstrap (sudo apt-get install qemu-user-static binfmt-support debootstrap)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support debootstrap >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
  # update-binfmts knows the handler only once qemu-user-static's postinst has imported it.
  update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-aarch64
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
  echo "could not register qemu-aarch64 with binfmt_misc" >&2; exit 1; }
# The F (fix binary) flag lets a chroot run aarch64 programs without a qemu binary inside it.
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
  echo "qemu-aarch64 is registered without the F flag: the chroot cannot find its interpreter" >&2; exit 1; }
