"""bench/ddperf, the benchmark's own initiator (the only client here that negotiates
DataDigest), against utargetd: a verified pattern written and read back with CRC32C header
and data digests (and the pattern checked in the backing file), short timed runs, and the
negotiation failures ddperf must report with exit status 2.

ddperf is built once per session with `make -C <repo> build/bench/ddperf`.
"""

import os
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

import uthelpers as ut
from uthelpers import MiB

REPO = Path(__file__).resolve().parents[2]

IQN = ut.DEFAULT_TARGET
INITIATOR = "iqn.2024-01.org.utarget.test:ddperf"
SIZE = 64 * MiB
BOTH = {"HeaderDigest": "CRC32C,None", "DataDigest": "CRC32C,None"}
LINE = re.compile(r"^ddperf: iops=(\d+) mbps=([\d.]+) hd=([01]) dd=([01]) cmds=(\d+) "
                  r"seconds=([\d.]+)$", re.M)

DIGESTS = [
    pytest.param([], id="none"),
    pytest.param(["-H"], id="hd"),
    pytest.param(["-H", "-D"], id="hd+dd"),
]


@pytest.fixture(scope="session")
def ddperf():
    """build/bench/ddperf, built by make (retried: another make may be racing on build/)."""
    out = ""
    for attempt in range(3):
        res = subprocess.run(["make", "--no-print-directory", "-C", str(REPO),
                              "build/bench/ddperf"], capture_output=True, text=True,
                             timeout=300)
        path = REPO / "build" / "bench" / "ddperf"
        if res.returncode == 0 and os.access(str(path), os.X_OK):
            return str(path)
        out = res.stdout + res.stderr
        time.sleep(1 + attempt)
    pytest.fail("make build/bench/ddperf failed:\n" + out[-4000:], pytrace=False)


def run_ddperf(binary, daemon, args, iqn=IQN, timeout=120):
    cmd = [binary, "-T", "10", "-n", INITIATOR] + list(args) + [
        "127.0.0.1:%d" % daemon.port, iqn]
    return ut.run(cmd, timeout=timeout)


def parse(res):
    m = LINE.search(res.stdout)
    if not m:
        return None
    iops, mbps, hd, dd, cmds, secs = m.groups()
    return {"iops": int(iops), "mbps": float(mbps), "hd": int(hd), "dd": int(dd),
            "cmds": int(cmds), "seconds": float(secs)}


M64 = (1 << 64) - 1


def sector_pattern(sector, seed):
    """The 512 bytes ddperf -V writes to a sector (see bench/ddperf.c)."""
    base = (sector * 0x9E3779B97F4A7C15 + seed) & M64
    return struct.pack("<64Q", sector, seed,
                       *[base ^ ((j * 0xD6E8FEB86659FD93) & M64) for j in range(2, 64)])


def check_file(path, start, end, seed):
    """Sectors [start, end) of the file hold the pattern of `seed`: list of problems."""
    bad = []
    with open(path, "rb") as f:
        f.seek(start * 512)
        for s in range(start, end):
            got = f.read(512)
            if got != sector_pattern(s, seed):
                bad.append(s)
                if len(bad) >= 5:
                    break
    return ["sector %d does not hold the seed-%d pattern" % (s, seed) for s in bad]


def flags(digests):
    return {"hd": int("-H" in digests), "dd": int("-D" in digests)}


def fileio_target(config, parameters=BOTH, write_back=False):
    so = config.fileio("f0", size=SIZE, write_back=write_back)
    config.target(IQN).tpg(parameters=dict(parameters)).lun(0, so)
    return config.so(so)["dev"]


@pytest.mark.parametrize("digests", DIGESTS)
def test_verify_pattern(ddperf, config, utarget, digests):
    """-V writes the pattern over the whole LUN in 1 MiB commands (immediate data, then
    R2T / Data-Out; several Data-In per read), then 4 KiB random ones over its first
    4 MiB, reads each back and compares; the file then holds exactly that pattern, and a
    byte changed behind the target's back is caught by a read-only verify."""
    path = fileio_target(config)
    d = utarget(config)
    seed1, seed2 = 0x1234567890ABCDEF, 77

    res = run_ddperf(ddperf, d, ["-V"] + digests + ["-b", "1M", "-q", "8", "-s", str(seed1)])
    assert res.returncode == 0, ut.describe(res, d)
    assert "verify ok: %d bytes" % SIZE in res.stdout, ut.describe(res, d)
    r = parse(res)
    assert r and {"hd": r["hd"], "dd": r["dd"]} == flags(digests), ut.describe(res, d)

    res = run_ddperf(ddperf, d, ["-V", "-R"] + digests +
                     ["-b", "4k", "-q", "32", "-S", "4M", "-s", str(seed2)])
    assert res.returncode == 0, ut.describe(res, d)
    assert "verify ok: %d bytes" % (4 * MiB) in res.stdout, ut.describe(res, d)

    split = 4 * MiB // 512
    problems = check_file(path, 0, split, seed2) + check_file(path, split, SIZE // 512, seed1)
    assert not problems, problems

    # one byte changed in the backing file: a read-only verify must notice it
    off = 1 * MiB + 300
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes([sector_pattern(off // 512, seed2)[off % 512] ^ 0xFF]), off)
        os.fsync(fd)
    finally:
        os.close(fd)
    res = run_ddperf(ddperf, d, ["-V", "-r"] + digests +
                     ["-b", "256k", "-q", "4", "-S", "4M", "-s", str(seed2)])
    assert res.returncode == 1, ut.describe(res, d)
    assert "verify: mismatch at LUN byte %d" % off in res.stderr, ut.describe(res, d)


@pytest.mark.parametrize("digests", DIGESTS)
def test_timed_runs(ddperf, config, utarget, digests):
    """-t 1: 4 KiB sequential writes at QD16 and 1 MiB reads at QD4 (random offsets)."""
    fileio_target(config, write_back=True)
    d = utarget(config)
    for args in (["-w", "-b", "4k", "-q", "16"], ["-r", "-R", "-b", "1M", "-q", "4"]):
        res = run_ddperf(ddperf, d, digests + args + ["-t", "1"])
        assert res.returncode == 0, ut.describe(res, d)
        r = parse(res)
        assert r, ut.describe(res, d)
        assert r["iops"] > 0 and r["cmds"] > 0 and r["seconds"] >= 1.0, res.stdout
        assert {"hd": r["hd"], "dd": r["dd"]} == flags(digests), res.stdout


def test_data_digest_refused(ddperf, config, utarget):
    """A portal group allowing only DataDigest=None answers Reject to an initiator
    offering only CRC32C: ddperf -D stops with exit status 2 and says why; without -D
    the same target is fine."""
    fileio_target(config, parameters={"HeaderDigest": "CRC32C,None", "DataDigest": "None"})
    d = utarget(config)
    res = run_ddperf(ddperf, d, ["-D", "-b", "4k", "-t", "0.2"])
    assert res.returncode == 2, ut.describe(res, d)
    assert "DataDigest=Reject, asked for CRC32C" in res.stderr, ut.describe(res, d)
    assert not LINE.search(res.stdout), res.stdout

    res = run_ddperf(ddperf, d, ["-H", "-b", "4k", "-t", "0.2"])
    assert res.returncode == 0, ut.describe(res, d)
    r = parse(res)
    assert r and r["hd"] == 1 and r["dd"] == 0, res.stdout


def test_required_digest_refused(ddperf, config, utarget):
    """A portal group requiring HeaderDigest=CRC32C refuses the login of ddperf offering
    only None: exit status 2 with the login status."""
    fileio_target(config, parameters={"HeaderDigest": "CRC32C"})
    d = utarget(config)
    res = run_ddperf(ddperf, d, ["-b", "4k", "-t", "0.2"])
    assert res.returncode == 2, ut.describe(res, d)
    assert re.search(r"HeaderDigest=\S+, asked for None|login refused", res.stderr), \
        ut.describe(res, d)
