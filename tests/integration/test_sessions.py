"""Several initiators at once, and an initiator that dies mid-write."""

import signal
import subprocess
import time

import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET
INIT_A = "iqn.1994-05.com.example:client-a"
INIT_B = "iqn.1994-05.com.example:client-b"
INIT_C = "iqn.1994-05.com.example:client-c"


def _whole_lun_cmds(pattern, size, chunk):
    cmds = ["write -P 0x%02x %d %d" % (pattern, off, chunk) for off in range(0, size, chunk)]
    cmds += ["read -P 0x%02x %d %d" % (pattern, off, chunk) for off in range(0, size, chunk)]
    return cmds


def test_two_initiators_two_luns_concurrently(config, utarget):
    rd0 = config.ramdisk("rd0", size=32 * MiB)
    rd1 = config.ramdisk("rd1", size=32 * MiB)
    config.target(IQN).tpg().lun(0, rd0).lun(1, rd1)
    d = utarget(config)

    jobs = []
    for init, lun, pattern, chunk in ((INIT_A, 0, 0xa5, 128 * 1024), (INIT_B, 1, 0x5a, MiB)):
        cmds = _whole_lun_cmds(pattern, 32 * MiB, chunk) * 2
        p = ut.qemu_io(d.image_opts(lun, initiator=init), cmds, popen=True)
        jobs.append((init, lun, pattern, p))
    results = []
    for init, lun, pattern, p in jobs:
        try:
            out, err = p.communicate(timeout=ut.TOOL_TIMEOUT)
        except Exception:
            p.kill()
            out, err = p.communicate()
        results.append((init, lun, pattern, p.returncode, out, err))
    for init, lun, pattern, rc, out, err in results:
        res = subprocess.CompletedProcess(["qemu-io", init, "lun", str(lun)], rc, out, err)
        assert not ut.qemu_io_problems(res), "%s on LUN %d: %s\n%s" % (
            init, lun, ut.qemu_io_problems(res), ut.describe(res, d))

    # Each LUN holds its own initiator's pattern, untouched by the other session.
    for lun, pattern in ((0, 0xa5), (1, 0x5a)):
        res = ut.qemu_io(d.image_opts(lun, initiator=INIT_C),
                         ["read -P 0x%02x 0 %d" % (pattern, 32 * MiB)], read_only=True)
        assert not ut.qemu_io_problems(res), ut.describe(res, d)


def test_initiator_killed_mid_write(config, utarget):
    config.target(IQN).tpg().lun(0, config.ramdisk("rd0", size=64 * MiB))
    d = utarget(config)

    for attempt in range(3):
        # qemu-img bench keeps 16 x 1 MiB writes in flight for far longer than we wait.
        bench = subprocess.Popen(
            ["qemu-img", "bench", "-w", "-c", "1000000", "-d", "16", "-s", "1M", "-S", "1M",
             "--pattern=0x33", "-f", "raw", d.lun_url(0)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3 + 0.2 * attempt)
        still_running = bench.poll() is None
        bench.send_signal(signal.SIGKILL)
        out, err = bench.communicate()
        assert still_running, "qemu-img bench ended before it was killed (rc %s):\n%s\n%s" % (
            bench.returncode, out, err)
        assert d.alive(), "utargetd died when an initiator was killed\n" + d.stderr_tail()

    # Another session still works: verified write/read and a full iscsi-ls.
    cmds = ["write -P 0x44 0 4096", "write -P 0x45 %d %d" % (10 * MiB, MiB),
            "read -P 0x44 0 4096", "read -P 0x45 %d %d" % (10 * MiB, MiB)]
    res = ut.qemu_io(d.image_opts(0, initiator=INIT_B), cmds)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True)
    assert res.returncode == 0, ut.describe(res, d)
    assert targets.get(IQN, {}).get("luns", {}).get(0, {}).get("size") == \
        ut.iscsi_ls_size(64 * MiB, 512), ut.describe(res, d)
