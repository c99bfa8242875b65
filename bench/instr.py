#!/usr/bin/env python3
"""Instructions per command: utargetd under valgrind's callgrind (issue 8).

Seconds are noisy on a shared two-core machine; instruction counts are not.
This runs build/utargetd under `valgrind --tool=callgrind`, drives fixed
numbers of commands through it with `qemu-img bench` (exact counts, one
session, QD 32) and prints the user-space instructions the daemon executed
per command (all its threads; the kernel's work is not counted).

Each load runs twice, with N1 and N2 commands; instructions per command =
(Ir(N2) - Ir(N1)) / (N2 - N1), so login, logout and connection set-up cancel
out. Counters are zeroed before and dumped after each run with
callgrind_control.

Usage: bench/instr.py [--binary build/utargetd] [--n1 2000] [--n2 10000]
                      [--only KEY,...] [--out DIR] [--keep]
Python 3 standard library only; needs valgrind and qemu-utils
(scripts/deps.sh bench installs them).
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from bench import free_port, wait_port   # bench/bench.py, beside this file

IQN = "iqn.2003-01.org.linux-iscsi.instr:t1"
IQN_HD = IQN + "hd"
LUN_SIZE = 256 << 20

LOADS = [
    # key, label, target iqn, lun (0 file, 1 nullio), write, size, digest
    ("r4k", "4 KiB read QD32 (fileio on tmpfs)", IQN, 0, False, 4096, False),
    ("w4k", "4 KiB write QD32 (fileio on tmpfs)", IQN, 0, True, 4096, False),
    ("r4k_null", "4 KiB read QD32 (ramdisk nullio)", IQN, 1, False, 4096, False),
    ("w4k_null", "4 KiB write QD32 (ramdisk nullio)", IQN, 1, True, 4096, False),
    ("r4k_hd", "4 KiB read QD32 +HeaderDigest", IQN_HD, 0, False, 4096, True),
    ("w4k_hd", "4 KiB write QD32 +HeaderDigest", IQN_HD, 0, True, 4096, True),
    ("r1m", "1 MiB read QD8 (fileio on tmpfs)", IQN, 0, False, 1 << 20, False),
    ("w1m", "1 MiB write QD8 (fileio on tmpfs)", IQN, 0, True, 1 << 20, False),
]


def log(*a):
    print("[instr %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def config(port, backing):
    params = {"MaxRecvDataSegmentLength": "262144", "MaxBurstLength": "1048576",
              "FirstBurstLength": "262144", "ImmediateData": "Yes", "InitialR2T": "Yes"}
    attrs = {"authentication": 0, "generate_node_acls": 1,
             "demo_mode_write_protect": 0, "default_cmdsn_depth": 128}

    def target(iqn, hd, luns):
        return {"fabric": "iscsi", "wwn": iqn, "tpgs": [{
            "tag": 1, "enable": True, "attributes": attrs,
            "parameters": dict(params, HeaderDigest=hd),
            "luns": [{"index": i, "storage_object": so} for i, so in enumerate(luns)],
            "portals": [{"ip_address": "127.0.0.1", "port": port}], "node_acls": []}]}

    return {"fabric_modules": [], "storage_objects": [
        {"name": "f0", "plugin": "fileio", "dev": backing, "size": LUN_SIZE,
         "write_back": True, "attributes": {}},
        {"name": "n0", "plugin": "ramdisk", "size": LUN_SIZE, "nullio": True,
         "attributes": {}}],
        "targets": [target(IQN, "None,CRC32C", ["/backstores/fileio/f0",
                                                 "/backstores/ramdisk/n0"]),
                    target(IQN_HD, "CRC32C", ["/backstores/fileio/f0"])]}


def qemu(port, iqn, lun, write, size, digest, count):
    qd = 32 if size <= 16384 else 8
    opts = ("driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=%d,"
            "header-digest=%s,initiator-name=iqn.2024-01.org.utarget.instr:q"
            % (port, iqn, lun, "crc32c" if digest else "none"))
    argv = ["qemu-img", "bench", "-t", "none", "-c", str(count), "-d", str(qd),
            "-s", str(size)] + (["-w"] if write else []) + ["--image-opts", opts]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=1800)
    if r.returncode or b"Run completed" not in r.stdout:
        raise RuntimeError("qemu-img bench failed: %s" % r.stdout.decode(errors="replace"))


class Callgrind:
    def __init__(self, binary, workdir, extra=()):
        self.dir = workdir
        self.port = free_port()
        backing = os.path.join("/dev/shm", "utarget-instr-%d.img" % os.getpid())
        self.backing = backing
        with open(backing, "wb") as f:      # real tmpfs pages, not holes
            chunk = b"\xa5" * (1 << 20)
            for _ in range(LUN_SIZE >> 20):
                f.write(chunk)
        cfg = os.path.join(workdir, "saveconfig.json")
        with open(cfg, "w") as f:
            json.dump(config(self.port, backing), f)
        self.out = os.path.join(workdir, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + self.out,
                "--dump-instr=no", "--compress-strings=no", "--compress-pos=no",
                binary, "-c", cfg, "-s", os.path.join(workdir, "ctl.sock"), "-f"] + list(extra)
        self.log = open(os.path.join(workdir, "valgrind.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir)
        wait_port(self.port, self.proc, timeout=60.0)   # valgrind starts slowly

    def ctl(self, *args):
        subprocess.run(["callgrind_control"] + list(args) + [str(self.proc.pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True,
                       timeout=120)

    def measure(self, fn):
        """Ir executed by the daemon while fn() runs."""
        before = set(glob.glob(self.out + ".*"))
        self.ctl("-z")
        fn()
        time.sleep(0.3)
        self.ctl("-d")
        end = time.time() + 60
        while time.time() < end:
            new = sorted(set(glob.glob(self.out + ".*")) - before)
            if new:
                with open(new[-1]) as f:
                    text = f.read()
                m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
                if m:
                    return int(m.group(1))
            time.sleep(0.2)
        raise RuntimeError("no callgrind dump appeared")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.backing)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--binary", default=os.path.join(root, "build", "utargetd"))
    ap.add_argument("--n1", type=int, default=2000)
    ap.add_argument("--n2", type=int, default=10000)
    ap.add_argument("--only", help="comma-separated keys: " +
                    ",".join(l[0] for l in LOADS))
    ap.add_argument("--out", help="keep the callgrind dumps in this directory")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="extra utargetd argument (repeat): --daemon-arg=-o "
                    "--daemon-arg=stats=off measures without the statistics counters")
    a = ap.parse_args()
    if a.n2 <= a.n1:
        ap.error("--n2 must be larger than --n1")
    for tool in ("valgrind", "callgrind_control", "qemu-img"):
        if not shutil.which(tool):
            sys.exit("instr: %s not found (scripts/deps.sh bench installs it)" % tool)
    loads = LOADS
    if a.only:
        keys = a.only.split(",")
        loads = [l for l in LOADS if l[0] in keys]
    workdir = a.out or tempfile.mkdtemp(prefix="utarget-instr-")
    os.makedirs(workdir, exist_ok=True)
    git = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    cg = Callgrind(a.binary, workdir, a.daemon_arg)
    rows = []
    try:
        for key, label, iqn, lun, write, size, digest in loads:
            n1, n2 = a.n1, a.n2
            if size > 16384:            # 1 MiB commands: fewer of them
                n1, n2 = max(8, n1 // 50), max(16, n2 // 50)
            i1 = cg.measure(lambda: qemu(cg.port, iqn, lun, write, size, digest, n1))
            i2 = cg.measure(lambda: qemu(cg.port, iqn, lun, write, size, digest, n2))
            per = (i2 - i1) / (n2 - n1)
            rows.append((label, per, per / (size / 1024)))
            log("%-40s %10.0f instructions/command" % (label, per))
    finally:
        cg.stop()
        if not a.out:
            shutil.rmtree(workdir, ignore_errors=True)
    print("utargetd %s%s, valgrind --tool=callgrind, user-space instructions of all "
          "daemon threads; (Ir(N2) - Ir(N1)) / (N2 - N1) with N1=%d, N2=%d "
          "(1 MiB: N/50)" % (git.stdout.decode().strip() or "?",
                             (" " + " ".join(a.daemon_arg)) if a.daemon_arg else "",
                             a.n1, a.n2))
    print()
    print("| load | instructions / command | per KiB |")
    print("|---|---|---|")
    for label, per, kib in rows:
        print("| %s | %.0f | %.0f |" % (label, per, kib))


if __name__ == "__main__":
    main()
