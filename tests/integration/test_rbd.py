"""The user:rbd backstore against a real throwaway Ceph cluster (conftest `ceph`:
scripts/ceph-cluster.sh, one mon + one memstore OSD on 127.0.0.1).

Each test makes its own image, serves it from a LIO-format saveconfig.json (plugin
"user", config "rbd/POOL/IMAGE;conf=...") or the CLI, drives it with real initiators
(qemu-io, libiscsi tools) or the raw initiator for exact CDBs, and checks the bytes
on the cluster side with `rbd export` / `rbd du`."""

import json
import os
import struct
import subprocess
import time
import uuid

import pytest

import iscsiraw as raw
import rtslib_testutil  # noqa: F401  (puts python/ on sys.path for utarget.rtslib)
import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET
OBJ = 4 * MiB  # rbd's default object size (order 22)


def _image(ceph, size=64 * MiB):
    name = "img-" + uuid.uuid4().hex[:8]
    ceph.rbd("create", "--size", "%dM" % (size // MiB), "rbd/" + name)
    return name


def _serve(config, utarget, ceph, image, name="r0", extra=None, **opts):
    so = config.rbd(name, ceph.cfgstring(image, **opts))
    tpg = config.target(IQN).tpg()
    tpg.lun(0, so)
    if extra:
        extra(config, tpg)
    return utarget(config)


def _export(ceph, image, workdir):
    out = os.path.join(str(workdir), image + ".raw")
    ceph.rbd("export", "rbd/" + image, out)
    return out


def _du_used(ceph, image):
    res = ceph.rbd("du", "--format", "json", "rbd/" + image)
    for i in json.loads(res.stdout)["images"]:
        if i["name"] == image:
            return i["used_size"]
    raise AssertionError("rbd du does not list %s: %s" % (image, res.stdout))


def _sense(pdu):
    """(key, asc, ascq, information) of a CHECK CONDITION response."""
    n = struct.unpack(">H", pdu.data[:2])[0]
    s = pdu.data[2:2 + n]
    return s[2] & 0xf, s[12], s[13], struct.unpack(">I", s[3:7])[0]


def _conn(d):
    c = raw.RawConn("127.0.0.1", d.port)
    c.login(target=IQN)
    # the POWER ON unit attention of a new nexus (SAM-5 5.14) out of the way
    for _ in range(4):
        p, _ = c.command(bytes(6))
        if p is not None and p.status == 0:
            break
    return c


def _cmd(c, cdb, **kw):
    p, din = c.command(bytes(cdb), **kw)
    assert p is not None, "no response to CDB %s" % bytes(cdb).hex()
    return p, din


def _cdb16(op, lba, nblk, flags=0, extra=0):
    return bytes([op, flags]) + struct.pack(">QIBB", lba, nblk, extra, 0)


@pytest.mark.parametrize("digest", ["none", "crc32c"])
def test_qemu_io_patterns_match_rbd_export(config, utarget, ceph, workdir, digest):
    """4 KiB, 128 KiB and 1 MiB patterns written with qemu-io over iSCSI read back
    identical through iSCSI, and the image on the cluster holds the same bytes."""
    image = _image(ceph)
    d = _serve(config, utarget, ceph, image)
    regions = [(0, 4096, 0x11), (1 * MiB + 4096, 128 * 1024, 0x22),
               (OBJ - 512 * 1024, 1 * MiB, 0x33),   # crosses an object boundary
               (63 * MiB, 1 * MiB, 0x44)]
    opts = d.image_opts(0, IQN, digest=digest)
    res = ut.qemu_io(opts, ut.pattern_commands(regions, "write"), env={"LIBISCSI_DEBUG": "6"})
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    want = "HeaderDigest=%s" % ("CRC32C" if digest == "crc32c" else "None")
    assert want in res.stdout + res.stderr, "digest %s not negotiated" % digest
    res = ut.qemu_io(opts, ut.pattern_commands(regions, "read"), read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    exp = _export(ceph, image, workdir)
    assert ut.check_regions_in_file(exp, regions, zero_regions=[(4096, 1 * MiB)]) == []


def test_admission_below_the_objecter_throttle(config, utarget, ceph, workdir):
    """librbd runs a request's dispatch in the worker's thread (rbd_non_blocking_aio
    off), where the Objecter's in-flight throttle would block it; the gateway admits
    requests only while under three quarters of that throttle and queues the rest
    (rbd.c "Admission"). With the throttle at 4 object requests and 1 MiB, 44
    concurrent writes from qemu-io (4 KiB, 256 KiB, and 1 MiB ones that alone exceed
    the byte cap) all complete, in any order, and land: read back over iSCSI and in
    `rbd export`."""
    image = _image(ceph)
    conf = os.path.join(str(workdir), "ceph-throttled.conf")
    with open(ceph.conf) as f:
        text = f.read()
    sections = [l.strip() for l in text.splitlines() if l.startswith("[")]
    assert sections[-1] == "[client]", sections
    with open(conf, "w") as f:
        # the file ends in its [client] section: these land there
        f.write(text.rstrip() + "\nobjecter inflight ops = 4\n"
                "objecter inflight op bytes = 1048576\n")
    so = config.rbd("r0", "rbd/%s;conf=%s" % (image, conf))
    config.target(IQN).tpg().lun(0, so)
    d = utarget(config)
    regions = [(i * 1 * MiB + (i % 3) * 4096, 4096, 0x10 + i) for i in range(32)]
    regions += [(32 * MiB + i * 512 * 1024, 256 * 1024, 0x60 + i) for i in range(8)]
    regions += [(OBJ * 10 - 512 * 1024 + i * 2 * MiB, 1 * MiB, 0x80 + i) for i in range(4)]
    opts = d.image_opts(0, IQN)
    res = ut.qemu_io(opts, ut.pattern_commands(regions, "aio_write") + ["aio_flush"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    res = ut.qemu_io(opts, ut.pattern_commands(regions, "read"), read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    assert ut.check_regions_in_file(_export(ceph, image, workdir), regions) == []
    assert d.proc.poll() is None, d.stderr_tail()


def test_unmap_shrinks_rbd_du_and_reads_zeros(config, utarget, ceph, workdir):
    image = _image(ceph)
    d = _serve(config, utarget, ceph, image)
    c = _conn(d)
    # VPD B0 (SBC-3 6.6.4): the unmap granularity is the object size
    p, b0 = _cmd(c, [0x12, 1, 0xb0, 0, 64, 0], edtl=64, read=True)
    assert p.status == 0
    assert struct.unpack(">I", b0[28:32])[0] == OBJ // 512, b0.hex()
    data = b"\xab" * (1 * MiB)
    for lba in range(0, 3 * OBJ // 512, len(data) // 512):   # 12 MiB: 3 objects
        p, _ = _cmd(c, _cdb16(0x8a, lba, len(data) // 512), edtl=len(data),
                    write=True, data=data, timeout=30)
        assert p.status == 0
    before = _du_used(ceph, image)
    assert before >= 3 * OBJ, before
    # UNMAP the second object whole (lba 8192, 8192 blocks)
    param = struct.pack(">HH4x", 22, 16) + struct.pack(">QI4x", OBJ // 512, OBJ // 512)
    p, _ = _cmd(c, [0x42, 0, 0, 0, 0, 0, 0, 0, len(param), 0], edtl=len(param),
                write=True, data=param)
    assert p.status == 0, _sense(p)
    after = _du_used(ceph, image)
    assert after <= before - OBJ, (before, after)
    # the range reads back as zeros (LBPRZ), the neighbours are untouched
    p, din = _cmd(c, _cdb16(0x88, OBJ // 512 - 8, 16), edtl=8192, read=True)
    assert din == b"\xab" * 4096 + bytes(4096)
    # GET LBA STATUS (SBC-3 5.7) from the image's allocation
    p, st = _cmd(c, bytes([0x9e, 0x12]) + struct.pack(">QI", OBJ // 512, 64) + bytes(2),
                 edtl=64, read=True)
    assert p.status == 0
    lba, n, ptype = struct.unpack(">QIB", st[8:21])
    assert (lba, ptype) == (OBJ // 512, 1) and n == OBJ // 512, st[:24].hex()
    c.close()


def test_write_same_caw_sync_cache(config, utarget, ceph, workdir):
    image = _image(ceph)
    d = _serve(config, utarget, ceph, image)
    c = _conn(d)
    block = bytes(range(256)) * 2
    # WRITE SAME(16) of 2048 blocks at lba 100 (rbd_aio_writesame)
    p, _ = _cmd(c, _cdb16(0x93, 100, 2048), edtl=512, write=True, data=block)
    assert p.status == 0, _sense(p)
    # COMPARE AND WRITE (SBC-3 5.2): matching verify instance -> written
    new = b"\x5c" * 512
    p, _ = _cmd(c, _cdb16(0x89, 101, 0)[:13] + bytes([1, 0, 0]), edtl=1024, write=True,
                data=block + new)
    assert p.status == 0, _sense(p)
    # miscompare: nothing written, sense MISCOMPARE with the offset (byte 300)
    bad = bytearray(new)
    bad[300] ^= 0xff
    p, _ = _cmd(c, _cdb16(0x89, 101, 0)[:13] + bytes([1, 0, 0]), edtl=1024, write=True,
                data=bytes(bad) + b"\x77" * 512)
    assert p.status == 2
    assert _sense(p) == (0xe, 0x1d, 0x00, 300), _sense(p)
    # two blocks: longer than librbd's compare-and-write takes, done by the gateway
    two = b"\x91" * 1024
    p, _ = _cmd(c, _cdb16(0x89, 3000, 0)[:13] + bytes([2, 0, 0]), edtl=2048, write=True,
                data=bytes(1024) + two)
    assert p.status == 0, _sense(p)
    p, _ = _cmd(c, _cdb16(0x89, 3000, 0)[:13] + bytes([2, 0, 0]), edtl=2048, write=True,
                data=b"\x91" * 700 + b"\x00" * 324 + b"\x13" * 1024)
    assert _sense(p) == (0xe, 0x1d, 0x00, 700), _sense(p)
    # SYNCHRONIZE CACHE(16) over everything (rbd_aio_flush)
    p, _ = _cmd(c, _cdb16(0x91, 0, 0))
    assert p.status == 0, _sense(p)
    c.close()
    exp = _export(ceph, image, workdir)
    with open(exp, "rb") as f:
        f.seek(100 * 512)
        got = f.read(2048 * 512)
    assert got[:512] == block and got[512:1024] == new
    assert got[1024:] == block * 2046
    with open(exp, "rb") as f:
        f.seek(3000 * 512)
        assert f.read(1024) == two


def test_rbd_resize_raises_ua_and_new_capacity(config, utarget, ceph, workdir):
    image = _image(ceph, 64 * MiB)
    d = _serve(config, utarget, ceph, image)
    c = _conn(d)
    ceph.rbd("resize", "--size", "96M", "rbd/" + image)
    deadline = time.monotonic() + 10
    while True:
        p, _ = _cmd(c, bytes(6))
        if p.status == 2:
            break
        assert time.monotonic() < deadline, "no unit attention after rbd resize"
        time.sleep(0.1)
    # CAPACITY DATA HAS CHANGED (SPC-4 table: 2A/09)
    assert _sense(p)[:3] == (6, 0x2a, 0x09), _sense(p)
    p, rc = _cmd(c, bytes([0x9e, 0x10]) + bytes(8) + struct.pack(">I", 32) + bytes(2),
                 edtl=32, read=True)
    assert p.status == 0
    assert struct.unpack(">Q", rc[:8])[0] + 1 == 96 * MiB // 512
    c.close()
    # a new initiator sees it too, and can write past the old end
    res, cap = ut.readcap16(d.lun_url(0, IQN))
    assert cap.get("total") == 96 * MiB, ut.describe(res, d)
    res = ut.qemu_io(d.image_opts(0, IQN), ["write -P 0x66 %d 65536" % (90 * MiB)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    # saveconfig keeps the size the image has now
    cli = os.environ.get("UTARGETCLI") or os.path.join(str(ut_repo()), "build", "utargetcli")
    saved = os.path.join(str(workdir), "saved.json")
    res = ut.run([cli, "saveconfig", saved],
                 env={"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": str(workdir)})
    assert res.returncode == 0, ut.describe(res, d)
    so = json.load(open(saved))["storage_objects"][0]
    assert so["plugin"] == "user" and so["size"] == 96 * MiB


def test_resize_command_grows_the_image(config, utarget, ceph):
    """backstore.resize on user:rbd runs rbd resize: the image grows on the cluster, the
    nexus gets CAPACITY DATA HAS CHANGED; a shrink needs force."""
    image = _image(ceph, 32 * MiB)
    d = _serve(config, utarget, ceph, image)
    c = _conn(d)
    rpc = RpcClient(d.sock).connect()
    assert rpc.call("backstore.resize", plugin="user:rbd", name="r0", size=48 * MiB) == \
        {"old_size": 32 * MiB, "size": 48 * MiB}
    info = json.loads(ceph.rbd("info", "--format", "json", "rbd/" + image).stdout)
    assert info["size"] == 48 * MiB
    p, _ = _cmd(c, bytes(6))
    assert p.status == 2 and _sense(p)[:3] == (6, 0x2a, 0x09), _sense(p)
    e = rpc.error("backstore.resize", plugin="user:rbd", name="r0", size=16 * MiB)
    assert "force=true" in e.message, e
    info = json.loads(ceph.rbd("info", "--format", "json", "rbd/" + image).stdout)
    assert info["size"] == 48 * MiB
    c.close()


def ut_repo():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_create_ls_saveconfig_restore(config, utarget, ceph, workdir):
    """targetcli's /backstores/user:rbd create name=… size=… cfgstring=…; ls shows it
    as LIO does; saveconfig writes plugin "user" / config "rbd/…"; that file restores
    in a fresh daemon and serves the same bytes."""
    image = _image(ceph, 32 * MiB)
    rd = config.ramdisk("sentinel", size=4 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d = utarget(config)
    cli = os.environ.get("UTARGETCLI") or os.path.join(ut_repo(), "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h")}

    def run(*args):
        res = ut.run([cli] + list(args), env=env, timeout=60)
        assert "AddressSanitizer" not in res.stderr, res.stderr
        return res

    cs = ceph.cfgstring(image)
    res = run("/backstores/user:rbd", "create", "name=r1", "cfgstring=" + cs)
    assert res.returncode == 0, ut.describe(res, d)
    res = run("/backstores/user:rbd", "create", "name=r2",
              "cfgstring=" + ceph.cfgstring("no-such-image"))
    assert res.returncode != 0 and "no-such-image" in res.stderr, ut.describe(res, d)
    res = run("/backstores/user:rbd", "create", "name=r3", "size=8M", "create_image=true",
              "cfgstring=" + ceph.cfgstring(image + "-new"))
    assert res.returncode == 0, ut.describe(res, d)
    info = json.loads(ceph.rbd("info", "--format", "json", "rbd/" + image + "-new").stdout)
    assert info["size"] == 8 * MiB
    res = run("/iscsi/%s/tpg1/luns" % IQN, "create", "/backstores/user:rbd/r1", "1")
    assert res.returncode == 0, ut.describe(res, d)
    res = run("ls", "/backstores/user:rbd")
    assert res.returncode == 0
    assert "[Storage Objects: 2]" in res.stdout, res.stdout
    assert "[rbd/%s (32.0MiB) activated]" % cs in res.stdout.replace("\n", ""), res.stdout
    res = ut.qemu_io(d.image_opts(1, IQN), ["write -P 0x7e 65536 131072"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    saved = os.path.join(str(workdir), "saved.json")
    res = run("saveconfig", saved)
    assert res.returncode == 0, ut.describe(res, d)
    doc = json.load(open(saved))
    sos = {s["name"]: s for s in doc["storage_objects"]}
    assert sos["r1"]["plugin"] == "user" and sos["r1"]["config"] == "rbd/" + cs
    assert sos["r1"]["size"] == 32 * MiB and sos["r1"]["wwn"]
    luns = doc["targets"][0]["tpgs"][0]["luns"]
    assert {"index": 1, "storage_object": "/backstores/user/r1"}.items() <= \
        [l for l in luns if l["index"] == 1][0].items()
    res = run("/iscsi/%s/tpg1/luns" % IQN, "delete", "lun1")
    assert res.returncode == 0, ut.describe(res, d)
    res = run("/backstores/user:rbd", "delete", "r3")
    assert res.returncode == 0, ut.describe(res, d)
    d.stop()
    # the saved file, as is, in a new daemon
    d2 = ut.Daemon(d.binary, config, workdir, name="restored",
                   argv=[d.binary, "-c", saved, "-s",
                         os.path.join(str(workdir), "r.sock"), "-f"])
    d2.start()
    try:
        res = ut.qemu_io(d2.image_opts(1, IQN), ["read -P 0x7e 65536 131072"],
                         read_only=True)
        assert not ut.qemu_io_problems(res), ut.describe(res, d2)
    finally:
        d2.stop()


def test_osd_down_errors_then_resumes_fileio_keeps_serving(config, utarget, ceph,
                                                            workdir):
    """OSD stopped: RBD commands end within osd_op_timeout with NOT READY (a sense
    multipath retries), the daemon stays up and a fileio LUN keeps serving; OSD back:
    RBD I/O works again."""
    image = _image(ceph)

    def add_fileio(cfg, tpg):
        tpg.lun(1, cfg.fileio("f1", size=16 * MiB))

    d = _serve(config, utarget, ceph, image, extra=add_fileio, osd_op_timeout=4)
    c = _conn(d)
    data = b"\x42" * 4096
    p, _ = _cmd(c, _cdb16(0x8a, 0, 8), edtl=4096, write=True, data=data)
    assert p.status == 0
    ceph.stop_osd()
    try:
        t0 = time.monotonic()
        p, _ = _cmd(c, _cdb16(0x8a, 8, 8), edtl=4096, write=True, data=data, timeout=60)
        took = time.monotonic() - t0
        assert p.status == 2, "write with the OSD down succeeded"
        assert _sense(p)[:3] == (2, 0x04, 0x0a), _sense(p)
        assert took < 30, took
        # another LUN on the same daemon is not held up
        res = ut.qemu_io(d.image_opts(1, IQN), ["write -P 0x21 0 65536",
                                                "read -P 0x21 0 65536"])
        assert not ut.qemu_io_problems(res), ut.describe(res, d)
        assert d.proc.poll() is None
    finally:
        ceph.start_osd()
    deadline = time.monotonic() + 60
    while True:
        p, din = _cmd(c, _cdb16(0x88, 0, 8), edtl=4096, read=True, timeout=60)
        if p.status == 0:
            break
        assert time.monotonic() < deadline, "RBD I/O did not resume: %s" % (_sense(p),)
        time.sleep(1)
    assert din == data
    p, _ = _cmd(c, _cdb16(0x8a, 8, 8), edtl=4096, write=True, data=data, timeout=60)
    assert p.status == 0
    c.close()


def test_rtslib_user_backed_storage_object(config, utarget, ceph, workdir):
    """rtslib-fb's UserBackedStorageObject(name, config, size, wwn) on the module."""
    from utarget import rtslib
    image = _image(ceph, 16 * MiB)
    rd = config.ramdisk("sentinel", size=4 * MiB)
    config.target(IQN).tpg().lun(0, rd)
    d = utarget(config)
    rtslib.set_default_socket(d.sock)
    try:
        cfg = "rbd/" + ceph.cfgstring(image)
        so = rtslib.UserBackedStorageObject("u1", config=cfg,
                                            wwn="aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")
        assert so.exists and so.config == cfg and so.size == 16 * MiB
        assert so.wwn == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
        assert so.path == "/backstores/user/u1"
        assert [s.name for s in rtslib.RTSRoot().storage_objects
                if isinstance(s, rtslib.UserBackedStorageObject)] == ["u1"]
        tpg = rtslib.TPG(rtslib.Target(rtslib.FabricModule("iscsi"), IQN), 1)
        lun = rtslib.LUN(tpg, 3, so)
        assert lun.storage_object.name == "u1"
        res = ut.qemu_io(d.image_opts(3, IQN), ["write -P 0x3c 0 8192", "read -P 0x3c 0 8192"])
        assert not ut.qemu_io_problems(res), ut.describe(res, d)
        # lookup of the existing object, then delete (LUN first, as rtslib-fb)
        again = rtslib.UserBackedStorageObject("u1")
        again.delete()
        assert not so.exists
        with pytest.raises(rtslib.RTSLibError):
            rtslib.UserBackedStorageObject("u2", config="qcow/x/y")
    finally:
        rtslib.set_default_socket(None)
    exp = _export(ceph, image, workdir)
    assert ut.check_regions_in_file(exp, [(0, 8192, 0x3c)]) == []


def test_delete_lun_and_backstore_with_io_in_flight(config, utarget, ceph, workdir):
    """LUN and user:rbd object deleted while qemu-io keeps writing: the writes start
    failing, the daemon stays up and serves its other LUN, the image is closed (no
    watcher left) and nothing leaks (the fixture checks the sanitizer output)."""
    image = _image(ceph)

    def add_fileio(cfg, tpg):
        tpg.lun(1, cfg.fileio("f1", size=16 * MiB))

    d = _serve(config, utarget, ceph, image, extra=add_fileio)
    cmds = ["aio_write -P 0x%02x %d 1M" % (i % 200 + 1, (i % 60) * MiB) for i in range(400)]
    q = ut.qemu_io(d.image_opts(0, IQN), cmds + ["aio_flush"], popen=True)
    time.sleep(0.5)
    cli = os.environ.get("UTARGETCLI") or os.path.join(ut_repo(), "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h")}
    res = ut.run([cli, "/iscsi/%s/tpg1/luns" % IQN, "delete", "lun0"], env=env)
    assert res.returncode == 0, ut.describe(res, d)
    res = ut.run([cli, "/backstores/user:rbd", "delete", "r0"], env=env)
    assert res.returncode == 0, ut.describe(res, d)
    try:
        q.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        q.kill()
        q.communicate()
    assert d.proc.poll() is None, d.stderr_tail()
    res = ut.qemu_io(d.image_opts(1, IQN), ["write -P 0x21 0 65536", "read -P 0x21 0 65536"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    # the image was closed: no watcher of ours is left on its header
    deadline = time.monotonic() + 15
    while True:
        st = ceph.rbd("status", "--format", "json", "rbd/" + image)
        if not json.loads(st.stdout).get("watchers"):
            break
        assert time.monotonic() < deadline, st.stdout
        time.sleep(0.5)


def _vpd(c, page):
    p, din = _cmd(c, bytes([0x12, 1, page, 0x10, 0, 0]), edtl=4096, read=True)
    assert p.status == 0, "INQUIRY VPD 0x%02x: status 0x%02x" % (page, p.status)
    return din


def _naa(vpd83):
    """The NAA designator of VPD 0x83 (SPC-4 7.8.6.6), hex."""
    d, end = 4, 4 + struct.unpack(">H", vpd83[2:4])[0]
    while d + 4 <= end:
        n = vpd83[d + 3]
        if vpd83[d + 1] & 0x0f == 3 and (vpd83[d + 1] >> 4) & 3 == 0:
            return vpd83[d + 4:d + 4 + n].hex()
        d += 4 + n
    raise AssertionError("no NAA designator in VPD 0x83: %s" % vpd83.hex())


def test_two_gateways_one_image_same_lu_identity(config, utarget, ceph, workdir):
    """Issue 18's first step: two utargetd (two gateways on their own ports) create
    a user:rbd object on the same image, with no wwn given: both report the same unit
    serial (VPD 0x80) and NAA (VPD 0x83), derived from the image (cluster fsid, pool id,
    image id), so an initiator sees one LU with two paths; the same object made again
    has the same identity; another image has another. Data written through one gateway
    reads back through the other."""
    image, other = _image(ceph, 32 * MiB), _image(ceph, 32 * MiB)
    cli = os.environ.get("UTARGETCLI") or os.path.join(ut_repo(), "build", "utargetcli")
    gws = []
    for i, ip in enumerate(("127.0.0.1", "127.0.0.1")):
        cfg = ut.Config(ut.free_port(), workdir)
        cfg.target(IQN).tpg(i + 1, portals=[(ip, cfg.port)])
        d = utarget(cfg, name="gw%d" % i)
        env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h%d" % i)}

        def run(*args, env=env, d=d):
            res = ut.run([cli] + list(args), env=env, timeout=60)
            assert res.returncode == 0 and "AddressSanitizer" not in res.stderr, \
                ut.describe(res, d)
            return res
        run("/backstores/user:rbd", "create", "name=r0", "cfgstring=" + ceph.cfgstring(image))
        run("/iscsi/%s/tpg%d/luns" % (IQN, i + 1), "create", "/backstores/user:rbd/r0", "0")
        gws.append((d, ip, cfg.port, run))

    def identity(ip, port):
        c = raw.RawConn(ip, port)
        with c:
            c.login(target=IQN)
            for _ in range(4):
                p, _ = c.command(bytes(6))
                if p is not None and p.status == 0:
                    break
            serial = _vpd(c, 0x80)
            return serial[4:4 + serial[3]].decode().strip(), _naa(_vpd(c, 0x83))

    a, b = identity(*gws[0][1:3]), identity(*gws[1][1:3])
    assert a == b, (a, b)
    assert a[0] and len(a[1]) == 32, a      # NAA IEEE Registered Extended (6h)
    # through gateway A, back through gateway B
    url = "driver=iscsi,transport=tcp,portal=%s:%d,target=%s,lun=0"
    res = ut.qemu_io(url % (gws[0][1], gws[0][2], IQN), ["write -P 0x3c 0 1M"])
    assert not ut.qemu_io_problems(res), ut.describe(res, gws[0][0])
    res = ut.qemu_io(url % (gws[1][1], gws[1][2], IQN), ["read -P 0x3c 0 1M"],
                     read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, gws[1][0])

    # made again on gateway B: the same identity; another image: another
    d, ip, port, run = gws[1]
    run("/iscsi/%s/tpg2/luns" % IQN, "delete", "lun0")
    run("/backstores/user:rbd", "delete", "r0")
    run("/backstores/user:rbd", "create", "name=r0", "cfgstring=" + ceph.cfgstring(image))
    run("/backstores/user:rbd", "create", "name=r1", "cfgstring=" + ceph.cfgstring(other))
    run("/iscsi/%s/tpg2/luns" % IQN, "create", "/backstores/user:rbd/r0", "0")
    assert identity(ip, port) == a
    run("/iscsi/%s/tpg2/luns" % IQN, "delete", "lun0")
    run("/iscsi/%s/tpg2/luns" % IQN, "create", "/backstores/user:rbd/r1", "0")
    c_other = identity(ip, port)
    assert c_other[0] != a[0] and c_other[1] != a[1], (c_other, a)
    # a wwn given at create time still wins (LIO's wwn= argument)
    wwn = str(uuid.uuid4())
    run("/backstores/user:rbd", "create", "name=r2", "wwn=" + wwn,
        "cfgstring=" + ceph.cfgstring(_image(ceph, 8 * MiB)))
    saved = os.path.join(str(workdir), "gw.json")
    run("saveconfig", saved)
    sos = {s["name"]: s for s in json.load(open(saved))["storage_objects"]}
    assert sos["r2"]["wwn"] == wwn and sos["r0"]["wwn"] == a[0], sos
