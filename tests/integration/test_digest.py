"""Digest policy: a portal group that offers only CRC32C requires header digests."""

import uthelpers as ut


def test_crc32c_only_tpg_refuses_initiators_without_digests(config, utarget):
    rd = config.ramdisk("rd0")
    config.target().tpg(parameters={"HeaderDigest": "CRC32C"}).lun(0, rd)
    daemon = utarget(config)

    # an initiator that offers CRC32C gets in and does verified I/O with it
    res = ut.qemu_io(daemon.image_opts(digest="crc32c"),
                     ["write -P 0x5a 0 64k", "read -P 0x5a 0 64k"],
                     env={"LIBISCSI_DEBUG": "6"})
    assert not ut.qemu_io_problems(res), ut.describe(res, daemon)
    assert "HeaderDigest=CRC32C" in res.stderr

    # one that insists on no digest is refused at login
    res = ut.qemu_io(daemon.image_opts(digest="none"), ["read 0 4k"])
    assert res.returncode != 0, "an initiator without digests logged in"
    assert "requires CRC32C digests" in daemon.stderr_tail()
