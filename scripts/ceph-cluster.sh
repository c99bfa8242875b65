#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for the RBD tests: one ceph-mon and one
# memstore ceph-osd, cephx on, bound to 127.0.0.1 on free ports, everything
# (conf, keys, data, logs, sockets) under DIR.
#
#   scripts/ceph-cluster.sh start DIR   -> DIR/ceph.conf, DIR/keyring (client.admin),
#                                          pool "rbd" ready; prints "CEPH_CONF=DIR/ceph.conf"
#   scripts/ceph-cluster.sh stop DIR    -> kills the daemons, removes DIR
#   scripts/ceph-cluster.sh stop-osd DIR / start-osd DIR  (fault tests)
#
# Exits non-zero with the reason when the cluster cannot start (packages
# missing, mon or osd not up in time): the tests then FAIL, never skip.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|stop-osd|start-osd DIR" >&2; exit 2; }

die() { echo "ceph-cluster: $*" >&2; [ -f "$dir/log/mon.a.log" ] && tail -n 20 "$dir/log/mon.a.log" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# a private range of 10 ports for the OSD's messengers (public, cluster,
# heartbeats), below the ephemeral range so free_port() does not hand them out
osd_range() {
	python3 - <<'EOF'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 30000, 10)
    ok = True
    for p in range(base, base + 10):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(base, base + 9)
        break
EOF
}

ceph_() { timeout 30 ceph -c "$dir/ceph.conf" "$@"; }

start_osd() {
	ceph-osd -c "$dir/ceph.conf" -i 0 2>>"$dir/log/osd.start.log" || die "ceph-osd did not start"
	for _ in $(seq 1 300); do
		if ceph_ osd dump 2>/dev/null | grep -q '^osd.0 up'; then
			return 0
		fi
		sleep 0.1
	done
	die "osd.0 not up after 30 s"
}

stop_pid() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f" 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$f"
}

case "$cmd" in
start)
	for b in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd; do
		command -v "$b" >/dev/null || die "$b not installed (scripts/deps.sh test installs ceph-mon ceph-osd ceph-common)"
	done
	mkdir -p "$dir"/{mon,osd,run,log}
	dir=$(cd "$dir" && pwd)
	mon_port=$(free_port)
	read -r pmin pmax < <(osd_range)
	[ -n "$pmin" ] || die "no free port range for the OSD"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat > "$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $pmin
ms bind port max = $pmax
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $dir/keyring
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
paxos propose interval = 0.05
mon mgr mkfs grace = 86400
mon data avail warn = 1
mon data avail crit = 0
mon warn on pool no redundancy = false
osd client watch timeout = 5
osd objectstore = memstore
# a SIGTERMed OSD saves its memstore (fast shutdown skips the umount that
# does it), so stop-osd / start-osd keep the data (fault tests)
osd fast shutdown = false
memstore page set = true
memstore page size = 4096
memstore device bytes = 4294967296
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
keyring = $dir/osd/keyring
[client]
admin socket = $dir/run/\$name.\$pid.asok
log file = $dir/log/\$name.\$pid.log
EOF
	ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" >/dev/null
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
	ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" \
		|| die "ceph-mon --mkfs failed"
	ceph-mon -c "$dir/ceph.conf" -i a || die "ceph-mon did not start"
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	osd_key=$(ceph-authtool --gen-print-key)
	echo "{\"cephx_secret\": \"$osd_key\"}" | ceph_ osd new "$osd_uuid" -i - >/dev/null \
		|| die "ceph osd new failed (mon not answering?)"
	ceph-authtool --create-keyring "$dir/osd/keyring" --name osd.0 --add-key "$osd_key" >/dev/null
	ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 \
		|| die "ceph-osd --mkfs failed"
	start_osd
	ceph_ osd pool create rbd 8 >/dev/null 2>&1 || die "pool create failed"
	timeout 30 rbd -c "$dir/ceph.conf" pool init rbd || die "rbd pool init failed"
	echo "CEPH_CONF=$dir/ceph.conf"
	;;
stop-osd)
	stop_pid "$dir/run/osd.0.pid"
	;;
start-osd)
	start_osd
	;;
stop)
	# the OSD before the mon, else the OSD waits for the mon on its way out
	stop_pid "$dir/run/osd.0.pid"
	stop_pid "$dir/run/mon.a.pid"
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop|stop-osd|start-osd DIR" >&2
	exit 2
	;;
esac
