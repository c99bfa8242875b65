"""`make run` (scripts/run-default.sh) serves what README and the script promise."""

import json
import os

import uthelpers as ut
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IQN = "iqn.2003-01.org.linux-iscsi.localhost:sn.default"


def test_default_config_file():
    with open(os.path.join(str(REPO), "etc", "default-saveconfig.json")) as f:
        cfg = json.load(f)
    (so,) = cfg["storage_objects"]
    assert (so["plugin"], so["name"], so["size"]) == ("ramdisk", "ramdisk0", 64 * ut.MiB)
    (tgt,) = cfg["targets"]
    assert tgt["wwn"] == DEFAULT_IQN
    (tpg,) = tgt["tpgs"]
    assert tpg["portals"] == [{"ip_address": "127.0.0.1", "port": 3260}]
    assert tpg["attributes"]["generate_node_acls"] == 1
    assert tpg["attributes"]["demo_mode_write_protect"] == 0
    assert tpg["attributes"]["authentication"] == 0


def test_run_default_script(config, utarget, utargetd_bin, workdir):
    state = os.path.join(str(workdir), "state")
    script = os.path.join(str(REPO), "scripts", "run-default.sh")
    d = utarget(config, name="run-default", argv=[script, utargetd_bin],
                env={"UTARGET_PORT": str(config.port), "UTARGET_STATE_DIR": state})

    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True)
    assert res.returncode == 0, ut.describe(res, d)
    assert list(targets) == [DEFAULT_IQN], ut.describe(res, d)
    assert targets[DEFAULT_IQN]["luns"] == {
        0: {"type": "DIRECT_ACCESS", "size": ut.iscsi_ls_size(64 * ut.MiB, 512)}}, \
        ut.describe(res, d)
    res = ut.qemu_io(ut.image_opts(config.port, DEFAULT_IQN, 0),
                     ["write -P 0xd5 0 1M", "read -P 0xd5 0 1M"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)

    with open(d.stdout_path) as f:
        banner = f.read()
    assert "iscsi-ls -s iscsi://127.0.0.1:%d" % config.port in banner
    assert os.path.exists(os.path.join(state, "saveconfig.json"))
