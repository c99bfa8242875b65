#!/usr/bin/env bash
# Start utargetd in the foreground on the default config (etc/default-saveconfig.json):
# one 64 MiB ramdisk LUN on iqn.2003-01.org.linux-iscsi.localhost:sn.default, portal
# 127.0.0.1:3260, demo mode (any initiator, no authentication, writable).
# Usage: scripts/run-default.sh [path/to/utargetd]   (make run passes build/utargetd)
# Environment: UTARGET_PORT (default 3260), UTARGET_STATE_DIR (default
# ${XDG_RUNTIME_DIR:-/tmp}/utarget-run-$USER).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
daemon=${1:-$here/build/utargetd}
port=${UTARGET_PORT:-3260}
iqn=iqn.2003-01.org.linux-iscsi.localhost:sn.default
user=${USER:-$(id -un)}
state=${UTARGET_STATE_DIR:-${XDG_RUNTIME_DIR:-/tmp}/utarget-run-$user}
template=$here/etc/default-saveconfig.json

case "$port" in
  ''|*[!0-9]*) echo "run-default: UTARGET_PORT must be a number, got '$port'" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "run-default: UTARGET_PORT out of range: $port" >&2; exit 2
fi
if [ ! -x "$daemon" ]; then
  echo "run-default: $daemon is not built (run: make)" >&2; exit 1
fi

mkdir -p "$state"
chmod 700 "$state"
cfg=$state/saveconfig.json
sock=$state/utargetd.sock
# The default config is rewritten on every run: `make run` always starts from it.
sed "s/\"port\": 3260/\"port\": $port/" "$template" > "$cfg.tmp"
chmod 600 "$cfg.tmp"
mv "$cfg.tmp" "$cfg"

cat <<EOF
utarget: starting $daemon (foreground; Ctrl-C stops it)
  config         $cfg
  control socket $sock
  target         $iqn
  LUN 0          64 MiB ramdisk "ramdisk0", any initiator may log in (demo mode, no auth)

Configure it live with the targetcli-compatible shell:
  $here/build/utargetcli -s $sock          # or one-shot: ... -s $sock ls

Connect from another terminal:
  iscsi-ls -s iscsi://127.0.0.1:$port
  iscsi-inq iscsi://127.0.0.1:$port/$iqn/0
  qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' iscsi://127.0.0.1:$port/$iqn/0
  iscsiadm -m discovery -t st -p 127.0.0.1:$port        # Linux open-iscsi, then:
  iscsiadm -m node -T $iqn -p 127.0.0.1:$port --login

EOF
exec "$daemon" -c "$cfg" -s "$sock" -f
