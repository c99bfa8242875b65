#!/bin/bash
# libiscsi's conformance suite against utargetd (issue 7).
#
#   scripts/conformance.sh [UTARGETD] [TEST-SPEC]
#
# Starts a daemon (default build/san/utargetd when it exists, else
# build/utargetd; or $UTARGETD) on a free port with a writable thin fileio
# LUN in a temporary directory, demo mode and two TPGs (two target ports)
# with portals 127.0.0.1 and 127.0.0.2 for the MultipathIO tests, runs
# `iscsi-test-cu -d` over TEST-SPEC (default ALL) with the multipath URL,
# and prints Ran / Passed / Failed / Skipped. CUnit counts a skipped test as
# passed; here a test whose output contains "[SKIPPED]" counts as skipped.
# Every failed or skipped test is named. Exits non-zero on any failure (or
# when the daemon dies, or a sanitizer reports anything).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
daemon=${1:-${UTARGETD:-}}
spec=${2:-ALL}
if [ -z "$daemon" ]; then
	if [ -x "$here/build/san/utargetd" ]; then
		daemon=$here/build/san/utargetd
	else
		daemon=$here/build/utargetd
	fi
fi
if [ ! -x "$daemon" ]; then
	echo "conformance: $daemon not built (make, or make sanitize)" >&2
	exit 2
fi
if ! command -v iscsi-test-cu >/dev/null; then
	echo "conformance: iscsi-test-cu missing (Debian libiscsi-bin)" >&2
	exit 2
fi

# BACKSTORE=rbd: the LUN is an RBD image on a throwaway Ceph cluster
# (scripts/ceph-cluster.sh) served through the user:rbd backstore.
# GATEWAYS=2 (with BACKSTORE=rbd, issue 18): two daemons, one TPG each
# (gateway A: tpg 1 on 127.0.0.1, gateway B: tpg 2 on 127.0.0.2), serve
# the image with pr=cluster, so every persistent reservation goes through
# the RADOS object both share; PRIMARY=2 makes B the suite's first URL
# (where its single-path tests, the PR ones among them, run).
backstore=${BACKSTORE:-fileio}
gateways=${GATEWAYS:-1}
pid2=
tmp=$(mktemp -d /tmp/utarget-conformance.XXXXXX)
pid=
cleanup() {
	for p in $pid $pid2; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ "$backstore" = rbd ] && "$here/scripts/ceph-cluster.sh" stop "$tmp/ceph" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iqn=iqn.2003-01.org.linux-iscsi.utarget:conformance
so='{"name": "conf0", "plugin": "fileio", "dev": "'$tmp'/conf0.img",
   "size": 134217728, "write_back": true, "sparse": true,
   "attributes": {"emulate_tpu": 1, "emulate_tpws": 1}}'
so_path=/backstores/fileio/conf0
if [ "$backstore" = rbd ]; then
	if ! "$here/scripts/ceph-cluster.sh" start "$tmp/ceph" >"$tmp/ceph.log" 2>&1; then
		echo "conformance: cannot start a Ceph cluster:" >&2
		cat "$tmp/ceph.log" >&2
		exit 1
	fi
	rbd -c "$tmp/ceph/ceph.conf" create --size 128M rbd/conf0 || exit 1
	so='{"name": "conf0", "plugin": "user", "size": 134217728,
   "config": "rbd/rbd/conf0;conf='$tmp'/ceph/ceph.conf'$([ "$gateways" = 2 ] && echo ";pr=cluster")'", "attributes": {}}'
	so_path=/backstores/user/conf0
fi
# Two TPGs (two target ports, relative port ids 1 and 2, issue 17), each
# with the LUN and its own portal: the MultipathIO tests run across ports.
tpg() {
	cat <<EOF
{"tag": $1, "enable": true,
     "attributes": {"authentication": 0, "generate_node_acls": 1,
                    "demo_mode_write_protect": 0},
     "parameters": {},
     "luns": [{"index": 0, "storage_object": "$so_path"}],
     "portals": [{"ip_address": "$2", "port": $port}],
     "node_acls": []}
EOF
}
cfg() {
	cat <<EOF
{"fabric_modules": [],
 "storage_objects": [$so],
 "targets": [{"fabric": "iscsi", "wwn": "$iqn",
   "tpgs": [$1]}]}
EOF
}
if [ "$gateways" = 2 ]; then
	[ "$backstore" = rbd ] || { echo "conformance: GATEWAYS=2 needs BACKSTORE=rbd" >&2; exit 2; }
	cfg "$(tpg 1 127.0.0.1)" >"$tmp/cfg.json"
	cfg "$(tpg 2 127.0.0.2)" >"$tmp/cfg2.json"
else
	cfg "$(tpg 1 127.0.0.1), $(tpg 2 127.0.0.2)" >"$tmp/cfg.json"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$daemon" -c "$tmp/cfg.json" -s "$tmp/sock" -f >"$tmp/daemon.log" 2>&1 &
pid=$!
if [ "$gateways" = 2 ]; then
	"$daemon" -c "$tmp/cfg2.json" -s "$tmp/sock2" -f >"$tmp/daemon2.log" 2>&1 &
	pid2=$!
fi
for ip in 127.0.0.1 $([ "$gateways" = 2 ] && echo 127.0.0.2); do
	for _ in $(seq 100); do
		python3 -c "import socket,sys; socket.create_connection(('$ip', $port), 0.2)" 2>/dev/null && break
		sleep 0.1
	done
done

url1=iscsi://127.0.0.1:$port/$iqn/0
url2=iscsi://127.0.0.2:$port/$iqn/0
if [ "${PRIMARY:-1}" = 2 ]; then
	url1=iscsi://127.0.0.2:$port/$iqn/0
	url2=iscsi://127.0.0.1:$port/$iqn/0
fi
echo "conformance: $daemon ($backstore), iscsi-test-cu -d -t $spec $url1 $url2"
# stdout unbuffered, so each test's messages stay next to its name
stdbuf -o0 -e0 timeout ${CONFORMANCE_TIMEOUT:-300} iscsi-test-cu -d -t "$spec" "$url1" "$url2" \
	>"$tmp/suite.txt" 2>&1
suite_rc=$?

daemon_ok=1
for p in $pid $pid2; do
	if ! kill -0 "$p" 2>/dev/null; then
		echo "conformance: a daemon died during the run" >&2
		daemon_ok=0
	else
		kill "$p"
		wait "$p" 2>/dev/null
	fi
done
pid=
pid2=
for log in "$tmp/daemon.log" $([ "$gateways" = 2 ] && echo "$tmp/daemon2.log"); do
	if grep -qE "ERROR: (Address|Leak|Undefined)Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$log"; then
		echo "conformance: sanitizer report from the daemon ($log):" >&2
		grep -A20 -E "ERROR: |WARNING: ThreadSanitizer|runtime error:" "$log" | head -60 >&2
		daemon_ok=0
	fi
done

python3 - "$tmp/suite.txt" "$suite_rc" "$daemon_ok" <<'EOF'
import re, sys

text = open(sys.argv[1], errors="replace").read()
suite_rc, daemon_ok = int(sys.argv[2]), sys.argv[3] == "1"
token = re.compile(r"^Suite: (\S+)|^  Test: (.+?) \.\.\.|^Run Summary:", re.M)
marks = list(token.finditer(text))
results, suite = [], "?"
for i, m in enumerate(marks):
    if m.group(1):
        suite = m.group(1)
        continue
    if not m.group(2):
        break
    end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
    # The test's own output ends at CUnit's verdict: "passed" or "FAILED"
    # right after "..." or at the start of a line; what follows belongs
    # to the next test or to the suite's clean-up.
    v = re.search(r"(?:^|\n|\.\.\.)(passed|FAILED)", text[m.end() - 3:end])
    body = text[m.end():m.end() - 3 + v.start(1)] if v else text[m.end():end]
    name = "%s.%s" % (suite, m.group(2))
    if not v or v.group(1) == "FAILED":
        results.append((name, "failed", ""))
    elif "[SKIPPED]" in body:
        why = re.search(r"\[SKIPPED\]\s*([^\n]*)", body).group(1).strip()
        results.append((name, "skipped", why))
    else:
        results.append((name, "passed", ""))

count = lambda s: sum(1 for r in results if r[1] == s)
for name, state, why in results:
    if state != "passed":
        print("  %-8s %s%s" % (state.upper(), name, ("  (" + why + ")") if why else ""))
print("Ran %d  Passed %d  Failed %d  Skipped %d"
      % (len(results), count("passed"), count("failed"), count("skipped")))
# the plain closing line CI readers look for
print("conformance: %d passed, %d failed, %d skipped"
      % (count("passed"), count("failed"), count("skipped")))
bad = count("failed") > 0 or not results or not daemon_ok or suite_rc not in (0,)
sys.exit(1 if bad else 0)
EOF
rc=$?
if [ $rc -ne 0 ]; then
	echo "conformance: FAILED (suite output kept in $tmp.log)" >&2
	cp "$tmp/suite.txt" "$tmp.log" 2>/dev/null
	cat "$tmp/daemon.log" >>"$tmp.log" 2>/dev/null
	[ "$gateways" = 2 ] && cat "$tmp/daemon2.log" >>"$tmp.log" 2>/dev/null
fi
exit $rc
