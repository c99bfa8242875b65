"""utargetcli against a live utargetd (issue 5): one-shot and batch modes build a whole
tree; messages, `ls` shapes, errors with exit codes, get/set groups, saveconfig, globals
kept per user; and one interactive session through tmux (completion, `cd <`, history).

The daemon needs a portal to be "up" (uthelpers.Daemon waits for it), so every test starts
from the sentinel target of the config fixture and builds its own objects beside it.
New targets get no default portal (set global auto_add_default_portal=false): 0.0.0.0:3260
may belong to someone else on a shared machine.
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import time

import pytest

import uthelpers as ut
from uthelpers import MiB

REPO = ut.__file__ and os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(ut.__file__))))
WWN = "iqn.2003-01.org.linux-iscsi.cli:t2"
INIT = "iqn.1994-05.com.redhat:client"
TPG = "/iscsi/%s/tpg1" % WWN


def _cli_path():
    p = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    return p if os.path.isabs(p) else os.path.join(REPO, p)


@pytest.fixture(scope="session")
def cli_bin():
    p = _cli_path()
    if not os.access(p, os.X_OK):
        pytest.fail("utargetcli not built: %s (run `make`)" % p, pytrace=False)
    return p


@pytest.fixture
def shell(config, utarget, workdir, cli_bin):
    """(daemon, run) where run(*args, input=None) runs utargetcli one-shot (args) or batch
    (input) against the daemon with a private UTARGETCLI_HOME."""
    rd = config.ramdisk("sentinel", size=4 * MiB)
    config.target().tpg().lun(0, rd)
    d = utarget(config)
    home = os.path.join(str(workdir), "clihome")
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": home, "TERM": "dumb",
           "ASAN_OPTIONS": "detect_leaks=1"}

    def run(*args, input=None):
        res = ut.run([cli_bin] + list(args), env=env, input=input, timeout=60)
        assert "AddressSanitizer" not in res.stderr and "runtime error:" not in res.stderr, \
            ut.describe(res, d)
        return res

    res = run("set", "global", "auto_add_default_portal=false")
    assert res.returncode == 0, ut.describe(res, d)
    # These tests compare whole outputs; the save at the end of a changing one-shot or
    # batch run is tested on its own (test_one_shot_and_batch_auto_save).
    res = run("set", "global", "auto_save_on_exit=false")
    assert res.returncode == 0, ut.describe(res, d)
    return d, run


def ok(res, d=None):
    assert res.returncode == 0 and res.stderr == "", ut.describe(res, d)
    return res.stdout


def failed(res, words, d=None):
    assert res.returncode == 1, ut.describe(res, d)
    for w in words:
        assert w in res.stderr, ut.describe(res, d)
    return res.stderr


def default_port_address():
    """A loopback address whose port 3260 is free right now, for the one step that shows
    targetcli's "Using default IP port 3260" (the portal is deleted at once). 127.0.0.1:3260
    may belong to another target on a shared machine (a CI run failed that way), so the
    address is a random one of 127.0.0.0/8; None when every try is taken (something holds
    the wildcard 0.0.0.0:3260)."""
    rnd = random.Random()
    for _ in range(8):
        addr = "127.%d.%d.%d" % (rnd.randrange(1, 255), rnd.randrange(0, 256),
                                 rnd.randrange(1, 255))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, 3260))
            return addr
        except OSError:
            continue
        finally:
            s.close()
    return None


def build_script(workdir, port2, addr):
    """The batch script; addr is default_port_address() (None: the default-port step is
    expected to fail cleanly, and the batch goes on)."""
    img = os.path.join(str(workdir), "disk1.img")
    addr = addr or "127.0.0.1"
    return img, "\n".join([
        "/backstores/fileio create disk1 %s 8M" % img,
        "/backstores/ramdisk create rd1 4M",
        "/iscsi create %s" % WWN,
        "cd %s" % TPG,
        "luns/ create /backstores/ramdisk/rd1",
        "luns/ create /backstores/fileio/disk1 lun=3",
        "portals/ create %s" % addr,
        "portals/ delete %s 3260" % addr,
        "portals/ create 127.0.0.1 %d" % port2,
        "acls/ create %s" % INIT,
        "cd acls/%s" % INIT,
        "create 7 lun3 write_protect=true",
        "pwd",
        "cd /",
        "",
    ])


def test_batch_builds_whole_tree_with_targetcli_messages(shell, workdir):
    d, run = shell
    addr = default_port_address()
    # a second free port, not port + 1 (a CI run found port + 1 taken)
    port2 = ut.free_port()
    img, script = build_script(workdir, port2, addr)
    res = run(input=script)
    if addr is None:
        # 3260 is taken on every address tried: the create is refused with LIO's words,
        # the delete finds nothing, everything else is built.
        assert res.returncode == 1 and res.stderr.splitlines()[0] == \
            "Could not listen on the portal: Address already in use", ut.describe(res, d)
        default_port = ["Using default IP port 3260"]
    else:
        assert res.returncode == 0 and res.stderr == "", ut.describe(res, d)
        default_port = ["Using default IP port 3260",
                        "Created network portal %s:3260." % addr,
                        "Deleted network portal %s:3260" % addr]
    assert res.stdout.splitlines() == [
        "Created fileio disk1 with size %d" % (8 * MiB),
        "Created ramdisk rd1 with size 4M.",
        "Created target %s." % WWN,
        "Created TPG 1.",
        "Created LUN 0.",
        "Created LUN 3.",
    ] + default_port + [
        "Created network portal 127.0.0.1:%d." % port2,
        "Created Node ACL for %s" % INIT,
        "Created mapped LUN 0.",
        "Created mapped LUN 3.",
        "Created Mapped LUN 7.",
        "%s/acls/%s" % (TPG, INIT),
    ]
    # The tree, in targetcli's shape: 80 columns when stdout is not a tty.
    tree = ok(run("ls", "/iscsi/" + WWN), d).splitlines()
    # (a status too long for the width gets no dots, as in configshell)
    assert all(len(line) == 80 or " .. " not in line for line in tree), "\n".join(tree)
    dots = lambda line: re.sub(r" \.* \[", " ... [", line)
    assert [dots(line) for line in tree] == [
        "o- %s ... [TPGs: 1]" % WWN,
        "  o- tpg1 ... [no-gen-acls, no-auth]",
        "    o- acls ... [ACLs: 1]",
        "    | o- %s ... [Mapped LUNs: 3]" % INIT,
        "    |   o- mapped_lun0 ... [lun0 ramdisk/rd1 (rw)]",
        "    |   o- mapped_lun3 ... [lun3 fileio/disk1 (rw)]",
        "    |   o- mapped_lun7 ... [lun3 fileio/disk1 (ro)]",
        "    o- luns ... [LUNs: 2]",
        "    | o- lun0 ... [ramdisk/rd1 (default_tg_pt_gp)]",
        "    | o- lun3 ... [fileio/disk1 (%s) (default_tg_pt_gp)]" % img,
        "    o- portals ... [Portals: 1]",
        "      o- 127.0.0.1:%d ... [OK]" % port2,
    ]
    top = ok(run("ls", "/", "1"), d).splitlines()
    assert top[0] == "o- / " + "." * 69 + " [...]"
    assert top[1].startswith("  o- backstores ..") and top[1].endswith(" [...]")
    assert top[2].startswith("  o- iscsi ..") and top[2].endswith(" [Targets: 2]")
    bs = ok(run("ls", "/backstores/fileio"), d)
    assert re.search(r"o- disk1 \.* ?\[%s \(8\.0MiB\) write-back activated\]" % re.escape(img), bs)
    assert "o- alua" in bs and "[ALUA Groups: 1]" in bs
    rd = ok(run("ls", "/backstores/ramdisk", "1"), d)
    assert re.search(r"o- rd1 \.+ \[\(4\.0MiB\) activated\]", rd)
    # Children sort with numbers compared numerically (lun2 before lun10).
    for n in (2, 10, 1):
        ok(run("/backstores/ramdisk", "create", "r%d" % n, "1M"), d)
        ok(run("%s/luns" % TPG, "create", "/backstores/ramdisk/r%d" % n, "lun%d" % n,
               "add_mapped_luns=false"), d)
    luns = [l.split()[1] for l in ok(run("ls", TPG + "/luns"), d).splitlines()[1:]]
    assert luns == ["lun0", "lun1", "lun2", "lun3", "lun10"]
    # Deleting by name or number both work.
    assert ok(run("%s/luns" % TPG, "delete", "lun10"), d) == "Deleted LUN 10.\n"
    assert ok(run("%s/luns" % TPG, "delete", "2"), d) == "Deleted LUN 2.\n"


def test_one_shot_errors_go_to_stderr_with_status_1(shell):
    d, run = shell
    ok(run("/backstores/ramdisk", "create", "r0", "1M"), d)
    ok(run("/iscsi", "create", WWN), d)
    # bad WWN, duplicate, missing object: the daemon's words, exit 1, nothing on stdout
    for args in (["/iscsi", "create", "iqn.bad_wwn"],
                 ["/iscsi", "create", WWN],
                 ["/backstores/ramdisk", "create", "r0", "1M"],
                 ["/backstores/fileio", "delete", "nosuch"],
                 ["/iscsi", "delete", "iqn.2003-01.org.linux-iscsi.cli:none"],
                 ["%s/luns" % TPG, "delete", "lun9"]):
        res = run(*args)
        assert res.returncode == 1 and res.stdout == "" and res.stderr.strip(), \
            ut.describe(res, d)
    failed(run("/nope", "ls"), ["No such path /nope"], d)
    failed(run("frobnicate"), ["Command not found frobnicate"], d)
    failed(run("/backstores/ramdisk", "create", "r1"), ["Missing required parameter size"], d)
    failed(run("/backstores/ramdisk", "create", "r1", "1M", "bogus=1"),
           ["Unexpected keyword parameter 'bogus'."], d)
    failed(run("ls", "/", "1", "2"), ["Got 3 positionnal parameters, expected at most 2."], d)
    failed(run("/backstores/ramdisk", "create", "r1", "lots"),
           ["Cannot interpret size, wrong format: lots"], d)
    failed(run("%s/luns" % TPG, "create", "/backstores/ramdisk/nosuch"),
           ["Invalid storage object /backstores/ramdisk/nosuch."], d)
    failed(run("clearconfig"), ["As a precaution, confirm=True needs to be set"], d)
    # Batch: the failing line reports, the others still run; the status is 1.
    res = run(input="/iscsi create iqn.bad_wwn\n/backstores/ramdisk create r2 1M\n")
    assert res.returncode == 1 and "Created ramdisk r2 with size 1M." in res.stdout, \
        ut.describe(res, d)


def test_get_set_groups_auth_and_secrets(shell):
    d, run = shell
    ok(run("/iscsi", "create", WWN), d)
    out = ok(run(TPG, "set", "attribute", "authentication=0", "demo_mode_write_protect=0",
                 "generate_node_acls=1", "cache_dynamic_acls=1"), d)
    assert out.splitlines() == ["Parameter authentication is now '0'.",
                                "Parameter demo_mode_write_protect is now '0'.",
                                "Parameter generate_node_acls is now '1'.",
                                "Parameter cache_dynamic_acls is now '1'."]
    assert ok(run(TPG, "get", "attribute", "generate_node_acls"), d) == "generate_node_acls=1 \n"
    assert "[gen-acls, no-auth]" in ok(run("ls", TPG, "0"), d)
    full = ok(run(TPG, "get", "attribute"), d)
    assert full.startswith("ATTRIBUTE CONFIG GROUP\n======================\n")
    assert "\nlogin_timeout=15\n----------------\n" in full
    failed(run(TPG, "set", "attribute", "login_timeout=99"), [], d)
    failed(run(TPG, "set", "attribute", "nosuch=1"),
           ["Unknown parameter nosuch in group 'attribute'."], d)
    failed(run(TPG, "get", "nogroup"), ["Unknown configuration group: nogroup"], d)
    out = ok(run(TPG, "set", "parameter", "MaxConnections=2"), d)
    assert out == "Parameter MaxConnections is now '2'.\n"

    ok(run("%s/acls" % TPG, "create", INIT), d)
    acl = "%s/acls/%s" % (TPG, INIT)
    # A short secret warns (stderr) and is still accepted.
    res = run(acl, "set", "auth", "userid=x", "password=short")
    assert res.returncode == 0, ut.describe(res, d)
    assert res.stdout.splitlines() == ["Parameter userid is now 'x'.",
                                       "Parameter password is now 'short'."]
    assert "password is 5 bytes" in res.stderr
    assert "Warning: CHAP is optional in this TPG: set attribute authentication=1 to " \
        "require it." in res.stderr, ut.describe(res, d)
    assert "[1-way auth (optional), Mapped LUNs: 0]" in ok(run("ls", TPG), d)
    # the LIO wiki's spellings of the mutual parameters
    res = run(acl, "set", "auth", "userid_mutual=m", "password_mutual=0123456789abcd")
    assert res.returncode == 0, ut.describe(res, d)
    assert res.stdout.splitlines() == ["Parameter userid_mutual is now 'm'.",
                                       "Parameter password_mutual is now '0123456789abcd'."]
    assert res.stderr.splitlines() == ["Warning: CHAP is optional in this TPG: set attribute "
                                       "authentication=1 to require it."], ut.describe(res, d)
    assert ok(run(acl, "get", "auth", "userid_mutual"), d) == "mutual_userid=m \n"
    assert ok(run(acl, "get", "auth", "userid", "password"), d) == "userid=x \npassword=short \n"
    assert "authenticate_target=1 [ro]\n" in ok(run(acl, "get", "auth"), d)
    ok(run(TPG, "set", "attribute", "authentication=1", "generate_node_acls=0"), d)
    tree = ok(run("ls", TPG), d)
    assert "[no-gen-acls, auth per-acl]" in tree and "[mutual auth, Mapped LUNs: 0]" in tree
    assert "short" not in tree and "0123456789abcd" not in tree
    # discovery_auth on /iscsi
    out = ok(run("/iscsi", "set", "discovery_auth", "enable=1", "userid=du",
                 "password=discovery123"), d)
    assert out.splitlines() == ["Parameter enable is now '1'.",
                                "Parameter userid is now 'du'.",
                                "Parameter password is now 'discovery123'."]
    assert "[1-way disc auth, Targets: 2]" in ok(run("ls", "/", "1"), d)
    assert ok(run("/iscsi", "get", "discovery_auth", "userid"), d) == "userid=du \n"


def test_saveconfig_writes_the_file(shell, workdir):
    d, run = shell
    ok(run("/backstores/ramdisk", "create", "r0", "1M"), d)
    ok(run("/iscsi", "create", WWN), d)
    ok(run("%s/luns" % TPG, "create", "/backstores/ramdisk/r0"), d)
    out = ok(run("saveconfig", "saved.json"), d)  # relative to our cwd, not the daemon's
    target = os.path.join(os.getcwd(), "saved.json")
    try:
        assert out.splitlines()[-1] == "Configuration saved to %s" % target
        with open(target) as f:
            cfg = json.load(f)
        assert WWN in [t["wwn"] for t in cfg["targets"]]
        assert "r0" in [so["name"] for so in cfg["storage_objects"]]
    finally:
        if os.path.exists(target):
            os.unlink(target)
    out = ok(run("saveconfig", os.path.join(str(workdir), "s2.json")), d)
    assert "Configuration saved to %s" % os.path.join(str(workdir), "s2.json") in out
    assert os.path.isfile(os.path.join(str(workdir), "s2.json"))
    # restore refuses over a live config unless clear_existing
    failed(run("restoreconfig", os.path.join(str(workdir), "s2.json")), [], d)
    out = ok(run("restoreconfig", os.path.join(str(workdir), "s2.json"),
                 "clear_existing=true"), d)
    assert out.startswith("Configuration restored from ")
    failed(run("restoreconfig", "/nonexistent.json"), ["Restore file /nonexistent.json not found"], d)


def test_one_shot_and_batch_auto_save(shell):
    """auto_save_on_exit (default true) in one-shot and batch mode: a run that changed the
    configuration saves it to the daemon's file (targetcli's one-shot mode never saves, so
    its users lose `targetcli /iscsi create ...` at the next boot); a run that changed
    nothing, or whose only command failed, writes nothing and rotates no backup."""
    d, run = shell
    saved = d.cfg_path
    backups = os.path.join(os.path.dirname(saved), "backup")

    def state():
        with open(saved) as f:
            text = f.read()
        n = len(os.listdir(backups)) if os.path.isdir(backups) else 0
        return text, n

    ok(run("set", "global", "auto_save_on_exit=true"), d)
    before = state()
    assert WWN not in before[0]
    # read-only commands and a refused change save nothing
    ok(run("ls"), d)
    ok(run(input="ls /iscsi\npwd\n"), d)
    failed(run("/iscsi", "create", "not a wwn"), [], d)
    assert state() == before
    # one-shot change: saved, with targetcli's interactive-exit words
    out = ok(run("/iscsi", "create", WWN), d)
    assert out.splitlines()[0] == "Created target %s." % WWN
    assert "Global pref auto_save_on_exit=true" in out.splitlines()
    assert "Configuration saved to %s" % saved in out.splitlines(), out
    # and what that save changed in the file
    assert "Added /iscsi/%s" % WWN in out.splitlines(), out
    with open(saved) as f:
        assert WWN in [t["wwn"] for t in json.load(f)["targets"]]
    # batch input that changed something saves once, at its end (no `exit` needed)
    out = ok(run(input="/backstores/ramdisk create r7 1M\nls /backstores\n"), d)
    assert out.count("Configuration saved to %s" % saved) == 1, out
    with open(saved) as f:
        assert "r7" in [so["name"] for so in json.load(f)["storage_objects"]]
    # the preference off: a change is not saved
    ok(run("set", "global", "auto_save_on_exit=false"), d)
    mid = state()
    out = ok(run("/backstores/ramdisk", "create", "r8", "1M"), d)
    assert "saved" not in out
    assert state() == mid


def test_navigation_history_bookmarks_and_globals(shell, workdir):
    d, run = shell
    ok(run("/iscsi", "create", WWN), d)
    out = ok(run(input="cd /iscsi\n%s\npwd\ncd <\npwd\ncd >\nbookmarks add tp\ncd /\n"
                       "cd @tp\npwd\n..\npwd\n" % TPG), d)
    assert out.splitlines() == [
        TPG, "Taking you back to /iscsi.", "/iscsi", "Taking you back to %s." % TPG,
        "Bookmarked %s as tp." % TPG, TPG, "/iscsi/" + WWN]
    # Globals persist per user (UTARGETCLI_HOME), as targetcli's prefs do.
    assert ok(run("set", "global", "auto_cd_after_create=true", "tree_round_nodes=false"), d) \
        == "Parameter auto_cd_after_create is now 'true'.\n" \
           "Parameter tree_round_nodes is now 'false'.\n"
    assert ok(run("get", "global", "auto_cd_after_create"), d) == "auto_cd_after_create=true \n"
    assert os.path.isfile(os.path.join(str(workdir), "clihome", "prefs.json"))
    assert ok(run("ls", "/", "0")).startswith("+- / ")
    out = ok(run(input="/backstores/ramdisk create r9 1M\npwd\n"), d)
    assert out.splitlines() == ["Created ramdisk r9 with size 1M.",
                                "Entering new node /backstores/ramdisk/r9",
                                "/backstores/ramdisk/r9"]
    failed(run("set", "global", "color_mode=maybe"),
           ["Not setting color_mode! Syntax error, 'maybe' is not true|false."], d)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_interactive_completion_history_and_cd_back(shell, workdir, cli_bin):
    d, run = shell
    ok(run("/iscsi", "create", WWN), d)
    sess = "utcli%d" % os.getpid()
    home = os.path.join(str(workdir), "clihome")
    cmd = "env UTARGET_SOCKET=%s UTARGETCLI_HOME=%s TERM=xterm %s" % (d.sock, home, cli_bin)

    def tmux(*a):
        return subprocess.run(["tmux"] + list(a), capture_output=True, text=True, timeout=20)

    def screen():
        return tmux("capture-pane", "-p", "-t", sess).stdout

    def wait_for(text, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError("%r not on the screen:\n%s" % (text, screen()))

    assert tmux("new-session", "-d", "-s", sess, "-x", "120", "-y", "40", cmd).returncode == 0
    try:
        wait_for("/>")
        # the LIO wiki's older names complete when typed (and only then)
        tmux("send-keys", "-t", sess, "cd /backstores/ib", "Tab")
        wait_for("cd /backstores/iblock/")
        tmux("send-keys", "-t", sess, "C-u")
        tmux("send-keys", "-t", sess, "cd /isc", "Tab")
        wait_for("cd /iscsi/")
        tmux("send-keys", "-t", sess, "Enter")
        wait_for("/iscsi>")
        tmux("send-keys", "-t", sess, "cd iqn.2003-01.org.linux-iscsi.c", "Tab")
        wait_for("cd iqn.2003-01.org.linux-iscsi.cli:t2/")
        tmux("send-keys", "-t", sess, "Enter")
        wait_for("/iscsi/iqn.20...-iscsi.cli:t2>")      # prompt shortened to prompt_length 30
        tmux("send-keys", "-t", sess, "tpgt", "Tab")
        wait_for("tpgt1/")
        tmux("send-keys", "-t", sess, "C-u")
        tmux("send-keys", "-t", sess, "tp", "Tab")
        wait_for("tpg1/")
        tmux("send-keys", "-t", sess, " set attr", "Tab")
        wait_for("tpg1/ set attribute")
        tmux("send-keys", "-t", sess, "login_t", "Tab")
        wait_for("set attribute login_timeout=")
        tmux("send-keys", "-t", sess, "20", "Enter")
        wait_for("Parameter login_timeout is now '20'.")
        tmux("send-keys", "-t", sess, "cd <", "Enter")
        wait_for("Taking you back to /iscsi.")
        tmux("send-keys", "-t", sess, "Up", "Enter")   # history: `cd <` again
        wait_for("Taking you back to /.")
        tmux("send-keys", "-t", sess, "set global auto_save_on_exit=false", "Enter")
        wait_for("auto_save_on_exit is now 'false'")
        tmux("send-keys", "-t", sess, "exit", "Enter")
        end = time.monotonic() + 10
        while tmux("has-session", "-t", sess).returncode == 0 and time.monotonic() < end:
            time.sleep(0.1)
    finally:
        tmux("kill-session", "-t", sess)
    with open(os.path.join(home, "history.txt")) as f:
        hist = f.read()
    assert "cd <" in hist and "set attribute login_timeout=20" in hist


def test_luns_create_from_a_file_path_and_max_backup_files(shell, workdir):
    """targetcli-fb: `luns create` with a file (or block device) path creates the storage
    object first, named as rtslib's StorageObjectFactory names it (the path's slashes
    turned into dashes; the file's own name when that is 64 bytes or longer, utargetd's
    limit); an ACL's `create` does the same and maps through the TPG LUN."""

    def so_name(path):
        n = path.strip("/").replace("/", "-")
        return n if len(n) < 64 else os.path.basename(path)[:63]

    d, run = shell
    img = os.path.join(str(workdir), "raw.img")
    with open(img, "wb") as f:
        f.truncate(6 * MiB)
    name = so_name(img)
    ok(run("/iscsi", "create", WWN), d)
    assert ok(run(TPG + "/luns", "create", img), d).splitlines() == [
        "Created storage object %s." % name, "Created LUN 0."]
    bs = ok(run("ls", "/backstores/fileio", "1"), d)
    assert re.search(r"o- %s \.* ?\[%s \(6\.0MiB\) write-thru activated\]"
                     % (re.escape(name), re.escape(img)), bs), bs
    # the same file again: the object it backs, which already has a LUN here
    failed(run(TPG + "/luns", "create", img),
           ["lun for storage object fileio/%s already exists" % name], d)
    failed(run(TPG + "/luns", "create", "/backstores/fileio/" + name),
           ["lun for storage object fileio/%s already exists" % name], d)
    failed(run(TPG + "/luns", "create", os.path.join(str(workdir), "nosuch.img")),
           ["storage object or path not valid"], d)
    failed(run(TPG + "/luns", "create", str(workdir)), ["storage object or path not valid"], d)
    # a relative path is the caller's; a relative tree path works too
    ok(run("/backstores/ramdisk", "create", "r5", "1M"), d)
    assert ok(run(TPG + "/luns", "create", "../../../../backstores/ramdisk/r5"), d) == \
        "Created LUN 1.\n"
    ok(run(TPG + "/acls", "create", INIT), d)
    img2 = os.path.join(str(workdir), "raw2.img")
    with open(img2, "wb") as f:
        f.truncate(2 * MiB)
    name2 = so_name(img2)
    acl = TPG + "/acls/" + INIT
    assert ok(run(acl, "create", "5", img2), d).splitlines() == [
        "Created storage object %s." % name2, "Created LUN 2.", "Created Mapped LUN 5."]
    # a backstore that already has a TPG LUN is mapped through it
    assert ok(run(acl, "create", "6", img), d) == "Created Mapped LUN 6.\n"
    assert "o- mapped_lun6 " in ok(run("ls", acl), d) and \
        "[lun0 fileio/%s (rw)]" % name in ok(run("ls", acl + "/mapped_lun6"), d)

    # max_backup_files reaches the daemon: at most that many backups beside the file
    saved = os.path.join(str(workdir), "keep", "saveconfig.json")
    assert ok(run("set", "global", "max_backup_files=2"), d)
    for i in range(4):
        ok(run("/backstores/ramdisk", "create", "k%d" % i, "1M"), d)
        out = ok(run("saveconfig", saved), d)
        time.sleep(1.05)   # backups are named by the second
    assert "Last 2 configs saved in %s." % os.path.join(str(workdir), "keep", "backup") in out
    assert len(os.listdir(os.path.join(str(workdir), "keep", "backup"))) == 2
    ok(run("set", "global", "max_backup_files=0"), d)
    ok(run("/backstores/ramdisk", "create", "k9", "1M"), d)
    before = sorted(os.listdir(os.path.join(str(workdir), "keep", "backup")))
    assert ok(run("saveconfig", saved), d).startswith("Last 0 configs saved in ")
    assert sorted(os.listdir(os.path.join(str(workdir), "keep", "backup"))) == before
    ok(run("set", "global", "max_backup_files=lots"), d)
    failed(run("saveconfig", saved), ["Invalid global max_backup_files"], d)
    # the API's own bounds (docs/control-api.md): 0..1000, an integer
    from rpcclient import RpcClient
    with RpcClient(d.sock).connect() as rpc:
        for bad in (-1, 1001, "many", 2.5):
            e = rpc.error("save_config", file=saved, max_backup_files=bad)
            assert e.code == -32602 and "max_backup_files" in e.message, e
        res = rpc.call("save_config", file=saved, max_backup_files=3)
        assert res["backups_kept"] == 3 and res["file"] == saved


def test_batch_survives_odd_input(shell, workdir):
    """Robustness (run under ASan by `make integration`): empty and blank lines, very long
    lines, unknown paths, quotes, unicode, control bytes, NUL, a line without its newline,
    10,000 lines. No crash, one clear error per bad line on stderr, later lines still run,
    exit status 1 when any line failed (0 when none did)."""
    d, run = shell
    hand = [
        ("", None), ("   \t ", None), ("# a comment", None), ("pwd", None),
        ("ls /nope", "No such path /nope"), ("cd /nope/deeper", "No such path /nope"),
        ("'unterminated", "Syntax error: unterminated quote."),
        ('ls "a b', "Syntax error: unterminated quote."),
        ("ls 'a b'", "No such path /a b"),
        ("x" * 100000, "Command not found xxxx"),
        ("ls " + "a/" * 5000, "No such path /a"),
        ("cd " + "../" * 5000, None),
        ("set global " + "a=b " * 2000, "Duplicate parameter a."),
        ("héllo wörld", "Command not found héllo"),
        ("/backstores/ramdisk create ünïcode 1M", "Invalid storage object name"),
        ("\x1b[31mred", "Command not found"),
        ("a=b", "Syntax error: parameters without a command"),
        ("/iscsi x=1", "Syntax error: parameters without a command"),
        ("set global auto_cd_after_create", "positionnal parameters"),
        ("bookmarks add " + "b" * 5000, None),
        ("cd @" + "b" * 5000, None),
        ("help " + "h" * 5000, "Cannot find help topic"),
        ("sessions detail 99999999999999999999", "sid must be a number"),
        ("/backstores/ramdisk create r3 99999999999999999999t", "Cannot interpret size"),
        ("/backstores/fileio create f /tmp/" + "p" * 5000 + " 1M", None),
        ("/iscsi create iqn.2003-01.org.x:" + "a" * 5000, "WWN not valid"),
    ]
    for line, err in hand:
        res = run(input=line + "\n")
        if err is None and line.startswith(("/backstores/fileio", "bookmarks", "cd @")):
            assert res.stderr.count("\n") <= 1, ut.describe(res, d)  # one clear line
            continue
        if err is None:
            assert res.returncode == 0 and res.stderr == "", (line[:80], ut.describe(res, d))
        else:
            assert res.returncode == 1 and err in res.stderr, (line[:80], ut.describe(res, d))
            assert res.stderr.count("\n") == 1, (line[:80], ut.describe(res, d))
    # NUL inside a line: refused whole, not cut short; no final newline: still run
    res = run(input="pwd\0ls /nope\npwd")
    assert res.returncode == 1 and res.stdout == "/\n", ut.describe(res, d)
    assert res.stderr == "Syntax error: NUL byte in the line.\n", ut.describe(res, d)
    # 10,000 lines of noise, then a line that must still run
    import random
    rnd = random.Random(5)
    chars = "abc/ .=@<>'\"\\*\t" + "é€"
    noise = ["".join(rnd.choice(chars) for _ in range(rnd.randint(0, 40)))
             for _ in range(10000)]
    res = run(input="\n".join(noise) + "\ncd /\n/backstores/ramdisk create last 1M\n")
    assert res.returncode == 1, ut.describe(res, d)
    assert res.stdout.endswith("Created ramdisk last with size 1M.\n"), ut.describe(res, d)
    assert len(res.stderr.splitlines()) < 10000
    # one-shot: a clean command exits 0
    assert run("pwd").returncode == 0
