"""Data integrity through a real initiator (qemu's iscsi driver) on every backstore type,
with and without CRC32C header digests, and a qemu-img round trip."""

import hashlib
import os

import pytest

import uthelpers as ut
from uthelpers import KiB, MiB

IQN = ut.DEFAULT_TARGET
SIZE = 64 * MiB
BS = 512

# Non-overlapping (offset, length, pattern): 4 KiB, 128 KiB, 1 MiB and 4 MiB requests at
# the start, at unaligned-to-request-size offsets, across MiB boundaries and at the very
# end of the LUN (the last block included).
REGIONS = [
    (0, 4 * KiB, 0x11),
    (4 * KiB, 128 * KiB, 0x12),                # 128 KiB at a 4 KiB offset
    (1 * MiB, 1 * MiB, 0x13),
    (3 * MiB - 64 * KiB, 128 * KiB, 0x14),     # crosses a MiB boundary
    (5 * MiB + 4 * KiB, 1 * MiB, 0x15),        # 1 MiB not MiB-aligned
    (8 * MiB, 4 * MiB, 0x16),                  # larger than MaxBurstLength
    (33 * MiB - 4 * KiB, 4 * KiB, 0x17),
    (SIZE - BS - 4 * KiB - 128 * KiB - 1 * MiB, 1 * MiB, 0x18),
    (SIZE - BS - 4 * KiB - 128 * KiB, 128 * KiB, 0x19),
    (SIZE - BS - 4 * KiB, 4 * KiB, 0x1a),
    (SIZE - BS, BS, 0x1b),                     # the last block
]
NEVER_WRITTEN = [(40 * MiB, 1 * MiB), (2 * MiB, 512 * KiB)]
OVERWRITE = [(0, 4 * KiB, 0x21), (1 * MiB, 1 * MiB, 0x22), (SIZE - BS, BS, 0x23)]

BACKSTORES = ["ramdisk", "fileio-writethrough", "fileio-writeback", "block"]


def _final_regions():
    final = {off: (off, ln, p) for off, ln, p in REGIONS}
    for off, ln, p in OVERWRITE:
        final[off] = (off, ln, p)
    return sorted(final.values())


def _make_lun(config, kind, loop_factory):
    if kind == "ramdisk":
        return config.ramdisk("rd0", size=SIZE), None
    if kind.startswith("fileio"):
        so = config.fileio("f0", size=SIZE, write_back=(kind == "fileio-writeback"))
        return so, config.so(so)["dev"]
    dev = loop_factory(SIZE)
    return config.block("b0", dev), dev


@pytest.mark.parametrize("digest", ["none", "crc32c"])
@pytest.mark.parametrize("kind", BACKSTORES)
def test_qemu_io_patterns(config, utarget, loop_factory, kind, digest):
    so, backing = _make_lun(config, kind, loop_factory)
    config.target(IQN).tpg().lun(0, so)
    d = utarget(config)
    opts = d.image_opts(0, digest=digest)
    env = {"LIBISCSI_DEBUG": "6"}  # libiscsi prints the negotiated HeaderDigest

    cmds = (ut.pattern_commands(REGIONS, "write") + ut.pattern_commands(REGIONS, "read")
            + ["read -P 0 %d %d" % z for z in NEVER_WRITTEN]
            + ut.pattern_commands(OVERWRITE, "write") + ["flush"]
            + ut.pattern_commands(_final_regions(), "read"))
    res = ut.qemu_io(opts, cmds, env=env)
    assert not ut.qemu_io_problems(res), "%s\n%s" % (ut.qemu_io_problems(res),
                                                     ut.describe(res, d))
    want = "TargetLoginReply: HeaderDigest=%s" % {"none": "None", "crc32c": "CRC32C"}[digest]
    assert want in res.stderr, "header digest not negotiated as asked (%s)\n%s" % (
        want, ut.describe(res, d))
    assert res.stdout.count("wrote ") == len(REGIONS) + len(OVERWRITE), ut.describe(res, d)

    # A second session sees the same data (nothing lives only in a per-session cache).
    res = ut.qemu_io(d.image_opts(0, digest=digest), ut.pattern_commands(_final_regions(), "read"),
                     read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)

    d.stop()
    if backing is not None:
        bad = ut.check_regions_in_file(backing, _final_regions(), NEVER_WRITTEN)
        assert not bad, "%s %s after the daemon stopped:\n%s" % (kind, backing, "\n".join(bad))
        if kind.startswith("fileio"):
            assert os.path.getsize(backing) == SIZE


@pytest.mark.parametrize("kind", ["ramdisk", "fileio-writeback"])
def test_qemu_img_convert_round_trip(config, utarget, loop_factory, workdir, kind):
    so, _ = _make_lun(config, kind, loop_factory)
    config.target(IQN).tpg().lun(0, so)
    d = utarget(config)

    src = os.path.join(str(workdir), "random.img")
    data = os.urandom(16 * MiB)
    with open(src, "wb") as f:
        f.write(data)
    res = ut.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", src, d.lun_url(0)])
    assert res.returncode == 0, ut.describe(res, d)

    back = os.path.join(str(workdir), "back.img")
    res = ut.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", d.lun_url(0), back])
    assert res.returncode == 0, ut.describe(res, d)
    assert os.path.getsize(back) == SIZE, "image read back has the LUN's size"
    with open(back, "rb") as f:
        head = f.read(16 * MiB)
        rest = f.read()
    assert hashlib.sha256(head).hexdigest() == hashlib.sha256(data).hexdigest(), \
        "first 16 MiB read back differ from what was written"
    assert rest == bytes(len(rest)), "the rest of a fresh LUN reads as zeros"

    res = ut.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, d.lun_url(0)])
    # compare: 0 = identical, 1 = differ; a 16 MiB image vs a 64 MiB LUN whose tail is
    # zero counts as identical.
    assert res.returncode == 0, ut.describe(res, d)
