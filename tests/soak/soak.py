#!/usr/bin/env python3
"""Soak run (issue 9, "Load"): many sessions over several targets doing mixed I/O with
data verification for a bounded time, while the daemon's resident memory, open fds and
connections are sampled through the control API's `stats` method. Not part of
`make check` (it runs for minutes); run it by hand:

    tests/soak/soak.py [--duration 120] [--sessions 200] [--targets 4] [--procs 4]
                       [--qd 2] [--utargetd build/utargetd]

Each initiator process is tests/integration/helpers/utio.c in `soak` mode: one process
holds sessions/procs libiscsi sessions round-robin over the targets, each session owning
a disjoint 1 MiB region of its target's LUN 0, issuing random reads and writes of 4 KiB
to 256 KiB (QD per session), every read compared with the generation last written.
Targets alternate ramdisk / fileio write-back / fileio write-through (64 MiB LUNs).

Prints the figures and exits 1 when anything failed: an I/O error or data mismatch, a
login failure, connections / sessions / tasks / fds not back to the baseline after the
initiators log out, or the daemon not stopping cleanly on SIGTERM.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import uthelpers as ut  # noqa: E402
from rpcclient import RpcClient  # noqa: E402

MiB = ut.MiB
UNIT = 4096


def build_utio(workdir):
    out = os.path.join(workdir, "utio")
    res = ut.run(["cc", "-O2", "-o", out,
                  str(REPO / "tests" / "integration" / "helpers" / "utio.c"), "-liscsi"],
                 timeout=120)
    if res.returncode != 0:
        sys.exit("cannot build utio:\n" + res.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of I/O (120)")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--procs", type=int, default=4, help="initiator processes (4)")
    ap.add_argument("--qd", type=int, default=2, help="commands in flight per session (2)")
    ap.add_argument("--units", type=int, default=256, help="4 KiB units per session region")
    ap.add_argument("--utargetd", default=os.environ.get("UTARGETD",
                                                         str(REPO / "build" / "utargetd")))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    a.utargetd = os.path.abspath(a.utargetd)

    per_proc = -(-a.sessions // a.procs)
    per_target_per_proc = -(-per_proc // a.targets)
    lun_units = a.procs * per_target_per_proc * a.units
    lun_size = max(64 * MiB, lun_units * UNIT)

    workdir = tempfile.mkdtemp(prefix="utarget-soak-")
    utio = build_utio(workdir)
    port = ut.free_port()
    cfg = ut.Config(port, workdir)
    iqns = []
    for t in range(a.targets):
        iqn = "iqn.2003-01.org.linux-iscsi.soak:t%d" % t
        kind = t % 3
        if kind == 0:
            so = cfg.ramdisk("rd%d" % t, size=lun_size)
        else:
            so = cfg.fileio("f%d" % t, size=lun_size, write_back=(kind == 1))
        cfg.target(iqn).tpg().lun(0, so)
        iqns.append(iqn)
    d = ut.Daemon(a.utargetd, cfg, workdir, name="utargetd")
    d.start(timeout=30)
    rpc = RpcClient(d.sock)
    samples = []

    def sample(label):
        st = rpc.call("stats")
        st["t"] = round(time.monotonic() - t0, 1)
        st["label"] = label
        samples.append(st)
        return st

    t0 = time.monotonic()
    base = sample("start")
    procs = []
    for p in range(a.procs):
        n = min(per_proc, a.sessions - p * per_proc)
        if n <= 0:
            break
        cmd = [utio, "soak", "-p", "127.0.0.1:%d" % port, "-t", ",".join(iqns),
               "-S", str(n), "-d", str(a.duration), "-q", str(a.qd), "-U", str(a.units),
               "-o", str(p * per_target_per_proc * a.units)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = [None] * len(procs)

    def collect(i, pr):
        outs[i] = pr.communicate()

    threads = [threading.Thread(target=collect, args=(i, pr)) for i, pr in enumerate(procs)]
    for th in threads:
        th.start()
    # sample every 5 s while the initiators run
    logged_in_at = None
    while any(th.is_alive() for th in threads):
        st = sample("run")
        if logged_in_at is None and st["sessions"] >= a.sessions:
            logged_in_at = st["t"]
        time.sleep(5)
    for th in threads:
        th.join()
    results = []
    problems = []
    for (out, err), pr in zip(outs, procs):
        lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        final = [l for l in lines if "ops" in l]
        if not final:
            problems.append("an initiator process printed no result (status %s): %s"
                            % (pr.returncode, err[-2000:]))
            continue
        results.append(final[-1])
        if pr.returncode != 0:
            problems.append("initiator status %d: %s" % (pr.returncode, err[-2000:]))
    # back to baseline after the logouts (poll: connections close asynchronously)
    deadline = time.monotonic() + 30
    while True:
        end = sample("after")
        if (end["connections"], end["sessions"], end["tasks"], end["fds"]) == \
                (0, 0, 0, base["fds"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    try:
        rpc.close()
        d.stop(timeout=30)
        clean = "exit 0, no sanitizer report"
    except AssertionError as e:
        clean = str(e).splitlines()[0]
        problems.append(clean)

    tot = {k: sum(r[k] for r in results) for k in
           ("sessions", "ops", "reads", "writes", "bytes", "errors", "mismatches",
            "login_failures")}
    secs = max((r["seconds"] for r in results), default=a.duration)
    run = [s for s in samples if s["label"] == "run"]
    peak = max(run, key=lambda s: s["connections"]) if run else base
    loaded = [s for s in run if s["sessions"] >= tot["sessions"] > 0] or run or [base]
    mid = loaded[len(loaded) // 2]
    rss_first, rss_last = loaded[0]["rss_kib"], loaded[-1]["rss_kib"]
    print("utarget soak: %d sessions over %d targets, %d initiator processes, QD %d per "
          "session, %.0f s of I/O (%s)" % (tot["sessions"], a.targets, len(procs), a.qd,
                                           secs, os.path.relpath(a.utargetd, REPO)))
    print("  ops            %d (%d reads, %d writes), %.0f ops/s, %.1f MiB/s"
          % (tot["ops"], tot["reads"], tot["writes"], tot["ops"] / secs,
             tot["bytes"] / MiB / secs))
    print("  errors         %d I/O errors, %d data mismatches, %d login failures"
          % (tot["errors"], tot["mismatches"], tot["login_failures"]))
    print("  all logged in  %s" % ("after %.1f s" % logged_in_at if logged_in_at is not None
                                   else "never seen by a sample"))
    print("  RSS (KiB)      start %d | loaded: first %d, middle %d, last %d | after %d"
          % (base["rss_kib"], rss_first, mid["rss_kib"], rss_last, end["rss_kib"]))
    print("  fds            before %d | peak %d | after %d"
          % (base["fds"], max(s["fds"] for s in samples), end["fds"]))
    print("  connections    before %d | peak %d | after %d"
          % (base["connections"], peak["connections"], end["connections"]))
    print("  sessions/tasks after: %d / %d" % (end["sessions"], end["tasks"]))
    print("  daemon stop    %s" % clean)
    print("  samples (t s: conns, rss KiB, fds): " + ", ".join(
        "%s: %d, %d, %d" % (s["t"], s["connections"], s["rss_kib"], s["fds"])
        for s in samples))
    if tot["errors"] or tot["mismatches"] or tot["login_failures"]:
        problems.append("I/O errors or mismatches")
    if (end["connections"], end["sessions"], end["tasks"], end["fds"]) != \
            (0, 0, 0, base["fds"]):
        problems.append("counters not back to baseline: %s vs %s" % (end, base))
    if tot["sessions"] != a.sessions:
        problems.append("%d of %d sessions logged in" % (tot["sessions"], a.sessions))
    for p in problems:
        print("PROBLEM: " + p)
    if not a.keep and not problems:
        subprocess.run(["rm", "-rf", workdir])
    else:
        print("work directory: " + workdir)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
