#!/usr/bin/env python3
"""utarget benchmark: utargetd against tgt and istgt on loopback, same loads,
same kind of backing, in turns, several rounds (issue 8).

Python 3 standard library only. Needs root for tgtd/istgt (they are started
as ordinary foreground processes on free loopback ports, each in its own
temporary directory, and stopped at the end). See bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
GiB = 1 << 30
LUN_SIZE = GiB
FORBIDDEN_PORTS = {3260}

UT_IQN = "iqn.2003-01.org.linux-iscsi.bench:t1"
TGT_IQN = "iqn.2001-04.com.example.bench:t1"
ISTGT_BASE = "iqn.2007-09.jp.ne.peach.istgt"
# istgt's digest policy for the 'dd' endpoint (both digests optional).
ISTGT_DD_DIGEST = "Auto"

# Session parameters offered identically by every target.
MRDSL = 262144
MAX_BURST = 1048576
FIRST_BURST = 262144
QUEUE_DEPTH = 128


def log(*a):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in FORBIDDEN_PORTS:
            return p


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("daemon exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listening on port %d" % port)


def cpu_seconds(pid):
    """utime+stime of the whole thread group, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fill_file(path, size):
    """A fully written backing file (real tmpfs pages, not holes), same
    pseudo-random contents for every target."""
    chunk = bytearray((i * 2654435761 >> 13) & 0xFF for i in range(1 << 20))
    with open(path, "wb") as f:
        for i in range(size >> 20):
            chunk[0:8] = struct.pack("<Q", i)
            f.write(chunk)


def stop_proc(proc, name, grace=5.0):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log("%s (pid %d) ignored SIGTERM, sending SIGKILL" % (name, proc.pid))
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------- targets

class Target:
    """One target daemon. ep(kind) gives (port, iqn, lun) for kind in
    'file' (1 GiB file on /dev/shm), 'null' (ramdisk nullio / bs null),
    'digest' (the same file behind a target that requires HeaderDigest=CRC32C:
    iscsi-perf hard-codes its offer) and 'dd' (the same file behind a target
    that accepts None or CRC32C for both HeaderDigest and DataDigest: ddperf
    offers exactly what a load asks for).
    """
    name = "?"
    proc = None

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.backing = "/dev/shm/utarget-bench-%d-%s.img" % (os.getpid(), self.name)
        self.eps = {}

    @property
    def pid(self):
        return self.proc.pid

    def ep(self, kind):
        return self.eps.get(kind)

    def url(self, kind):
        port, iqn, lun = self.eps[kind]
        return "iscsi://127.0.0.1:%d/%s/%d" % (port, iqn, lun)

    def popen(self, argv, env=None):
        out = open(os.path.join(self.dir, "daemon.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
        return self.proc

    def stop(self):
        stop_proc(self.proc, self.name)

    def cleanup(self):
        try:
            os.unlink(self.backing)
        except OSError:
            pass


class Utargetd(Target):
    name = "utargetd"

    def __init__(self, workdir, binary, one_target=False, extra=(), name=None):
        self.binary = binary
        self.one_target = one_target
        self.extra = list(extra)
        if one_target:
            self.name = "utargetd-1t"
        if name:
            self.name = name
        super().__init__(workdir)

    def config(self):
        params = {"MaxRecvDataSegmentLength": str(MRDSL), "MaxBurstLength": str(MAX_BURST),
                  "FirstBurstLength": str(FIRST_BURST), "ImmediateData": "Yes",
                  "InitialR2T": "Yes"}
        attrs = {"authentication": 0, "generate_node_acls": 1,
                 "demo_mode_write_protect": 0, "default_cmdsn_depth": QUEUE_DEPTH}
        portal = [{"ip_address": "127.0.0.1", "port": self.port}]

        def target(iqn, hd, luns, dd=None):
            p = dict(params, HeaderDigest=hd)
            if dd:
                p["DataDigest"] = dd
            return {"fabric": "iscsi", "wwn": iqn, "tpgs": [{
                "tag": 1, "enable": True, "attributes": attrs, "parameters": p,
                "luns": [{"index": i, "storage_object": so} for i, so in enumerate(luns)],
                "portals": portal, "node_acls": []}]}

        sos = [{"name": "f0", "plugin": "fileio", "dev": self.backing, "size": LUN_SIZE,
                "write_back": True, "attributes": {}}]
        targets = [target(UT_IQN, "None,CRC32C", ["/backstores/fileio/f0"]
                          + ([] if self.one_target else ["/backstores/ramdisk/nul0"]))]
        if not self.one_target:
            sos.append({"name": "nul0", "plugin": "ramdisk", "size": LUN_SIZE,
                        "nullio": True, "attributes": {}})
            targets.append(target(UT_IQN + "d", "CRC32C", ["/backstores/fileio/f0"]))
            targets.append(target(UT_IQN + "dd", "CRC32C,None", ["/backstores/fileio/f0"],
                                  dd="CRC32C,None"))
        return {"fabric_modules": [], "storage_objects": sos, "targets": targets}

    def start(self):
        cfg = os.path.join(self.dir, "saveconfig.json")
        with open(cfg, "w") as f:
            json.dump(self.config(), f, indent=1)
        self.popen([self.binary, "-c", cfg, "-s", os.path.join(self.dir, "ctl.sock"), "-f"]
                   + self.extra)
        wait_port(self.port, self.proc)
        self.eps = {"file": (self.port, UT_IQN, 0)}
        if not self.one_target:
            self.eps["null"] = (self.port, UT_IQN, 1)
            self.eps["digest"] = (self.port, UT_IQN + "d", 0)
            self.eps["dd"] = (self.port, UT_IQN + "dd", 0)


class Tgt(Target):
    name = "tgt"

    def tgtadm(self, *args):
        r = subprocess.run(["tgtadm", "--lld", "iscsi"] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode:
            raise RuntimeError("tgtadm %s: %s" % (" ".join(args), r.stdout.decode().strip()))

    def start(self):
        self.env = dict(os.environ, TGT_IPC_SOCKET=os.path.join(self.dir, "tgtd.sock"))
        self.popen(["tgtd", "-f", "--iscsi", "portal=127.0.0.1:%d" % self.port],
                   env=self.env)
        wait_port(self.port, self.proc)
        for tid, iqn in ((1, TGT_IQN), (2, TGT_IQN + "d"), (3, TGT_IQN + "dd")):
            self.tgtadm("--mode", "target", "--op", "new", "--tid", str(tid),
                        "--targetname", iqn)
            # LUN 0 is tgt's controller; the disk LUNs start at 1.
            self.tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(tid),
                        "--lun", "1", "--backing-store", self.backing)
            for k, v in (("MaxRecvDataSegmentLength", MRDSL),
                         ("MaxXmitDataSegmentLength", MRDSL),
                         ("MaxBurstLength", MAX_BURST), ("FirstBurstLength", FIRST_BURST),
                         ("ImmediateData", "Yes"), ("InitialR2T", "Yes"),
                         ("MaxQueueCmd", QUEUE_DEPTH)):
                self.tgtadm("--mode", "target", "--op", "update", "--tid", str(tid),
                            "--name", k, "--value", str(v))
            self.tgtadm("--mode", "target", "--op", "bind", "--tid", str(tid),
                        "--initiator-address", "ALL")
        self.tgtadm("--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "2",
                    "--bstype", "null", "--backing-store", "/dev/null")
        self.tgtadm("--mode", "target", "--op", "update", "--tid", "2",
                    "--name", "HeaderDigest", "--value", "CRC32C")
        for k in ("HeaderDigest", "DataDigest"):
            self.tgtadm("--mode", "target", "--op", "update", "--tid", "3",
                        "--name", k, "--value", "None,CRC32C")
        self.eps = {"file": (self.port, TGT_IQN, 1), "null": (self.port, TGT_IQN, 2),
                    "digest": (self.port, TGT_IQN + "d", 1),
                    "dd": (self.port, TGT_IQN + "dd", 1)}


class Istgt(Target):
    name = "istgt"

    def start(self):
        uport = free_port()
        conf = os.path.join(self.dir, "istgt.conf")
        open(os.path.join(self.dir, "auth.conf"), "w").close()
        lu = """
[LogicalUnit{n}]
  TargetName {name}
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest {digest}
  UnitType Disk
  QueueDepth {qd}
  LUN0 Storage {backing} Auto
"""
        with open(conf, "w") as f:
            f.write("""[Global]
  NodeBase "{base}"
  PidFile {d}/istgt.pid
  AuthFile {d}/auth.conf
  MediaDirectory {d}
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 64
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength {fb}
  MaxBurstLength {mb}
  MaxRecvDataSegmentLength {mrdsl}
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod Auto
  Portal UC1 127.0.0.1:{uport}
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:{port}
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.0/8
""".format(base=ISTGT_BASE, d=self.dir, fb=FIRST_BURST, mb=MAX_BURST, mrdsl=MRDSL,
                uport=uport, port=self.port))
            f.write(lu.format(n=1, name="t1", digest="Auto", qd=QUEUE_DEPTH,
                              backing=self.backing))
            f.write(lu.format(n=2, name="t1d", digest="Header", qd=QUEUE_DEPTH,
                              backing=self.backing))
            f.write(lu.format(n=3, name="t1dd", digest=ISTGT_DD_DIGEST, qd=QUEUE_DEPTH,
                              backing=self.backing))
        self.popen(["istgt", "-D", "-c", conf])
        wait_port(self.port, self.proc)
        # istgt has no ramdisk / null backing: no 'null' endpoint.
        self.eps = {"file": (self.port, ISTGT_BASE + ":t1", 0),
                    "digest": (self.port, ISTGT_BASE + ":t1d", 0),
                    "dd": (self.port, ISTGT_BASE + ":t1dd", 0)}


# ---------------------------------------------------------------- clients

def block_size(url):
    r = subprocess.run(["iscsi-readcapacity16", url], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    m = re.search(rb"LOGICAL BLOCK LENGTH IN BYTES:(\d+)", r.stdout)
    if not m:
        raise RuntimeError("readcapacity16 %s: %s" % (url, r.stdout.decode(errors="replace")))
    return int(m.group(1))


def negotiated_header_digest(url):
    env = dict(os.environ, LIBISCSI_DEBUG="10")
    r = subprocess.run(["iscsi-inq", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=20)
    m = re.search(rb"TargetLoginReply: HeaderDigest=(\S+)", r.stdout)
    return m.group(1).decode() if m else "?"


def run_clients(cmds, timeout):
    """Start all commands at once, wait for all; returns list of stdout (None
    for a failure)."""
    procs = []
    for c in cmds:
        procs.append(subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True))
    end = time.time() + timeout
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1, end - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            log("client timed out: %s" % " ".join(p.args))
            outs.append(None)
            continue
        text = out.decode(errors="replace").replace("\r", "\n")
        if p.returncode:
            log("client failed (rc %d): %s\n%s" % (p.returncode, " ".join(p.args), text[-600:]))
            outs.append(None)
        else:
            outs.append(text)
    return outs


def perf_cmd(url, load, bs, dur, idx):
    c = ["iscsi-perf", "-i", "iqn.2024-01.org.utarget.bench:perf%d" % idx,
         "-m", str(load["qd"]), "-b", str(load["size"] // bs), "-t", str(dur)]
    if load.get("random"):
        c.append("-r")
    return c + [url]


def qemu_cmd(ep, load, count, idx):
    port, iqn, lun = ep
    opts = ("driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=%d,"
            "header-digest=%s,initiator-name=iqn.2024-01.org.utarget.bench:qemu%d"
            % (port, iqn, lun, "crc32c" if load.get("digest") else "none", idx))
    c = ["qemu-img", "bench", "-t", "none", "-c", str(count), "-d", str(load["qd"]),
         "-s", str(load["size"])]
    if load["write"]:
        c.append("-w")
    return c + ["--image-opts", opts]


def ddperf_cmd(binary, ep, load, dur, idx, hd=None, dd=None):
    """bench/ddperf: our own initiator, the only client here that negotiates
    DataDigest. hd/dd default to the load's 'digest' flag."""
    port, iqn, lun = ep
    dig = load.get("digest", False)
    hd = dig if hd is None else hd
    dd = dig if dd is None else dd
    c = [binary, "-w" if load["write"] else "-r", "-b", str(load["size"]),
         "-q", str(load["qd"]), "-t", str(dur), "-l", str(lun),
         "-n", "iqn.2024-01.org.utarget.bench:ddperf%d" % idx]
    if load.get("random"):
        c.append("-R")
    if hd:
        c.append("-H")
    if dd:
        c.append("-D")
    return c + ["127.0.0.1:%d" % port, iqn]


_DDPERF_LINE = re.compile(r"ddperf: iops=(\d+) mbps=([\d.]+) hd=(\d) dd=(\d) cmds=(\d+) "
                          r"seconds=([\d.]+)")


def parse_ddperf(text):
    """{'iops', 'mbps', 'hd', 'dd', 'cmds', 'seconds'} from ddperf's last line, or None."""
    m = _DDPERF_LINE.findall(text or "")
    if not m:
        return None
    iops, mbps, hd, dd, cmds, secs = m[-1]
    return {"iops": float(iops), "mbps": float(mbps), "hd": int(hd), "dd": int(dd),
            "cmds": int(cmds), "seconds": float(secs)}


def daemon_log_tail(t):
    """The daemon's last log line, for a failure note."""
    try:
        with open(os.path.join(t.dir, "daemon.log"), "rb") as f:
            lines = [l.strip() for l in f.read().decode(errors="replace").splitlines()
                     if l.strip()]
        return lines[-1][:300] if lines else ""
    except OSError:
        return ""


def check_ddperf_digests(binary, ep):
    """Short ddperf runs with both digests and with none against a 'dd' endpoint.
    ddperf offers only the values asked for and exits 2 when the target answers
    anything else; returns None when both negotiated as asked, else why not."""
    probe = dict(size=4096, qd=1, write=False)
    for hd in (True, False):
        cmd = ddperf_cmd(binary, ep, probe, 0.3, 0, hd=hd, dd=hd)
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=60)
        except subprocess.TimeoutExpired:
            return "%s: no answer within 60 s" % " ".join(cmd)
        text = r.stdout.decode(errors="replace").strip()
        res = parse_ddperf(text)
        want = int(hd)
        if r.returncode or not res or res["hd"] != want or res["dd"] != want:
            return "%s: exit %d: %s" % (" ".join(cmd[1:]), r.returncode,
                                        text.splitlines()[-1] if text else "(no output)")
    return None


def parse_perf(text):
    m = re.findall(r"iops average (\d+)", text or "")
    return float(m[-1]) if m else None


def parse_qemu(text, count):
    m = re.search(r"Run completed in ([\d.]+) seconds", text or "")
    return count / float(m.group(1)) if m and float(m.group(1)) > 0 else None


# ---------------------------------------------------------------- loads

K4, K128, M1 = 4096, 128 << 10, 1 << 20
LOADS = [
    dict(key="rr4k_qd32", label="4 KiB rand read QD32", tool="perf", size=K4, qd=32,
         random=True, write=False, kind="file"),
    dict(key="rr4k_qd128", label="4 KiB rand read QD128", tool="perf", size=K4, qd=128,
         random=True, write=False, kind="file"),
    dict(key="sr128k", label="128 KiB seq read QD16", tool="perf", size=K128, qd=16,
         write=False, kind="file"),
    dict(key="sr1m", label="1 MiB seq read QD8", tool="perf", size=M1, qd=8,
         write=False, kind="file"),
    dict(key="w4k_qd32", label="4 KiB write QD32", tool="qemu", size=K4, qd=32,
         write=True, kind="file"),
    dict(key="w1m_qd8", label="1 MiB write QD8", tool="qemu", size=M1, qd=8,
         write=True, kind="file"),
    dict(key="rr4k_x4", label="4 KiB rand read QD32 x4 sess", tool="perf", size=K4, qd=32,
         random=True, write=False, kind="file", sessions=4),
    dict(key="w4k_x4", label="4 KiB write QD32 x4 sess", tool="qemu", size=K4, qd=32,
         write=True, kind="file", sessions=4),
    dict(key="rr4k_hd", label="4 KiB rand read QD32 +HD", tool="perf", size=K4, qd=32,
         random=True, write=False, kind="digest"),
    dict(key="w4k_hd", label="4 KiB write QD32 +HD", tool="qemu", size=K4, qd=32,
         write=True, kind="digest", digest=True),
    dict(key="rr4k_null", label="4 KiB rand read QD32 null", tool="perf", size=K4, qd=32,
         random=True, write=False, kind="null"),
    dict(key="sr1m_null", label="1 MiB seq read QD8 null", tool="perf", size=M1, qd=8,
         write=False, kind="null"),
]
# bench/ddperf on the 'dd' endpoints: each load without digests and with
# HeaderDigest + DataDigest CRC32C, same target and LUN (the "digest cost" table).
# Random offsets are aligned to the transfer size; writes are sequential like
# the qemu-img rows.
for _key, _label, _size, _qd, _write, _random in (
        ("ddp_rr4k", "4 KiB rand read QD32", K4, 32, False, True),
        ("ddp_w4k", "4 KiB write QD32", K4, 32, True, False),
        ("ddp_sr1m", "1 MiB seq read QD8", M1, 8, False, False),
        ("ddp_w1m", "1 MiB write QD8", M1, 8, True, False)):
    LOADS.append(dict(key=_key, label=_label + " ddperf", tool="ddperf", size=_size,
                      qd=_qd, write=_write, random=_random, kind="dd"))
for _key in ("ddp_rr4k", "ddp_w4k", "ddp_sr1m", "ddp_w1m"):
    _base = [l for l in LOADS if l["key"] == _key][0]
    LOADS.append(dict(_base, key=_key + "_dig", label=_base["label"] + " +HD+DD",
                      digest=True, base=_key))
# The iscsi-perf / qemu-img header-digest rows pair with their plain rows too.
for _l in LOADS:
    if _l["key"] in ("rr4k_hd", "w4k_hd"):
        _l["base"] = {"rr4k_hd": "rr4k_qd32", "w4k_hd": "w4k_qd32"}[_l["key"]]


def is_iops(load):
    return load["size"] <= 16384


class Runner:
    def __init__(self, args, targets):
        self.args = args
        self.targets = targets
        self.bs = {}         # (target, kind) -> block size
        self.counts = {}     # (target, load key) -> qemu count per process
        self.results = {}    # (load key, target) -> list of values (IOPS)
        self.cpu = {}        # (load key, target) -> list of CPU s / GiB
        self.idx = 0

    def bsize(self, t, kind):
        if (t.name, kind) not in self.bs:
            self.bs[(t.name, kind)] = block_size(t.url(kind))
        return self.bs[(t.name, kind)]

    def one(self, t, load, dur):
        """Run one load against one target; returns (IOPS summed over
        sessions, daemon CPU seconds per GiB moved)."""
        n = load.get("sessions", 1)
        ep = t.ep(load["kind"])
        self.idx += 1
        if load["tool"] == "ddperf":
            cmds = [ddperf_cmd(self.args.ddperf_bin, ep, load, dur, self.idx * 10 + i)
                    for i in range(n)]
            c0 = cpu_seconds(t.pid)
            outs = run_clients(cmds, dur + 90)
            cpu = cpu_seconds(t.pid) - c0
            res = [parse_ddperf(o) for o in outs]
            want = int(bool(load.get("digest")))
            if any(r is None or r["hd"] != want or r["dd"] != want for r in res):
                return None, None
            iops = sum(r["iops"] for r in res)
            moved = sum(r["cmds"] for r in res) * load["size"]
        elif load["tool"] == "perf":
            bs = self.bsize(t, load["kind"])
            cmds = [perf_cmd(t.url(load["kind"]), load, bs, dur, self.idx * 10 + i)
                    for i in range(n)]
            c0 = cpu_seconds(t.pid)
            outs = run_clients(cmds, dur + 60)
            cpu = cpu_seconds(t.pid) - c0
            vals = [parse_perf(o) for o in outs]
            if any(v is None for v in vals):
                return None, None
            iops = sum(vals)
            moved = iops * dur * load["size"]
        else:
            key = (t.name, load["key"])
            if key not in self.counts:
                # calibrate: a short run, then size the count to ~dur seconds
                c = max(64, (20000 if load["size"] <= 16384 else 300) // n)
                outs = run_clients([qemu_cmd(ep, load, c, self.idx * 10 + i)
                                    for i in range(n)], 120)
                rates = [parse_qemu(o, c) for o in outs]
                if any(r is None for r in rates):
                    return None, None
                self.counts[key] = max(64, int(min(rates) * dur))
            count = self.counts[key]
            c0 = cpu_seconds(t.pid)
            outs = run_clients([qemu_cmd(ep, load, count, self.idx * 10 + i)
                                for i in range(n)], 6 * dur + 120)
            cpu = cpu_seconds(t.pid) - c0
            vals = [parse_qemu(o, count) for o in outs]
            if any(v is None for v in vals):
                return None, None
            iops = sum(vals)
            moved = n * count * load["size"]
        return iops, cpu / (moved / GiB) if moved else None

    def run(self):
        a = self.args
        for r in range(a.rounds):
            for load in self.loads():
                ts = [t for t in self.targets if t.ep(load["kind"])]
                if not ts:
                    continue
                k = r % len(ts)
                for t in ts[k:] + ts[:k]:       # rotate who goes first
                    iops, cpu = self.one(t, load, a.duration)
                    self.results.setdefault((load["key"], t.name), []).append(iops)
                    self.cpu.setdefault((load["key"], t.name), []).append(cpu)
                    log("round %d/%d %-30s %-9s %s" % (
                        r + 1, a.rounds, load["label"], t.name, fmt_val(load, iops)))
                    time.sleep(0.3)

    def loads(self):
        if not self.args.only:
            return LOADS
        keys = self.args.only.split(",")
        return [l for l in LOADS if l["key"] in keys or l["tool"] in keys]


# ---------------------------------------------------------------- formatting

def to_unit(load, iops):
    return iops if is_iops(load) else iops * load["size"] / 1e6


def fmt_num(load, v):
    if v is None:
        return "fail"
    v = to_unit(load, v)
    if is_iops(load):
        return "%.1fk" % (v / 1000)
    return "%.0f" % v


def fmt_val(load, v):
    return fmt_num(load, v) + (" IOPS" if is_iops(load) else " MB/s") if v else "fail"


def med(vals):
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def cell(load, vals):
    v = [x for x in vals if x is not None]
    if not v:
        return "fail" if vals else "n/a"
    if len(v) == 1:
        return fmt_num(load, v[0])
    return "%s (%s–%s)" % (fmt_num(load, statistics.median(v)), fmt_num(load, min(v)),
                           fmt_num(load, max(v)))


def cost(plain, digest):
    if not plain or not digest:
        return "n/a"
    return "%.1f %%" % (100.0 * (plain - digest) / plain)


def ratio(a, b):
    return "%.2f×" % (a / b) if a and b else "–"


# ---------------------------------------------------------------- extras

def loopback_ceiling(seconds=2.0):
    """MB/s of one loopback TCP stream: a forked sender pushes 1 MiB sends,
    the parent receives into a 1 MiB buffer."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            buf = memoryview(bytearray(1 << 20))
            end = time.monotonic() + seconds + 0.3
            while time.monotonic() < end:
                s.sendall(buf)
            s.close()
        finally:
            os._exit(0)
    c, _ = ls.accept()
    buf = bytearray(1 << 20)
    total = 0
    t0 = time.monotonic()
    warm = t0 + 0.3
    n0 = None
    while True:
        n = c.recv_into(buf)
        if not n:
            break
        total += n
        now = time.monotonic()
        if n0 is None and now >= warm:
            n0, t0 = total, now
    t1 = time.monotonic()
    c.close()
    ls.close()
    os.waitpid(pid, 0)
    return (total - (n0 or 0)) / (t1 - t0) / 1e6


def iscsi_login(port, iqn, initiator, isid):
    """A minimal iSCSI login straight into full feature phase (no
    authentication); returns the connected socket, left idle."""
    keys = [("InitiatorName", initiator), ("TargetName", iqn), ("SessionType", "Normal"),
            ("HeaderDigest", "None"), ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", "262144"), ("ErrorRecoveryLevel", "0"),
            ("InitialR2T", "Yes"), ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
            ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "0"),
            ("MaxOutstandingR2T", "1"), ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"), ("MaxConnections", "1")]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def recvn(n):
        b = b""
        while len(b) < n:
            x = s.recv(n - len(b))
            if not x:
                raise RuntimeError("connection closed during login")
            b += x
        return b

    exp_statsn = 0
    data = b"".join(("%s=%s" % kv).encode() + b"\0" for kv in keys)
    for step in range(6):
        bhs = bytearray(48)
        bhs[0] = 0x43                     # Login Request, immediate
        bhs[1] = 0x80 | (1 << 2) | 3      # T, CSG=operational, NSG=full feature
        bhs[5:8] = len(data).to_bytes(3, "big")
        bhs[8:14] = bytes([0x80, 0]) + struct.pack(">I", isid)
        bhs[16:20] = struct.pack(">I", step + 1)          # ITT
        bhs[24:28] = struct.pack(">I", 1)                 # CmdSN
        bhs[28:32] = struct.pack(">I", exp_statsn)
        s.sendall(bytes(bhs) + data + b"\0" * (-len(data) % 4))
        r = recvn(48)
        dlen = int.from_bytes(r[5:8], "big")
        recvn(dlen + (-dlen % 4) + (r[4] * 4))
        if r[0] & 0x3F != 0x23 or r[36] != 0:
            raise RuntimeError("login rejected: opcode %#x status %d/%d" % (r[0], r[36], r[37]))
        exp_statsn = struct.unpack(">I", r[24:28])[0] + 1
        if r[1] & 0x80 and r[1] & 3 == 3:
            s.settimeout(None)
            return s
        data = b""
    raise RuntimeError("login did not reach full feature phase")


def memory_probe(t, nsess):
    """Idle RSS, then RSS with nsess idle sessions open: (idle KiB, KiB/session)."""
    time.sleep(1.0)
    idle = rss_kib(t.pid)
    port, iqn, _ = t.ep("file")
    socks = []
    try:
        for i in range(nsess):
            socks.append(iscsi_login(port, iqn, "iqn.2024-01.org.utarget.bench:idle%d" % i,
                                     0x1000 + i))
        time.sleep(1.0)
        busy = rss_kib(t.pid)
    finally:
        for s in socks:
            s.close()
    return idle, (busy - idle) / nsess


def pkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=10).stdout.decode() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": open("/proc/loadavg").read().split()[:3]}


def perf_report(data, *args):
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none"]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=300)
    lines = []
    for l in r.stdout.decode(errors="replace").splitlines():
        if l.strip() and not l.startswith("#"):
            lines.append(re.sub(r"(\s+-)+\s*$", "", l.rstrip()))
    return lines


def profile(t, load, dur, outdir, runner):
    """perf record -g on the daemon (all its threads, io_uring workers
    included) during one run of `load`; returns the flat self-time views."""
    data = os.path.join(outdir, "perf-%s-%s.data" % (t.name, load["key"]))
    rec = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-o", data, "-p",
                            str(t.pid), "--", "sleep", str(dur)],
                           stdout=subprocess.DEVNULL, stderr=open(data + ".log", "wb"),
                           start_new_session=True)
    time.sleep(0.5)
    iops, _ = runner.one(t, load, dur)
    try:
        rec.wait(dur + 60)
    except subprocess.TimeoutExpired:
        rec.send_signal(signal.SIGINT)
        rec.wait(30)
    views = [
        ("by thread", perf_report(data, "--sort", "comm")[:6]),
        ("by object", perf_report(data, "--sort", "dso")[:6]),
        ("top symbols", perf_report(data, "--sort", "dso,symbol", "--percent-limit", "0.8")[:25]),
        ("utargetd's own code", perf_report(data, "--sort", "symbol", "--dsos",
                                            os.path.basename(t.binary),
                                            "--percent-limit", "0.1")[:12]),
    ]
    full = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                           "--percent-limit", "2"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    with open(data + ".txt", "w") as f:
        f.write(full.stdout.decode(errors="replace"))
    return iops, views, data + ".txt"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every load (default 3)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s runs")
    ap.add_argument("--targets", default="utargetd,tgt,istgt",
                    help="comma list out of utargetd,tgt,istgt,utargetd-nostats (the same "
                    "daemon with -o stats=off: the utargetd/utargetd-nostats column is "
                    "the cost of the statistics counters)")
    ap.add_argument("--only", default="", help="comma list of load keys (%s), or "
                    "'ddperf' for all the ddperf loads" % ",".join(l["key"] for l in LOADS))
    ap.add_argument("--utargetd", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "utargetd"))
    ap.add_argument("--ddperf", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "bench",
        "ddperf"), help="the ddperf binary (bench/run.sh builds build/bench/ddperf)")
    ap.add_argument("--label", default="",
                    help="what the utargetd binary is (default: git HEAD of this tree)")
    ap.add_argument("--sessions", type=int, default=16,
                    help="idle sessions opened for the memory-per-connection figure")
    ap.add_argument("--profile", action="store_true",
                    help="perf-record utargetd during a 4 KiB read and a 4 KiB write run")
    ap.add_argument("--profile-loads", default="rr4k_qd32,w4k_qd32,sr1m",
                    help="load keys to profile with --profile")
    ap.add_argument("--out", default="", help="directory for logs, raw results, profiles")
    ap.add_argument("--json", default="", help="also write raw results as JSON here")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.quick:
        a.rounds, a.duration = 1, 2
    if not a.label:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        try:
            head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=10).stdout.decode().strip()
            dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "src"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   timeout=10).stdout.strip()
            a.label = "build of %s%s" % (head, " with uncommitted src/ changes" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            a.label = "?"
    if os.geteuid() != 0:
        log("warning: not root; tgtd/istgt may fail to start")

    work = tempfile.mkdtemp(prefix="utarget-bench-")
    outdir = a.out or work
    os.makedirs(outdir, exist_ok=True)
    # Run a private copy of the daemon: others may rebuild build/ meanwhile.
    binary = os.path.join(work, "utargetd.bin")
    shutil.copy2(a.utargetd, binary)
    want_ddperf = any(l["tool"] == "ddperf" for l in Runner(a, []).loads())
    a.ddperf_bin = os.path.join(work, "ddperf")
    if want_ddperf:
        if not os.access(a.ddperf, os.X_OK):
            raise SystemExit("bench: %s missing: `make build/bench/ddperf` (bench/run.sh "
                             "does it)" % a.ddperf)
        shutil.copy2(a.ddperf, a.ddperf_bin)
    notes = []

    names = [n for n in a.targets.split(",") if n]
    classes = {"utargetd": lambda: Utargetd(work, binary), "tgt": lambda: Tgt(work),
               "istgt": lambda: Istgt(work),
               "utargetd-nostats": lambda: Utargetd(work, binary, extra=["-o", "stats=off"],
                                                    name="utargetd-nostats")}
    targets = []
    info = machine_info()
    mem = {}
    try:
        ceiling = loopback_ceiling()
        log("loopback TCP ceiling: %.0f MB/s" % ceiling)

        # utargetd alone with one target (one fileio LUN): idle RSS and per session.
        if "utargetd" in names:
            one = Utargetd(work, binary, one_target=True)
            targets.append(one)
            fill_file(one.backing, LUN_SIZE)
            one.start()
            mem["utargetd, 1 target"] = memory_probe(one, a.sessions)
            one.stop()
            one.cleanup()
            targets.remove(one)

        for n in names:
            t = classes[n]()
            targets.append(t)
            log("starting %s on 127.0.0.1:%d" % (t.name, t.port))
            fill_file(t.backing, LUN_SIZE)
            t.start()
            mem[t.name] = memory_probe(t, a.sessions)
            hd = negotiated_header_digest(t.url("digest"))
            if hd != "CRC32C":
                raise RuntimeError("%s digest target negotiated HeaderDigest=%s" % (t.name, hd))
            log("%s: idle RSS %d KiB, %.0f KiB per idle session, digest target HeaderDigest=%s"
                % (t.name, mem[t.name][0], mem[t.name][1], hd))
            if want_ddperf and t.ep("dd"):
                # ddperf exits 2 when the target does not answer exactly the
                # digests offered: check both ways before any run counts.
                why = check_ddperf_digests(a.ddperf_bin, t.ep("dd"))
                if why:
                    last = daemon_log_tail(t)
                    if last:
                        why += " (daemon log: %s)" % last
                    log("%s: ddperf digest check failed, no ddperf rows for it: %s"
                        % (t.name, why))
                    notes.append("%s: no ddperf rows, the digest check failed: %s"
                                 % (t.name, why))
                    del t.eps["dd"]
                else:
                    log("%s: ddperf negotiated HeaderDigest+DataDigest CRC32C and None"
                        % t.name)

        runner = Runner(a, targets)
        t0 = time.time()
        runner.run()
        elapsed = time.time() - t0
        ceiling2 = loopback_ceiling()

        prof = []
        if a.profile and "utargetd" in names and shutil.which("perf"):
            ut = [t for t in targets if t.name == "utargetd"][0]
            for key in a.profile_loads.split(","):
                load = [l for l in LOADS if l["key"] == key][0]
                prof.append((load,) + profile(ut, load, a.duration, outdir, runner))
    finally:
        for t in targets:
            t.stop()
            t.cleanup()

    # ------------------------------------------------------------ report
    out = []
    p = out.append
    p("## utarget benchmark: utargetd vs tgt vs istgt (loopback)")
    p("")
    p("- machine: %d CPUs, %s, kernel %s; load average at start %s" %
      (info["nproc"], info["cpu"], info["kernel"], " ".join(info["load"])))
    p("- date: %s; %d round(s) of %d s per run, targets in rotating order; %.0f s of runs"
      % (info["date"], a.rounds, a.duration, elapsed))
    p("- utargetd: %s (%s); tgt %s; istgt %s" % (a.label, a.utargetd,
                                                pkg_version("tgt"), pkg_version("istgt")))
    p("- backing: a 1 GiB file on /dev/shm per target (pre-filled); 'null' rows: utargetd "
      "ramdisk nullio vs tgt bstype null (istgt has none)")
    p("- clients: iscsi-perf (reads; random LBAs are 512 B-granular), qemu-img bench "
      "(writes, sequential, -t none); '+HD' = HeaderDigest CRC32C required by the target")
    if any(l["tool"] == "ddperf" for l in runner.loads()):
        p("- 'ddperf' rows: bench/ddperf (one connection, QD commands in flight, random "
          "offsets aligned to the transfer size, writes sequential) on a target accepting "
          "both digests; '+HD+DD' = HeaderDigest and DataDigest CRC32C negotiated")
    for n in notes:
        p("- " + n)
    p("- loopback TCP ceiling (one stream, python, 1 MiB sends): %.0f MB/s before, %.0f MB/s "
      "after the runs" % (ceiling, ceiling2))
    p("")
    p("Median of rounds (min–max). 4 KiB rows in IOPS, larger ones in MB/s (10^6 B/s).")
    p("")
    cols = [t.name for t in targets]
    hdr = "| load | unit | " + " | ".join(cols) + " |"
    if "utargetd" in cols:
        peers = [c for c in cols if c != "utargetd"]
        hdr += "".join(" utargetd/%s |" % c for c in peers)
    else:
        peers = []
    p(hdr)
    p("|" + "---|" * (hdr.count("|") - 1))
    for load in runner.loads():
        row = "| %s | %s |" % (load["label"], "IOPS" if is_iops(load) else "MB/s")
        for c in cols:
            row += " %s |" % cell(load, runner.results.get((load["key"], c), []))
        for c in peers:
            row += " %s |" % ratio(med(runner.results.get((load["key"], "utargetd"), [])),
                                   med(runner.results.get((load["key"], c), [])))
        p(row)
    p("")
    pairs = [l for l in runner.loads() if l.get("base") and
             any(b["key"] == l["base"] for b in runner.loads())]
    if pairs:
        p("Digest cost: (plain − digest) / plain, from the medians (positive = slower with "
          "digests; the issue's goal is ≤ 10 %):")
        p("")
        p("| with digests | plain | " + " | ".join(cols) + " |")
        p("|---|---|" + "---|" * len(cols))
        for l in pairs:
            base = [b for b in runner.loads() if b["key"] == l["base"]][0]
            row = "| %s | %s |" % (l["label"], base["label"])
            for c in cols:
                row += " %s |" % cost(med(runner.results.get((base["key"], c), [])),
                                      med(runner.results.get((l["key"], c), [])))
            p(row)
        p("")
    big = [l for l in runner.loads() if l["size"] == M1 and
           med(runner.results.get((l["key"], "utargetd"), []))]
    if big and "utargetd" in cols:
        p("1 MiB rows as a share of the loopback ceiling (%.0f MB/s): %s" % (
            max(ceiling, ceiling2), "; ".join(
                "%s %.0f %%" % (l["label"], 100 * to_unit(l, med(runner.results.get(
                    (l["key"], "utargetd"), [])) or 0) / max(ceiling, ceiling2)) for l in big)))
        p("")
    p("Daemon CPU seconds per GiB moved (utime+stime from /proc/PID/stat, median of rounds):")
    p("")
    p("| load | " + " | ".join(cols) + " |")
    p("|---|" + "---|" * len(cols))
    for load in runner.loads():
        row = "| %s |" % load["label"]
        for c in cols:
            v = med(runner.cpu.get((load["key"], c), []))
            row += " %s |" % ("%.2f" % v if v is not None else "n/a")
        p(row)
    p("")
    p("Memory (VmRSS), fresh daemon; per session = RSS delta with %d idle logged-in "
      "sessions / %d:" % (a.sessions, a.sessions))
    p("")
    p("| daemon | idle RSS | per idle session |")
    p("|---|---|---|")
    for k, (idle, per) in mem.items():
        p("| %s | %.1f MiB | %.0f KiB |" % (k, idle / 1024, per))
    p("")
    for load, iops, views, path in prof:
        p("perf profile of utargetd (all threads) during '%s' (%s; call graphs in %s), "
          "self time:" % (load["label"], fmt_val(load, iops), path))
        p("")
        p("```")
        for title, lines in views:
            p("-- %s" % title)
            out.extend(lines)
        p("```")
        p("")
    report = "\n".join(out)
    print(report)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(report + "\n")
    raw = {"machine": info, "args": vars(a), "ceiling_mbs": [ceiling, ceiling2],
           "memory_kib": mem, "notes": notes,
           "results": {"%s/%s" % k: v for k, v in runner.results.items()},
           "cpu_s_per_gib": {"%s/%s" % k: v for k, v in runner.cpu.items()}}
    for path in filter(None, [a.json, os.path.join(outdir, "results.json")]):
        with open(path, "w") as f:
            json.dump(raw, f, indent=1)
    log("report, raw results, daemon logs and profiles in %s" % outdir)


if __name__ == "__main__":
    main()
