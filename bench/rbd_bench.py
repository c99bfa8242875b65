#!/usr/bin/env python3
"""RBD rows of the benchmark: utargetd's user:rbd LUN over iSCSI next to `rbd bench` on
the same image, on a throwaway single-node cluster (scripts/ceph-cluster.sh: one mon, one
memstore OSD on 127.0.0.1). `rbd bench` is librbd with no gateway in between: the ceiling
for what a gateway on librbd can deliver here.

    bench/rbd_bench.py [--utargetd build/utargetd] [--seconds 5]

Prints a markdown table (IOPS and MiB/s per load, and utargetd / rbd bench). Python 3
stdlib only; needs root-free ports only, ceph-mon/ceph-osd/ceph-common, qemu-utils and
libiscsi-bin (scripts/deps.sh test)."""

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
IQN = "iqn.2003-01.org.linux-iscsi.utarget:rbdbench"
MiB = 1 << 20
IMAGE_MB = 512

# key, label, io-type, size, queue depth, pattern, total bytes for count-based runs
LOADS = [
    ("w4k", "4 KiB seq write QD16", "write", 4096, 16, "seq", 64 * MiB),
    ("r4k", "4 KiB rand read QD16", "read", 4096, 16, "rand", 64 * MiB),
    ("w1m", "1 MiB seq write QD8", "write", MiB, 8, "seq", 256 * MiB),
    ("r1m", "1 MiB seq read QD8", "read", MiB, 8, "seq", 256 * MiB),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def rbd_bench(conf, image, io_type, size, qd, pattern, total):
    res = run(["rbd", "-c", conf, "bench", "--io-type", io_type, "--io-size", str(size),
               "--io-threads", str(qd), "--io-total", str(total), "--io-pattern", pattern,
               "rbd/" + image])
    m = re.search(r"elapsed:\s*([\d.]+)\s+ops:\s*(\d+)\s+ops/sec:\s*([\d.]+)", res.stdout)
    if not m:
        raise RuntimeError("rbd bench: %s %s" % (res.stdout[-500:], res.stderr[-500:]))
    return float(m.group(3))


def iscsi_bench(port, io_type, size, qd, pattern, total, seconds):
    url = "iscsi://127.0.0.1:%d/%s/0" % (port, IQN)
    if io_type == "read" and pattern == "rand":
        res = run(["iscsi-perf", "-i", "iqn.2024-01.org.utarget.bench:perf", "-m", str(qd),
                   "-b", str(size // 512), "-t", str(seconds), "-r", url],
                  timeout=seconds + 60)
        m = re.findall(r"iops average (\d+)", res.stdout + res.stderr)
        if not m:
            raise RuntimeError("iscsi-perf: %s %s" % (res.stdout[-500:], res.stderr[-500:]))
        return float(m[-1])
    count = total // size
    opts = ("driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=0,"
            "header-digest=none" % (port, IQN))
    cmd = ["qemu-img", "bench", "-t", "none", "-c", str(count), "-d", str(qd),
           "-s", str(size), "-S", str(size)]
    if io_type == "write":
        cmd.append("-w")
    res = run(cmd + ["--image-opts", opts])
    m = re.search(r"Run completed in ([\d.]+) seconds", res.stdout)
    if not m:
        raise RuntimeError("qemu-img bench: %s %s" % (res.stdout[-500:], res.stderr[-500:]))
    return count / float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utargetd", default=os.path.join(REPO, "build", "utargetd"))
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="utarget-rbdbench.")
    cdir = os.path.join(tmp, "ceph")
    script = os.path.join(REPO, "scripts", "ceph-cluster.sh")
    res = run([script, "start", cdir], timeout=180)
    if res.returncode != 0:
        sys.exit("cannot start a Ceph cluster: %s" % res.stderr)
    conf = os.path.join(cdir, "ceph.conf")
    proc = None
    try:
        image = "bench"
        run(["rbd", "-c", conf, "create", "--size", "%dM" % IMAGE_MB, "rbd/" + image])
        # fill the image once so reads hit written objects on both sides
        rbd_bench(conf, image, "write", 4 * MiB, 4, "seq", IMAGE_MB * MiB)
        ref = {}
        for key, _, io_type, size, qd, pattern, total in LOADS:
            ref[key] = rbd_bench(conf, image, io_type, size, qd, pattern, total)
        port = free_port()
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
        log = open(os.path.join(tmp, "utargetd.log"), "w")
        proc = subprocess.Popen([args.utargetd, "-c", cpath, "-s", os.path.join(tmp, "sock"),
                                 "-f"], stdout=log, stderr=log)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        got = {}
        for key, _, io_type, size, qd, pattern, total in LOADS:
            got[key] = iscsi_bench(port, io_type, size, qd, pattern, total, args.seconds)
        print("| load | rbd bench (librbd) IOPS | utargetd user:rbd over iSCSI IOPS | "
              "utargetd MiB/s | utargetd / rbd bench |")
        print("|---|---:|---:|---:|---:|")
        for key, label, _, size, _, _, _ in LOADS:
            print("| %s | %.0f | %.0f | %.1f | %.2f |" % (
                label, ref[key], got[key], got[key] * size / MiB, got[key] / ref[key]))
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        run([script, "stop", cdir], timeout=60)
        print("(logs in %s)" % tmp, file=sys.stderr)


if __name__ == "__main__":
    main()
