"""Online resize of storage objects (issue 21, beyond LIO): `backstore.resize` / utargetcli
`resize` / rtslib `StorageObject.resize` on fileio, ramdisk and block, live, with CAPACITY
DATA HAS CHANGED (SBC-3 4.6: 2A/09) on every open nexus; shrinking refused unless forced;
bad input refused with the configuration unchanged.
"""

import json
import os
import struct
import subprocess
import sys

import pytest

import iscsiraw as raw
import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

IQN = "iqn.2003-01.org.linux-iscsi.test:resize"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _conn(d, isid):
    c = raw.RawConn("127.0.0.1", d.port, isid=isid)
    c.login(target=IQN)
    # the POWER ON unit attention of a new nexus (SAM-5 5.14) out of the way
    for _ in range(4):
        p, _ = c.command(bytes(6))
        if p is not None and p.status == 0:
            break
    return c


def _sense(pdu):
    n = struct.unpack(">H", pdu.data[:2])[0]
    s = pdu.data[2:2 + n]
    return s[2] & 0xf, s[12], s[13]


def _tur_sees_capacity_change(c):
    p, _ = c.command(bytes(6))
    assert p is not None and p.status == 2, "no CHECK CONDITION after the resize"
    assert _sense(p) == (6, 0x2a, 0x09), _sense(p)
    p, _ = c.command(bytes(6))
    assert p.status == 0, "the unit attention was reported twice"


def _capacity(c):
    p, rc = c.command(bytes([0x9e, 0x10]) + bytes(8) + struct.pack(">I", 32) + bytes(2),
                      edtl=32, read=True)
    assert p.status == 0
    last, bs = struct.unpack(">QI", rc[:12])
    return (last + 1) * bs


def _serve(config, utarget, so):
    config.target(IQN).tpg().lun(0, so)
    d = utarget(config)
    return d, RpcClient(d.sock).connect()


def _refused(rpc, words, **params):
    before = rpc.call("get_config")
    e = rpc.error("backstore.resize", **params)
    for w in words:
        assert w in e.message, e.message
    assert rpc.call("get_config") == before
    return e


def _saved_size(rpc, workdir, name):
    path = os.path.join(str(workdir), "saved-%s.json" % name)
    rpc.call("save_config", file=path)
    with open(path) as f:
        return [s for s in json.load(f)["storage_objects"] if s["name"] == name][0].get("size")


def test_fileio_grows_live_every_nexus_told(config, utarget, workdir):
    img = os.path.join(str(workdir), "f.img")
    d, rpc = _serve(config, utarget, config.fileio("f0", dev=img, size=8 * MiB))
    res = ut.qemu_io(d.image_opts(0, IQN), ["write -P 0x5a 0 1M"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    a, b = _conn(d, [0x80, 0, 0, 0, 0, 1]), _conn(d, [0x80, 0, 0, 0, 0, 2])
    assert _capacity(a) == 8 * MiB
    assert rpc.call("backstore.resize", plugin="fileio", name="f0", size=24 * MiB) == \
        {"old_size": 8 * MiB, "size": 24 * MiB}
    for c in (a, b):
        _tur_sees_capacity_change(c)
        assert _capacity(c) == 24 * MiB
    assert os.path.getsize(img) == 24 * MiB
    # the new space is usable and the old data is intact
    res = ut.qemu_io(d.image_opts(0, IQN), ["write -P 0x6b %d 1M" % (20 * MiB),
                                            "read -P 0x6b %d 1M" % (20 * MiB),
                                            "read -P 0x5a 0 1M"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    assert _saved_size(rpc, workdir, "f0") == 24 * MiB
    # no size: the file's own (grown by someone else)
    with open(img, "r+b") as f:
        f.truncate(32 * MiB)
    assert rpc.call("backstore.resize", plugin="fileio", name="f0")["size"] == 32 * MiB
    _tur_sees_capacity_change(a)
    # the same size again: nothing to tell
    assert rpc.call("backstore.resize", plugin="fileio", name="f0", size=32 * MiB) == \
        {"old_size": 32 * MiB, "size": 32 * MiB}
    p, _ = a.command(bytes(6))
    assert p.status == 0
    a.close()
    b.close()


def test_shrink_needs_force(config, utarget, workdir):
    img = os.path.join(str(workdir), "s.img")
    config.fileio("f1", dev=img, size=16 * MiB)
    d, rpc = _serve(config, utarget, config.ramdisk("r0", size=16 * MiB))
    res = ut.qemu_io(d.image_opts(0, IQN), ["write -P 0x77 %d 1M" % (12 * MiB)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    c = _conn(d, [0x80, 0, 0, 0, 0, 3])
    _refused(rpc, ["shrinking", "force=true"], plugin="ramdisk", name="r0", size=8 * MiB)
    p, _ = c.command(bytes(6))
    assert p.status == 0, "a refused resize raised a unit attention"
    assert rpc.call("backstore.resize", plugin="ramdisk", name="r0", size=8 * MiB,
                    force=True)["size"] == 8 * MiB
    _tur_sees_capacity_change(c)
    assert _capacity(c) == 8 * MiB
    # past the new end: LOGICAL BLOCK ADDRESS OUT OF RANGE
    p, _ = c.command(bytes([0x28, 0]) + struct.pack(">I", 12 * MiB // 512) + bytes([0, 0, 8, 0]),
                     edtl=4096, read=True)
    assert p.status == 2 and _sense(p)[:2] == (5, 0x21), _sense(p)
    # grown back, the dropped range reads zeros (the pages went back to the kernel)
    rpc.call("backstore.resize", plugin="ramdisk", name="r0", size=16 * MiB)
    res = ut.qemu_io(d.image_opts(0, IQN), ["read -P 0 %d 1M" % (12 * MiB)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    # a forced shrink of a file truncates it
    rpc.call("backstore.resize", plugin="fileio", name="f1", size=4 * MiB, force=True)
    assert os.path.getsize(img) == 4 * MiB
    assert _saved_size(rpc, workdir, "f1") == 4 * MiB
    c.close()


def test_bad_resizes_refused(config, utarget):
    d, rpc = _serve(config, utarget, config.ramdisk("r1", size=4 * MiB))
    for bad in (0, -1, "8M", 1.5, True):
        e = rpc.error("backstore.resize", plugin="ramdisk", name="r1", size=bad)
        assert e.code == -32602, (bad, e)
    e = rpc.error("backstore.resize", plugin="ramdisk", name="nope", size=MiB)
    assert e.code == -32001 and "nope" in e.message, e
    # a ramdisk grows live within the address space it reserved
    _refused(rpc, ["can grow to"], plugin="ramdisk", name="r1", size=1 << 50)
    _refused(rpc, ["size must be given"], plugin="ramdisk", name="r1")
    _refused(rpc, ["smaller than one block"], plugin="ramdisk", name="r1", size=100)
    res, cap = ut.readcap16(d.lun_url(0, IQN))
    assert cap.get("total") == 4 * MiB, ut.describe(res, d)


def test_block_picks_up_grown_device(config, utarget, loop_factory, workdir):
    dev = loop_factory(32 * MiB, name="grow.img")
    d, rpc = _serve(config, utarget, config.block("b0", dev))
    c = _conn(d, [0x80, 0, 0, 0, 0, 4])
    _refused(rpc, ["the device's"], plugin="block", name="b0", size=64 * MiB)
    with open(os.path.join(str(workdir), "grow.img"), "r+b") as f:
        f.truncate(48 * MiB)
    res = ut.run(["losetup", "-c", dev])
    assert res.returncode == 0, res.stderr
    assert rpc.call("backstore.resize", plugin="block", name="b0") == \
        {"old_size": 32 * MiB, "size": 48 * MiB}
    _tur_sees_capacity_change(c)
    assert _capacity(c) == 48 * MiB
    res = ut.qemu_io(d.image_opts(0, IQN), ["write -P 0x3c %d 1M" % (40 * MiB),
                                            "read -P 0x3c %d 1M" % (40 * MiB)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    c.close()


def test_cli_and_rtslib_resize(config, utarget, workdir):
    d, rpc = _serve(config, utarget, config.ramdisk("r2", size=8 * MiB))
    cli = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb"}

    def run(*args):
        return ut.run([cli] + list(args), env=env)

    assert run("set", "global", "auto_save_on_exit=false").returncode == 0
    res = run("/backstores/ramdisk/r2", "resize", "16M")
    assert res.returncode == 0 and res.stdout == \
        "Resized storage object r2 from %d to %d bytes.\n" % (8 * MiB, 16 * MiB), \
        ut.describe(res, d)
    res = run("/backstores/ramdisk/r2", "resize", "size=4M")
    assert res.returncode == 1 and "force=true" in res.stderr, ut.describe(res, d)
    res = run("/backstores/ramdisk/r2", "resize", "size=4M", "force=true")
    assert res.returncode == 0 and "to %d bytes" % (4 * MiB) in res.stdout, ut.describe(res, d)
    res = run("/backstores/ramdisk/r2", "resize", "lots")
    assert res.returncode == 1 and "Cannot interpret size" in res.stderr
    res = run("ls", "/backstores/ramdisk")
    assert "(4.0MiB)" in res.stdout, res.stdout
    # the rtslib module, as a script would
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from utarget.rtslib import RDMCPStorageObject\n"
        "so = RDMCPStorageObject('r2')\n"
        "print(so.resize('12M'))\n" % os.path.join(REPO, "python"))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, UTARGET_SOCKET=d.sock), timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == str(12 * MiB), res.stderr
    res, cap = ut.readcap16(d.lun_url(0, IQN))
    assert cap.get("total") == 12 * MiB, ut.describe(res, d)
