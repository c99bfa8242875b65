"""What an admin checks first: the target is discoverable, its LUNs have the right sizes,
the device identifies as LIO-ORG with the backstore's serial, and capacity is exact."""

import pytest

import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET
IQN2 = "iqn.2003-01.org.linux-iscsi.test:t2"


def test_iscsi_ls_lists_target_and_lun_sizes(config, utarget):
    rd0 = config.ramdisk("rd0", size=64 * MiB)
    rd1 = config.ramdisk("rd1", size=16 * MiB, block_size=4096)
    f0 = config.fileio("f0", size=32 * MiB)
    config.target(IQN).tpg().lun(0, rd0).lun(1, rd1).lun(5, f0)
    d = utarget(config)

    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True)
    assert res.returncode == 0, ut.describe(res, d)
    assert list(targets) == [IQN], ut.describe(res, d)
    t = targets[IQN]
    assert t["portals"] == ["127.0.0.1:%d,1" % d.port], ut.describe(res, d)
    assert sorted(t["luns"]) == [0, 1, 5], ut.describe(res, d)
    for lun, size, bs in ((0, 64 * MiB, 512), (1, 16 * MiB, 4096), (5, 32 * MiB, 512)):
        assert t["luns"][lun]["type"] == "DIRECT_ACCESS", ut.describe(res, d)
        assert t["luns"][lun]["size"] == ut.iscsi_ls_size(size, bs), \
            "LUN %d size\n%s" % (lun, ut.describe(res, d))


@pytest.mark.parametrize("plugin", ["ramdisk", "fileio"])
def test_inquiry_vendor_type_and_serial(config, utarget, plugin):
    wwn = "6f1d2c3b-4a59-4687-9a1b-0c2d3e4f5a6b"
    if plugin == "ramdisk":
        so = config.ramdisk("rd0", wwn=wwn)
    else:
        so = config.fileio("f0", wwn=wwn)
    config.target(IQN).tpg().lun(0, so)
    d = utarget(config)

    res, inq = ut.iscsi_inq(d.lun_url(0))
    assert res.returncode == 0, ut.describe(res, d)
    assert inq.get("Vendor", "").strip() == "LIO-ORG", ut.describe(res, d)
    assert inq.get("Peripheral Device Type") == "DIRECT_ACCESS", ut.describe(res, d)
    assert inq.get("Peripheral Qualifier") == "CONNECTED", ut.describe(res, d)

    res, vpd = ut.iscsi_inq(d.lun_url(0), evpd=1, page=0x80)
    assert res.returncode == 0, ut.describe(res, d)
    assert ut.unit_serial(vpd) == wwn, ut.describe(res, d)

    res, pages = ut.iscsi_inq(d.lun_url(0), evpd=1, page=0x00)
    assert res.returncode == 0, ut.describe(res, d)
    for page in ("Page:0x80 UNIT_SERIAL_NUMBER", "Page:0x83 DEVICE_IDENTIFICATION"):
        assert page in res.stdout, ut.describe(res, d)


def test_serial_differs_per_lun(config, utarget):
    a = config.ramdisk("rd0")
    b = config.ramdisk("rd1")
    config.target(IQN).tpg().lun(0, a).lun(1, b)
    d = utarget(config)
    serials = []
    for lun, so in ((0, a), (1, b)):
        res, vpd = ut.iscsi_inq(d.lun_url(lun), evpd=1, page=0x80)
        assert res.returncode == 0, ut.describe(res, d)
        serials.append(ut.unit_serial(vpd))
        assert serials[-1] == config.so(so)["wwn"], ut.describe(res, d)
    assert serials[0] != serials[1]


@pytest.mark.parametrize("block_size,size", [(512, 64 * MiB), (4096, 64 * MiB),
                                             (4096, 48 * MiB + 4096)])
def test_readcapacity16(config, utarget, block_size, size):
    rd = config.ramdisk("rd0", size=size, block_size=block_size)
    config.target(IQN).tpg().lun(0, rd)
    d = utarget(config)
    res, cap = ut.readcap16(d.lun_url(0))
    assert res.returncode == 0, ut.describe(res, d)
    assert cap.get("block_size") == block_size, ut.describe(res, d)
    assert cap.get("last_lba") == size // block_size - 1, ut.describe(res, d)
    assert cap.get("total") == size, ut.describe(res, d)


def test_readcapacity16_fileio_4k(config, utarget):
    f0 = config.fileio("f0", size=32 * MiB, block_size=4096)
    config.target(IQN).tpg().lun(0, f0)
    d = utarget(config)
    res, cap = ut.readcap16(d.lun_url(0))
    assert res.returncode == 0, ut.describe(res, d)
    assert (cap.get("block_size"), cap.get("last_lba")) == (4096, 32 * MiB // 4096 - 1), \
        ut.describe(res, d)


def test_discovery_lists_every_target(config, utarget):
    config.target(IQN).tpg().lun(0, config.ramdisk("rd0"))
    config.target(IQN2).tpg().lun(0, config.ramdisk("rd1", size=16 * MiB))
    d = utarget(config)

    res, targets = ut.iscsi_ls(d.portal_url)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets) == sorted([IQN, IQN2]), ut.describe(res, d)
    for iqn in (IQN, IQN2):
        assert targets[iqn]["portals"] == ["127.0.0.1:%d,1" % d.port], ut.describe(res, d)
        assert targets[iqn]["luns"] == {}, "no -s: no LUN lines\n" + ut.describe(res, d)

    # Both are also usable, each with its own LUN 0.
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True)
    assert res.returncode == 0, ut.describe(res, d)
    assert targets[IQN]["luns"][0]["size"] == ut.iscsi_ls_size(64 * MiB, 512)
    assert targets[IQN2]["luns"][0]["size"] == ut.iscsi_ls_size(16 * MiB, 512)


def test_disabled_tpg_is_not_discovered(config, utarget):
    config.target(IQN).tpg().lun(0, config.ramdisk("rd0"))
    config.target(IQN2).tpg(enable=False).lun(0, config.ramdisk("rd1"))
    d = utarget(config)
    res, targets = ut.iscsi_ls(d.portal_url)
    assert res.returncode == 0, ut.describe(res, d)
    assert list(targets) == [IQN], ut.describe(res, d)
    res, _ = ut.iscsi_inq("iscsi://127.0.0.1:%d/%s/0" % (d.port, IQN2))
    assert res.returncode != 0, "login to a disabled TPG succeeded\n" + ut.describe(res, d)
