"""Issue 5's "Done when": the LIO wiki's targetcli walkthrough (linux-iscsi.org/wiki/ISCSI:
backstore, target, LUN, portal, demo mode, an ACL with CHAP, mutual CHAP, TPG auth,
discovery auth, `ls`, `saveconfig`) runs through utargetcli in batch mode against a live
utargetd, and its output matches the golden transcript data/cli_wiki_walkthrough.txt line
by line, `ls` trees included; then real initiators log in with the CHAP set up through the
CLI and read and write.

Adapted from the wiki only where it must be: files live in a fresh /tmp/utwiki-XXXXXXXX
directory (always the same length, so `ls` draws the same dots), the portal is
127.0.0.1 on a free five-digit port instead of 3260 (written NNNNN in the transcript), the
default 0.0.0.0:3260 portal is switched off first (auto_add_default_portal=false), the
target WWN and initiator name are fixed, and the demo mode is switched back off before the
ACL section (the wiki shows the two as alternatives).

Transcript format: a line `PROMPT> COMMAND` is a command, typed at PROMPT (the shell's
current path, checked against the cd commands); the lines up to the next command are its
output. Lines starting with `#` before the first command are comments.
"""

import json
import os
import posixpath
import re
import shutil
import tempfile

import pytest

import uthelpers as ut
from uthelpers import MiB

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TRANSCRIPT = os.path.join(HERE, "data", "cli_wiki_walkthrough.txt")
DIR_MARK = "/tmp/utwiki-XXXXXXXX"
PORT_MARK = "NNNNN"
WWN = "iqn.2003-01.org.linux-iscsi.utarget.x8664:sn.e475ed6fcdd0"
INIT = "iqn.1994-05.com.redhat:client1"
USER, SECRET = "wiki-initiator", "chap-secret-12"
TUSER, TSECRET = "wiki-target", "mutual-secret-16"
CMD_RE = re.compile(r"^(/\S*)> (.*)$")
PAGE_TRANSCRIPT = os.path.join(HERE, "data", "cli_wiki_page.txt")
OPTIONAL_CHAP = ("Warning: CHAP is optional in this TPG: set attribute authentication=1 "
                 "to require it.")


def _cli_path():
    p = os.environ.get("UTARGETCLI") or os.path.join(REPO, "build", "utargetcli")
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def parse_transcript(path):
    """-> [(prompt, command, [expected output lines])]"""
    steps = []
    with open(path) as f:
        for line in f.read().splitlines():
            m = CMD_RE.match(line)
            if m:
                steps.append((m.group(1), m.group(2), []))
            elif steps:
                steps[-1][2].append(line)
            else:
                assert line.startswith("#") or not line.strip(), \
                    "text before the first command: %r" % line
    return steps


def autosaved(extra, wwn):
    """The script changed the configuration, so the end of its input saved it
    (auto_save_on_exit, true by default, as targetcli's shell does when its input ends):
    the lines after the transcript's are exactly that, and the file holds the target."""
    saved = "Configuration saved to "
    at = [i for i, l in enumerate(extra) if l.startswith(saved)]
    # then what the save changed in the file, a line per object
    assert extra[:1] == ["Global pref auto_save_on_exit=true"] and len(at) == 1 and \
        at[0] <= 2 and all(l.split(" ")[0] in ("Added", "Removed", "Changed")
                           for l in extra[at[0] + 1:]), \
        "extra output:\n%s" % "\n".join(extra)
    assert "Added /iscsi/" + wwn in extra
    with open(extra[at[0]][len(saved):]) as f:
        assert wwn in [t["wwn"] for t in json.load(f)["targets"]]


def check_prompts(steps):
    """The prompts of the transcript follow its cd commands."""
    cwd = "/"
    for prompt, cmd, _ in steps:
        assert prompt == cwd, "prompt %s> but the shell is in %s (before %r)" % (
            prompt, cwd, cmd)
        words = cmd.split()
        if words[0] == "cd":
            cwd = posixpath.normpath(posixpath.join(cwd, words[1])) if len(words) > 1 \
                else "/"


def five_digit_port():
    for _ in range(100):
        p = ut.free_port()
        if 10000 <= p <= 65535:
            return p
    pytest.skip("no free five-digit TCP port")


@pytest.fixture
def wikidir():
    d = tempfile.mkdtemp(prefix="utwiki-", dir="/tmp")
    assert len(d) == len(DIR_MARK), d
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_wiki_walkthrough_golden_transcript_then_chap_login(utarget, workdir, wikidir):
    cli = _cli_path()
    if not os.access(cli, os.X_OK):
        pytest.fail("utargetcli not built: %s (run `make`)" % cli, pytrace=False)
    port = five_digit_port()
    # The daemon is "up" when a portal listens: start on a sentinel target, then clear it
    # so the walkthrough begins from an empty configuration, as on the wiki.
    cfg = ut.Config(port, workdir)
    cfg.target().tpg().lun(0, cfg.ramdisk("sentinel", size=4 * MiB))
    d = utarget(cfg)
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "clihome"),
           "TERM": "dumb"}
    res = ut.run([cli, "clearconfig", "confirm=True"], env=env)
    assert res.returncode == 0 and res.stdout.startswith("All configuration cleared\n"), \
        ut.describe(res, d)

    steps = parse_transcript(TRANSCRIPT)
    check_prompts(steps)
    real = lambda s: s.replace(DIR_MARK, wikidir).replace(PORT_MARK, str(port))
    script = "".join(real(cmd) + "\n" for _, cmd, _ in steps)
    res = ut.run([cli], env=env, input=script, timeout=60)
    assert "AddressSanitizer" not in res.stderr and "runtime error:" not in res.stderr, \
        ut.describe(res, d)
    # the only complaint: CHAP set on the ACL while authentication is still 0
    assert res.returncode == 0 and set(res.stderr.splitlines()) <= {OPTIONAL_CHAP}, \
        ut.describe(res, d)

    # Line by line, each line attributed to the step that should print it.
    got = [re.sub(r"(?<!\d)%d(?!\d)" % port, PORT_MARK, l.replace(wikidir, DIR_MARK))
           for l in res.stdout.splitlines()]
    want = [(prompt, cmd, line) for prompt, cmd, out in steps for line in out]
    for i, (prompt, cmd, line) in enumerate(want):
        assert i < len(got), "output ends early: step %s> %s should print\n%s" % (
            prompt, cmd, line)
        assert got[i] == line, (
            "step %s> %s, output line %d:\n  want %r\n  got  %r\n--- whole output ---\n%s"
            % (prompt, cmd, i + 1, line, got[i], "\n".join(got)))
    autosaved(got[len(want):], WWN)

    # saveconfig wrote what the walkthrough built, secrets included (mode 0600).
    saved = os.path.join(wikidir, "saveconfig.json")
    assert os.stat(saved).st_mode & 0o777 == 0o600
    with open(saved) as f:
        sc = json.load(f)
    tpg = [t for t in sc["targets"] if t["wwn"] == WWN][0]["tpgs"][0]
    acl = tpg["node_acls"][0]
    assert (acl["node_wwn"], acl["chap_userid"], acl["chap_password"],
            acl["chap_mutual_userid"], acl["chap_mutual_password"]) == (
                INIT, USER, SECRET, TUSER, TSECRET)
    assert tpg["attributes"]["authentication"] == 1
    assert tpg["attributes"]["generate_node_acls"] == 0
    assert sc["fabric_modules"][0]["discovery_enable_auth"] is True

    # A real initiator logs in with the CHAP set up through the CLI.
    url = "iscsi://%s%%%s@127.0.0.1:%d/%s/0" % (USER, SECRET, port, WWN)
    res, inq = ut.iscsi_inq(url + "?target_user=%s&target_password=%s" % (TUSER, TSECRET),
                            initiator=INIT)
    assert res.returncode == 0 and inq.get("Peripheral Device Type") == "DIRECT_ACCESS", \
        ut.describe(res, d)
    # mapped as the fileio object, its name as the model (export_backstore_name_as_model)
    assert inq.get("Product", "").strip() == "my_disk", ut.describe(res, d)
    # wrong secret, and an initiator without an ACL: refused
    res, _ = ut.iscsi_inq("iscsi://%s%%wrong-secret-1@127.0.0.1:%d/%s/0" % (USER, port, WWN),
                          initiator=INIT)
    assert res.returncode != 0, "a wrong CHAP secret logged in\n" + ut.describe(res, d)
    res, _ = ut.iscsi_inq(url, initiator="iqn.1994-05.com.redhat:intruder")
    assert res.returncode != 0, "an initiator without an ACL logged in\n" + \
        ut.describe(res, d)
    # qemu's iscsi driver (one-way CHAP) writes and reads back; the bytes are in the file
    opts = ut.image_opts(port, WWN, 0, initiator=INIT) + ",user=%s,password=%s" % (USER, SECRET)
    regions = [(0, 65536, 0x5a), (3 * MiB, 4096, 0xa5)]
    res = ut.qemu_io(opts, ut.pattern_commands(regions, "write") +
                     ut.pattern_commands(regions, "read"))
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    assert ut.check_regions_in_file(os.path.join(wikidir, "my_disk.img"), regions) == []


def _dots(line):
    """An `ls` line with its run of dots (or the two spaces of a line too long for
    dots) made one: the page's names change length from machine to machine."""
    return re.sub(r" (?:\.+ | )\[", " ~ [", line)


def test_wiki_page_verbatim(utarget, workdir, loop_factory):
    """The LIO wiki page's own words, top to bottom (data/cli_wiki_page.txt): `iscsi/ info`,
    /backstores/iblock with a real block device, `/iscsi create` with a generated WWN,
    tpgt1, `cd <`, the demo-mode line with its trailing full stop, `set auth` with
    userid_mutual / password_mutual on an ACL and a TPG, discovery auth, `ls`. Every
    stdout line is compared with the transcript; then real initiators check what the page
    set up: the ACL's CHAP secret is checked (a wrong one is refused although
    authentication=0, RFC 7143 6.2.1), mutual CHAP proves the target, an initiator that
    offers no CHAP gets in (authentication=0), discovery needs its CHAP."""
    cli = _cli_path()
    dev = loop_factory(64 * MiB)
    port = ut.free_port()
    cfg = ut.Config(port, workdir)
    cfg.target().tpg().lun(0, cfg.ramdisk("sentinel", size=4 * MiB))
    d = utarget(cfg)
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "pagehome"),
           "TERM": "dumb"}
    res = ut.run([cli, "clearconfig", "confirm=True"], env=env)
    assert res.returncode == 0, ut.describe(res, d)
    wdir = os.path.join(str(workdir), "page")
    os.mkdir(wdir)

    steps = parse_transcript(PAGE_TRANSCRIPT)
    marks = {"@DEV@": dev, "@PORT@": str(port), "@DIR@": wdir, "@SOCK@": d.sock}

    def real(text, wwn=None):
        for k, v in marks.items():
            text = text.replace(k, v)
        return text.replace("@WWN@", wwn) if wwn else text

    # `pwd` before each command: its output is the prompt the transcript shows
    script = "".join("pwd\n" + real(cmd) + "\n" for _, cmd, _ in steps)
    res = ut.run([cli], env=env, input=script, timeout=60)
    assert "AddressSanitizer" not in res.stderr and "runtime error:" not in res.stderr, \
        ut.describe(res, d)
    assert res.returncode == 0, ut.describe(res, d)
    m = re.search(r"^Created target (iqn\.2003-01\.org\.linux-iscsi\.[^:]+:sn\.[0-9a-f]{12})\.$",
                  res.stdout, re.M)
    assert m, "no generated target name\n" + res.stdout
    wwn = m.group(1)
    got = [_dots(l) for l in res.stdout.splitlines()]
    want = []
    for prompt, cmd, out in steps:
        want.append((prompt, cmd, real(prompt, wwn)))
        want += [(prompt, cmd, _dots(real(l, wwn))) for l in out]
    for i, (prompt, cmd, line) in enumerate(want):
        assert i < len(got), "output ends early: %s> %s should print %r" % (prompt, cmd, line)
        assert got[i] == line, (
            "step %s> %s, output line %d:\n  want %r\n  got  %r\n--- whole output ---\n%s"
            % (prompt, cmd, i + 1, line, got[i], res.stdout))
    autosaved(got[len(want):], wwn)
    # stderr: the trailing full stop is read, CHAP-while-optional is said, long secrets
    # are flagged; nothing else
    errs = res.stderr.splitlines()
    assert "Warning: reading cache_dynamic_acls=1. as 1 (trailing '.' ignored)." in errs
    assert OPTIONAL_CHAP in errs
    assert all(e.startswith("Warning: ") for e in errs), res.stderr

    # What the page set up, through real initiators. The ACL: CHAP + mutual CHAP.
    ini = "iqn.1991-05.com.microsoft:ibm-t410s"
    base = "127.0.0.1:%d/%s/0" % (port, wwn)
    mutual = "?target_user=%s&target_password=mymutualsecret" % \
        "iqn.2003-01.org.linux-iscsi.san01.x8664:sn.05135a0e4a11"
    res, inq = ut.iscsi_inq("iscsi://%s%%mytargetsecret@%s%s" % (ini, base, mutual),
                            initiator=ini)
    assert res.returncode == 0 and inq.get("Peripheral Device Type") == "DIRECT_ACCESS", \
        ut.describe(res, d)
    res, _ = ut.iscsi_inq("iscsi://%s%%wrong-secret-99@%s" % (ini, base), initiator=ini)
    assert res.returncode != 0 and "Authentication failure(513)" in res.stdout + res.stderr, \
        "a wrong CHAP secret got in (AuthMethod=CHAP,None answered None?)\n" + \
        ut.describe(res, d)
    res, _ = ut.iscsi_inq("iscsi://%s%%mytargetsecret@%s?target_user=%s"
                          "&target_password=not-the-secret" % (ini, base, "someone"),
                          initiator=ini)
    assert res.returncode != 0, "mutual CHAP accepted a target it should not\n" + \
        ut.describe(res, d)
    res, inq = ut.iscsi_inq("iscsi://%s" % base, initiator=ini)   # AuthMethod=None only
    assert res.returncode == 0, ut.describe(res, d)
    # Demo mode (generate_node_acls=1): other initiators use the TPG's CHAP.
    other = "iqn.1994-05.com.example:demo"
    res, _ = ut.iscsi_inq("iscsi://rts-user%%b492785e-bc91-4710@%s?target_user=mutual-rts-user"
                          "&target_password=aeae2e26-f043-42a7" % base, initiator=other)
    assert res.returncode == 0, ut.describe(res, d)
    res, _ = ut.iscsi_inq("iscsi://rts-user%%wrong-secret-99@%s" % base, initiator=other)
    assert res.returncode != 0, "a wrong TPG secret got in\n" + ut.describe(res, d)
    # Discovery needs its CHAP (mutual)
    portal = "127.0.0.1:%d" % port
    res, targets = ut.iscsi_ls("iscsi://mytargetuid%%mytargetsecret@%s?target_user=mymutualuid"
                               "&target_password=mymutualsecret" % portal, initiator=other)
    assert res.returncode == 0 and wwn in targets, ut.describe(res, d)
    res, _ = ut.iscsi_ls("iscsi://%s" % portal, initiator=other)
    assert res.returncode != 0, "discovery without CHAP was let in\n" + ut.describe(res, d)
    # saveconfig wrote what the page built, in LIO's words
    with open(os.path.join(wdir, "saveconfig.json")) as f:
        sc = json.load(f)
    so = sc["storage_objects"][0]
    assert (so["plugin"], so["dev"], "size" in so) == ("block", dev, False), so
    acl = sc["targets"][0]["tpgs"][0]["node_acls"][0]
    assert acl["chap_mutual_userid"].endswith(":sn.05135a0e4a11"), acl


def test_wiki_old_names(utarget, workdir):
    """The older targetcli words beside today's, in paths: rd_mcp and rd_dr (ramdisks),
    iblock, tpgtN; a value with garbage after the number is still refused whole."""
    cli = _cli_path()
    cfg = ut.Config(ut.free_port(), workdir)
    cfg.target().tpg().lun(0, cfg.ramdisk("sentinel", size=4 * MiB))
    d = utarget(cfg)
    env = {"UTARGET_SOCKET": d.sock, "UTARGETCLI_HOME": os.path.join(str(workdir), "oldhome"),
           "TERM": "dumb"}
    run = lambda *a: ut.run([cli] + list(a), env=env)
    res = run("/backstores/rd_mcp", "create", "name=rd0", "size=1M")
    assert res.returncode == 0 and "Created ramdisk rd0" in res.stdout, ut.describe(res, d)
    res = run("/backstores/rd_dr/rd0", "info")
    assert res.returncode == 0 and "ramdisk/rd0" in res.stdout, ut.describe(res, d)
    res = run("ls", "/backstores/iblock")
    assert res.returncode == 0 and "o- block" in res.stdout, ut.describe(res, d)
    res = run("help", "cd")
    assert "/backstores/iblock (= block)" in res.stdout and "tpgtN (= tpgN)" in res.stdout
    tpg = "/iscsi/%s/tpgt1" % ut.DEFAULT_TARGET
    res = run(tpg, "get", "attribute", "authentication")
    assert res.returncode == 0 and res.stdout.startswith("authentication="), ut.describe(res, d)
    res = run(tpg, "set", "attribute", "login_timeout=10", "authentication=1x")
    assert res.returncode != 0 and "'1x' is not a NUMBER" in res.stderr, ut.describe(res, d)
    res = run(tpg, "get", "attribute", "login_timeout")
    assert res.stdout.startswith("login_timeout=15 "), "a refused set changed a value\n" + \
        res.stdout
    res = run("/iscsi/%s/tpgt" % ut.DEFAULT_TARGET, "ls")
    assert res.returncode != 0, "tpgt without a number resolved\n" + ut.describe(res, d)
