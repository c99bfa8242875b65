"""Many control clients at once (issue 21, beyond LIO): the daemon serialises them, so API
clients and utargetcli runs working at the same time never lose a change or corrupt the
saved file; a change based on a stale read is refused when the client asks for the check
(if_version), with a clear error and the configuration unchanged.
"""

import glob
import json
import os
import subprocess
import threading

import uthelpers as ut
from rpcclient import RpcClient
from uthelpers import MiB

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFLICT = -32003


def _daemon(config, utarget):
    config.target().tpg().lun(0, config.ramdisk("sentinel", size=MiB))
    d = utarget(config)
    return d, RpcClient(d.sock).connect()


def test_if_version_refuses_a_change_on_stale_state(config, utarget):
    d, a = _daemon(config, utarget)
    b = RpcClient(d.sock).connect()
    v = a.call("get_config", with_version=True)["config_version"]
    # reads, and refused changes, leave the version alone
    a.call("get_config")
    a.call("sessions")
    a.error("target.create", wwn="not a name")
    assert a.call("get_config", with_version=True)["config_version"] == v
    # A changes first: its answer carries the version its change left
    r = a.call("target.create", wwn="iqn.2003-01.org.example:a", if_version=v)
    assert r == {"wwn": "iqn.2003-01.org.example:a", "config_version": v + 1}
    # B read before A's change: refused, nothing applied
    before = b.call("get_config")
    e = b.error("target.create", wwn="iqn.2003-01.org.example:b", if_version=v)
    assert e.code == CONFLICT, e
    assert "changed since version %d" % v in e.message and "now %d" % (v + 1) in e.message
    assert b.call("get_config") == before
    # after reading again it goes through
    v2 = b.call("get_config", with_version=True)["config_version"]
    assert v2 == v + 1
    assert b.call("target.create", wwn="iqn.2003-01.org.example:b",
                  if_version=v2)["config_version"] == v + 2
    # without if_version nothing is checked (LIO's tools never send it)
    a.call("target.delete", wwn="iqn.2003-01.org.example:b")
    for bad in (-1, "3", 1.5, None, True):
        e = a.error("target.delete", wwn="iqn.2003-01.org.example:a", if_version=bad)
        assert e.code == -32602 and "if_version" in e.message, (bad, e)
    assert "iqn.2003-01.org.example:a" in [t["wwn"] for t in a.call("get_config")["targets"]]
    a.close()
    b.close()


def test_many_clients_at_once_lose_nothing(config, utarget, workdir):
    d, rpc = _daemon(config, utarget)
    saved = d.cfg_path
    errors = []
    threads_n, per = 4, 8

    def api_worker(k):
        try:
            with RpcClient(d.sock).connect() as c:
                for i in range(per):
                    name = "w%d_%d" % (k, i)
                    wwn = "iqn.2003-01.org.example:w%d-%d" % (k, i)
                    c.call("backstore.create", plugin="ramdisk", name=name, size=MiB)
                    c.call("target.create", wwn=wwn)
                    c.call("tpg.create", wwn=wwn, tag=1)
                    c.call("lun.create", wwn=wwn, tag=1,
                           storage_object="/backstores/ramdisk/" + name)
                    c.call("save_config", max_backup_files=3)
                    c.call("get_config")
        except Exception as e:  # reported below, with the thread
            errors.append("api worker %d: %r" % (k, e))

    cli = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "h"),
           "TERM": "dumb"}

    def cli_worker(k):
        script = "".join("/backstores/ramdisk create c%d_%d 1M\nsaveconfig\n" % (k, i)
                         for i in range(per))
        res = subprocess.run([cli], input=script, env=env, capture_output=True, text=True,
                             timeout=120)
        if res.returncode != 0:
            errors.append("utargetcli %d: %s" % (k, res.stderr))

    ts = [threading.Thread(target=api_worker, args=(k,)) for k in range(threads_n)]
    ts += [threading.Thread(target=cli_worker, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, "\n".join(errors)
    cfg = rpc.call("get_config")
    names = {so["name"] for so in cfg["storage_objects"]}
    want = {"w%d_%d" % (k, i) for k in range(threads_n) for i in range(per)} | \
        {"c%d_%d" % (k, i) for k in range(2) for i in range(per)}
    assert want <= names, sorted(want - names)
    luns = {t["wwn"]: t["tpgs"][0]["luns"] for t in cfg["targets"] if ":w" in t["wwn"]}
    assert len(luns) == threads_n * per and all(len(v) == 1 for v in luns.values())
    # the file and every backup are whole JSON; one last save holds exactly the config
    rpc.call("save_config")
    with open(saved) as f:
        assert json.load(f) == cfg
    backups = glob.glob(os.path.join(os.path.dirname(saved), "backup", "*"))
    assert backups
    for b in backups:
        with open(b) as f:
            json.load(f)
    # the daemon still serves I/O
    res = ut.qemu_io(d.image_opts(0), ["write -P 0x11 0 4096", "read -P 0x11 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
