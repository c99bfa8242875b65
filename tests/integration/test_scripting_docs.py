"""The examples of docs/scripting.md run against a live utargetd, with only
their image path and portal changed (tests never listen on 3260), and the
target they build serves its initiator."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import rtslib_testutil as rt
import uthelpers as ut

from utarget import rtslib
from utarget.rtslib import RTSRoot

DOC = rt.REPO / "docs" / "scripting.md"
WWN = "iqn.2003-01.org.example:disk1"
INITIATOR = "iqn.1994-05.com.example:host1"


@pytest.fixture(autouse=True)
def _reset_default_client():
    yield
    rtslib.set_default_socket(None)


def blocks(lang):
    return re.findall(r"```%s\n(.*?)```" % lang, DOC.read_text(), re.S)


def adapt(src, workdir, port):
    assert src.count("/srv/disk1.img") == 1 and src.count('"0.0.0.0", 3260') == 1
    return (src.replace("/srv/disk1.img", os.path.join(str(workdir), "disk1.img"))
               .replace('"0.0.0.0", 3260', '"127.0.0.1", %d' % port))


def start(utarget, config):
    config.target("iqn.2003-01.org.example.utarget:placeholder").tpg()
    d = utarget(config)
    port = ut.free_port()
    while port == config.port:
        port = ut.free_port()
    return d, port


def check_tree(d, port, auth):
    cfg = RTSRoot(d.sock).dump()
    (so,) = cfg["storage_objects"]
    assert (so["plugin"], so["name"], so["size"]) == ("fileio", "disk1", 1 << 30)
    (t,) = [t for t in cfg["targets"] if t["wwn"] == WWN]
    (tpg,) = t["tpgs"]
    assert tpg["enable"] is True and tpg["attributes"]["authentication"] == auth
    assert [(p["ip_address"], p["port"]) for p in tpg["portals"]] == [("127.0.0.1", port)]
    (acl,) = tpg["node_acls"]
    assert acl["node_wwn"] == INITIATOR
    assert [(m["index"], m["tpg_lun"]) for m in acl["mapped_luns"]] == [(0, 0)]


def test_python_example(utarget, config, workdir):
    d, port = start(utarget, config)
    src = adapt(blocks("python")[0], workdir, port)
    script = os.path.join(str(workdir), "doc_example.py")
    with open(script, "w") as f:
        f.write(src)
    res = subprocess.run([sys.executable, script], capture_output=True, text=True,
                         env=rt.python_env(d.sock), timeout=120)
    assert res.returncode == 0, res.stderr + d.stderr_tail(2000)
    check_tree(d, port, auth=1)
    # The example turned CHAP on: the initiator gets in with its secret only.
    url = "iscsi://127.0.0.1:%d/%s/0" % (port, WWN)
    res, fields = ut.iscsi_inq(url.replace("iscsi://", "iscsi://host1%a-long-secret@"),
                               initiator=INITIATOR)
    assert res.returncode == 0, ut.describe(res, d)
    res, _ = ut.iscsi_inq(url, initiator=INITIATOR)
    assert res.returncode != 0, ut.describe(res, d)


def test_c_example(utarget, config, workdir):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    lib = sorted((rt.REPO / "src" / "lib").glob("*.c"))
    if not cc or not lib:
        pytest.skip("no C compiler or no libutarget sources")
    d, port = start(utarget, config)
    (src,) = blocks("c")
    c_file = os.path.join(str(workdir), "example.c")
    exe = os.path.join(str(workdir), "example")
    with open(c_file, "w") as f:
        f.write(adapt(src, workdir, port))
    res = ut.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                  "-I%s" % (rt.REPO / "include"), "-I%s" % (rt.REPO / "src"), "-o", exe,
                  c_file] + [str(p) for p in lib] + ["-ljansson"])
    assert res.returncode == 0, ut.describe(res)
    res = ut.run([exe], env={"UTARGET_SOCKET": d.sock})
    assert res.returncode == 0, ut.describe(res, d)
    check_tree(d, port, auth=0)
    res, fields = ut.iscsi_inq("iscsi://127.0.0.1:%d/%s/0" % (port, WWN), initiator=INITIATOR)
    assert res.returncode == 0, ut.describe(res, d)
    # A second run finds everything there: -EEXIST, the daemon's words, exit 1.
    res = ut.run([exe], env={"UTARGET_SOCKET": d.sock})
    assert res.returncode == 1 and "already exists" in res.stderr, ut.describe(res, d)
