"""Node ACLs with generate_node_acls=0: only listed initiators log in, and each sees only
its mapped LUNs, under the mapped LUN numbers."""

import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET
CLIENT1 = "iqn.1994-05.com.example:client1"
CLIENT2 = "iqn.1994-05.com.example:client2"
READER = "iqn.1994-05.com.example:reader"
INTRUDER = "iqn.1994-05.com.example:intruder"


def _acl_config(config):
    rd0 = config.ramdisk("rd0", size=64 * MiB)
    rd1 = config.ramdisk("rd1", size=16 * MiB)
    tpg = config.target(IQN).tpg(generate_node_acls=0)
    tpg.lun(0, rd0).lun(1, rd1)
    tpg.acl(CLIENT1).map(0, 0)                    # LUN 0 -> rd0
    tpg.acl(CLIENT2).map(3, 0).map(1, 1)          # LUN 3 -> rd0, LUN 1 -> rd1
    tpg.acl(READER).map(0, 0, write_protect=True)  # rd0, read-only
    return config


def test_unlisted_initiator_is_refused(config, utarget):
    d = utarget(_acl_config(config))
    res, _ = ut.iscsi_inq(d.lun_url(0), initiator=INTRUDER)
    assert res.returncode != 0, "unlisted initiator got in\n" + ut.describe(res, d)
    assert "Login" in res.stdout + res.stderr, "refused at login\n" + ut.describe(res, d)

    res = ut.qemu_io(d.image_opts(0, initiator=INTRUDER), ["read 0 4096"])
    assert res.returncode != 0, "unlisted initiator read data\n" + ut.describe(res, d)

    # The refusal is about the name, not a dead daemon: a listed initiator gets in.
    res, inq = ut.iscsi_inq(d.lun_url(0), initiator=CLIENT1)
    assert res.returncode == 0, ut.describe(res, d)
    assert inq.get("Vendor", "").strip() == "LIO-ORG", ut.describe(res, d)


def test_initiators_see_only_their_mapped_luns(config, utarget):
    d = utarget(_acl_config(config))

    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=CLIENT1)
    assert res.returncode == 0, ut.describe(res, d)
    luns = targets.get(IQN, {}).get("luns", {})
    assert sorted(luns) == [0], ut.describe(res, d)
    assert luns[0]["size"] == ut.iscsi_ls_size(64 * MiB, 512), ut.describe(res, d)

    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=CLIENT2)
    assert res.returncode == 0, ut.describe(res, d)
    luns = targets.get(IQN, {}).get("luns", {})
    assert sorted(luns) == [1, 3], ut.describe(res, d)
    assert luns[3]["size"] == ut.iscsi_ls_size(64 * MiB, 512), ut.describe(res, d)
    assert luns[1]["size"] == ut.iscsi_ls_size(16 * MiB, 512), ut.describe(res, d)

    # client1 has no LUN 1 (the TPG has one, but it is not mapped for client1).
    res, _ = ut.iscsi_inq(d.lun_url(1), initiator=CLIENT1)
    assert res.returncode != 0, "client1 reached unmapped LUN 1\n" + ut.describe(res, d)
    assert "LOGICAL_UNIT_NOT_SUPPORTED" in res.stdout + res.stderr, ut.describe(res, d)

    # client2 has no LUN 0. LIO answers on an unmapped LUN 0 from a virtual LUN 0
    # (peripheral qualifier "not connected") so REPORT LUNS works; either way there must
    # be no disk there.
    res, inq = ut.iscsi_inq(d.lun_url(0), initiator=CLIENT2)
    assert res.returncode != 0 or inq.get("Peripheral Qualifier") != "CONNECTED" \
        or inq.get("Peripheral Device Type") != "DIRECT_ACCESS", \
        "client2 sees a disk at unmapped LUN 0\n" + ut.describe(res, d)

    # client2's LUN 3 and client1's LUN 0 are the same backstore.
    res = ut.qemu_io(d.image_opts(3, initiator=CLIENT2),
                     ["write -P 0x3c 0 65536", "write -P 0x3d %d 4096" % (64 * MiB - 4096)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    res = ut.qemu_io(d.image_opts(0, initiator=CLIENT1),
                     ["read -P 0x3c 0 65536", "read -P 0x3d %d 4096" % (64 * MiB - 4096)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)


def test_write_protected_mapping(config, utarget):
    d = utarget(_acl_config(config))
    res = ut.qemu_io(d.image_opts(0, initiator=CLIENT1), ["write -P 0x5e 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)

    res = ut.qemu_io(d.image_opts(0, initiator=READER), ["read -P 0x5e 0 4096"], read_only=True)
    assert not ut.qemu_io_problems(res), "read through a write-protected mapping\n" + \
        ut.describe(res, d)
    res = ut.qemu_io(d.image_opts(0, initiator=READER), ["write -P 0x77 0 4096"])
    assert ut.qemu_io_problems(res), "write through a write-protected mapping succeeded\n" + \
        ut.describe(res, d)

    res = ut.qemu_io(d.image_opts(0, initiator=CLIENT1), ["read -P 0x5e 0 4096"], read_only=True)
    assert not ut.qemu_io_problems(res), "data changed through a write-protected mapping\n" + \
        ut.describe(res, d)
