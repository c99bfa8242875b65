#!/usr/bin/env bash
# Install the Debian packages utarget needs to build and test, only those missing.
# Usage: scripts/deps.sh [build|test|bench]   (default: test = build + test peers)
set -eu
what=${1:-test}
build_pkgs="make gcc clang pkg-config libisal-dev libssl-dev libjansson-dev liburing-dev libreadline-dev libcmocka-dev"
test_pkgs="python3 python3-pytest libiscsi-bin libiscsi-dev qemu-utils qemu-block-extra libclang-rt-14-dev util-linux tmux e2fsprogs
 binutils man-db groff-base systemd dpkg-dev debhelper dh-python fakeroot lintian"
# (the second line: tests/integration/test_install.py -- nm/readelf, man -l,
# systemd-analyze verify, dpkg-buildpackage and lintian)
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
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends $missing
fi
