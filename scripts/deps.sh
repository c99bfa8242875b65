#!/usr/bin/env bash
# Install the Debian packages utarget needs to build and test, only those missing.
# Usage: scripts/deps.sh [build|test|bench]   (default: test = build + test peers)
set -eu
what=${1:-test}
build_pkgs="make gcc clang pkg-config libisal-dev libssl-dev libjansson-dev liburing-dev libreadline-dev libcmocka-dev librbd-dev librados-dev"
test_pkgs="python3 python3-pytest libiscsi-bin libiscsi-dev qemu-utils qemu-block-extra libclang-rt-14-dev util-linux tmux e2fsprogs ceph-mon ceph-osd ceph-common
 binutils man-db groff-base systemd dpkg-dev debhelper dh-python fakeroot lintian
 qemu-system-x86 linux-image-amd64 busybox-static open-iscsi multipath-tools dmsetup udev file prometheus"
# (ceph-*: scripts/ceph-cluster.sh for tests/integration/test_rbd.py; the second line: tests/integration/test_install.py -- nm/readelf, man -l,
# systemd-analyze verify, dpkg-buildpackage and lintian; the third: the qemu guest of
# tests/integration/test_kernel_initiator.py -- a kernel with its modules, busybox, iscsistart,
# multipath-tools, systemd-udevd for multipathd, docs/testing-guest.md; prometheus: promtool check metrics in
# tests/integration/test_stats.py)
bench_pkgs="tgt istgt valgrind"
case "$what" in
  build) pkgs="$build_pkgs" ;;
  test)  pkgs="$build_pkgs $test_pkgs" ;;
  bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cannot() {
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: $1; install them with:" >&2
  echo "  apt-get update && apt-get install --no-install-recommends$missing   (as root)" >&2
  exit 1
}
# root runs apt-get itself; anyone else needs sudo that works without a prompt
# (make must not hang on a password question)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || cannot "not root and sudo is not installed"
  sudo -n true 2>/dev/null || cannot "not root and sudo needs a password"
  SUDO="sudo -n"
fi
command -v apt-get >/dev/null 2>&1 || cannot "apt-get not found (not a Debian system?)"
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
  $SUDO apt-get update >/dev/null || cannot "apt-get update failed"
  $SUDO apt-get install -y --no-install-recommends $missing || cannot "apt-get install failed"
fi
