#!/usr/bin/env python3
"""RBD rows of the benchmark: utargetd's user:rbd LUN over iSCSI next to `rbd bench` on
the same image, on a throwaway single-node cluster (scripts/ceph-cluster.sh: one mon, one
memstore OSD on 127.0.0.1). `rbd bench` is librbd with no gateway in between: the ceiling
for what a gateway on librbd can deliver here.

    bench/rbd_bench.py [--utargetd build/utargetd] [--seconds 5] [--runs 5]
                       [--loads w4k32,r4k1] [--gateway-option ms_async_op_threads=1]

--loads picks rows by key (default: all); --gateway-option (repeatable) sets a librbd /
librados option for the gateway only, in a [client] section of a copy of the cluster's
ceph.conf (an A/B of a tuning against the same rbd bench ceiling).

Prints a markdown table of medians (IOPS and MiB/s per load, utargetd / rbd bench, and at
QD1 the latency the gateway adds). The iSCSI side is bench/ddperf (built if missing).
Python 3 stdlib only; needs ceph-mon/ceph-osd/ceph-common (scripts/deps.sh test)."""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DDPERF = os.path.join(REPO, "build", "bench", "ddperf")
IQN = "iqn.2003-01.org.linux-iscsi.utarget:rbdbench"
MiB = 1 << 20
IMAGE_MB = 512

# key, label, io-type, size, queue depth, pattern, total bytes for rbd bench (count-based)
# The issue 16 rows: 4 KiB random read / write at QD1 and QD32, 1 MiB sequential.
LOADS = [
    ("r4k1", "4 KiB rand read QD1", "read", 4096, 1, "rand", 8 * MiB),
    ("w4k1", "4 KiB rand write QD1", "write", 4096, 1, "rand", 8 * MiB),
    ("r4k32", "4 KiB rand read QD32", "read", 4096, 32, "rand", 96 * MiB),
    ("w4k32", "4 KiB rand write QD32", "write", 4096, 32, "rand", 96 * MiB),
    ("r1m", "1 MiB seq read QD8", "read", MiB, 8, "seq", 384 * MiB),
    ("w1m", "1 MiB seq write QD8", "write", MiB, 8, "seq", 384 * MiB),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def rbd_bench(conf, image, io_type, size, qd, pattern, total):
    # --rbd_cache=false: what the gateway runs with (an acknowledged write is on
    # the OSDs, docs/rbd.md). With librbd's default cache, rbd bench's writes are
    # acknowledged from memory (12190 vs 4197 IOPS at 4 KiB QD1 measured here):
    # not the same promise, not a fair ceiling.
    res = run(["rbd", "-c", conf, "--rbd_cache=false", "bench", "--io-type", io_type, "--io-size", str(size),
               "--io-threads", str(qd), "--io-total", str(total), "--io-pattern", pattern,
               "rbd/" + image])
    m = re.search(r"elapsed:\s*([\d.]+)\s+ops:\s*(\d+)\s+ops/sec:\s*([\d.]+)", res.stdout)
    if not m:
        raise RuntimeError("rbd bench: %s %s" % (res.stdout[-500:], res.stderr[-500:]))
    return float(m.group(3))


def iscsi_bench(port, io_type, size, qd, pattern, seconds):
    """bench/ddperf (the benchmark's own initiator, one connection, no digests):
    time-based, random offsets aligned to the I/O size for "rand"."""
    cmd = [DDPERF, "-b", str(size), "-q", str(qd), "-t", str(seconds),
           "-w" if io_type == "write" else "-r"]
    if pattern == "rand":
        cmd.append("-R")
    res = run(cmd + ["127.0.0.1:%d" % port, IQN], timeout=seconds + 120)
    m = re.search(r"iops=([\d.]+)", res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError("ddperf: %s %s" % (res.stdout[-500:], res.stderr[-500:]))
    return float(m.group(1))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def start_daemon(utargetd, tmp, conf, image, port, n):
    cfg = {"fabric_modules": [], "storage_objects": [{
        "name": "rbd0", "plugin": "user", "config": "rbd/rbd/%s;conf=%s" % (image, conf),
        "attributes": {}}],
        "targets": [{"fabric": "iscsi", "wwn": IQN, "tpgs": [{
            "tag": 1, "enable": True,
            "attributes": {"authentication": 0, "generate_node_acls": 1,
                           "demo_mode_write_protect": 0, "cache_dynamic_acls": 1},
            "parameters": {}, "portals": [{"ip_address": "127.0.0.1", "port": port}],
            "luns": [{"index": 0, "storage_object": "/backstores/user/rbd0"}],
            "node_acls": []}]}]}
    cpath = os.path.join(tmp, "cfg.json")
    with open(cpath, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(tmp, "utargetd.%d.log" % n), "w")
    proc = subprocess.Popen([utargetd, "-c", cpath, "-s", os.path.join(tmp, "sock"), "-f"],
                            stdout=log, stderr=log)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("utargetd did not start (log in %s)" % log.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utargetd", default=os.path.join(REPO, "build", "utargetd"))
    ap.add_argument("--seconds", type=int, default=5, help="per ddperf run")
    ap.add_argument("--runs", type=int, default=5, help="rounds; medians are printed")
    ap.add_argument("--loads", default="", help="comma-separated keys: %s"
                    % ",".join(k[0] for k in LOADS))
    ap.add_argument("--gateway-option", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    loads = [k for k in LOADS if not args.loads or k[0] in args.loads.split(",")]
    if not loads:
        sys.exit("--loads: none of %s" % args.loads)
    if not os.access(DDPERF, os.X_OK):
        run(["make", "--no-print-directory", "-C", REPO, "build/bench/ddperf"])
    tmp = tempfile.mkdtemp(prefix="utarget-rbdbench.")
    cdir = os.path.join(tmp, "ceph")
    script = os.path.join(REPO, "scripts", "ceph-cluster.sh")
    res = run([script, "start", cdir], timeout=180)
    if res.returncode != 0:
        sys.exit("cannot start a Ceph cluster: %s" % res.stderr)
    conf = os.path.join(cdir, "ceph.conf")
    gw_conf = conf
    if args.gateway_option:
        gw_conf = os.path.join(tmp, "gateway.conf")
        with open(conf) as f, open(gw_conf, "w") as out:
            out.write(f.read() + "\n[client]\n")
            for kv in args.gateway_option:
                k, _, v = kv.partition("=")
                out.write("%s = %s\n" % (k.strip(), v.strip()))
    proc = None
    try:
        image = "bench"
        run(["rbd", "-c", conf, "create", "--size", "%dM" % IMAGE_MB, "rbd/" + image])
        # fill the image once so reads hit written objects on both sides
        rbd_bench(conf, image, "write", 4 * MiB, 4, "seq", IMAGE_MB * MiB)
        ref = {k[0]: [] for k in loads}
        got = {k[0]: [] for k in loads}
        # rbd bench is count-based: one calibration pass (not counted) sizes each
        # load's --io-total so that its runs last about as long as ddperf's, so
        # both sides see the same stretch of this shared machine's noise.
        totals = {}
        for key, _, io_type, size, qd, pattern, total in loads:
            iops = rbd_bench(conf, image, io_type, size, qd, pattern, total)
            totals[key] = max(total, int(iops * args.seconds) * size)
        port = free_port()
        # Rounds alternate librbd-direct and the gateway, so drift on this shared
        # machine hits both sides alike. The gateway is stopped while rbd bench runs
        # (no exclusive-lock hand-over inside a measurement).
        for n in range(args.runs):
            for key, _, io_type, size, qd, pattern, _ in loads:
                ref[key].append(rbd_bench(conf, image, io_type, size, qd, pattern,
                                          totals[key]))
            proc = start_daemon(args.utargetd, tmp, gw_conf, image, port, n)
            for key, _, io_type, size, qd, pattern, _ in loads:
                got[key].append(iscsi_bench(port, io_type, size, qd, pattern, args.seconds))
            proc.terminate()
            proc.wait(30)
            proc = None
        print("medians of %d rounds; utargetd over iSCSI: bench/ddperf, %d s per run"
              % (args.runs, args.seconds))
        print("| load | rbd bench (librbd) IOPS, median (min–max) | utargetd user:rbd over iSCSI "
              "IOPS, median (min–max) | utargetd MiB/s | utargetd / rbd bench | added latency (QD1) |")
        print("|---|---:|---:|---:|---:|---:|")
        if args.gateway_option:
            print("gateway options: %s" % " ".join(args.gateway_option))
        for key, label, _, size, qd, _, _ in loads:
            r, g = median(ref[key]), median(got[key])
            lat = "%.0f µs" % (1e6 / g - 1e6 / r) if qd == 1 else ""
            print("| %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.1f | %.2f | %s |" % (
                label, r, min(ref[key]), max(ref[key]), g, min(got[key]), max(got[key]),
                g * size / MiB, g / r, lat))
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        run([script, "stop", cdir], timeout=60)
        print("(logs in %s)" % tmp, file=sys.stderr)

if __name__ == "__main__":
    main()
