"""Live changes with sessions open (issue 4: "Every change applies live").

A long-lived initiator is qemu-io in interactive mode: it logs in once and runs the
commands it reads from stdin, one at a time, in that one session. Its prompt
"qemu-io> " marks the end of each command's output.

qemu's iSCSI driver retries a command that got a UNIT ATTENTION and says so on stderr
("iSCSI CheckCondition: SENSE KEY:UNIT_ATTENTION(6) ASCQ:...(0x3f0e)"), which is how a
test sees that an open session was told REPORTED LUNS DATA HAS CHANGED.
"""

import os
import select
import socket
import subprocess
import time

import pytest

import uthelpers as ut
from uthelpers import MiB
from rpcclient import RpcClient

IQN = ut.DEFAULT_TARGET
INIT_A = "iqn.1994-05.com.example:client-a"
INIT_B = "iqn.1994-05.com.example:client-b"
T = {"wwn": IQN, "tag": 1}
PROMPT = b"qemu-io> "


class QemuIoSession:
    """One qemu-io process = one iSCSI session; cmd() runs a command in it."""

    def __init__(self, opts, timeout=ut.TOOL_TIMEOUT, read_only=False):
        argv = ["qemu-io"] + (["-r"] if read_only else []) + ["--image-opts", opts]
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.log = ""
        out = self._until_prompt(timeout)
        if out is None:
            raise AssertionError("qemu-io did not open the LUN:\n" + self.log)

    def _until_prompt(self, timeout):
        """Output up to the next prompt; None if qemu-io exited or the time ran out."""
        buf = b""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while not buf.endswith(PROMPT):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        text = buf.decode(errors="replace")
        self.log += text
        if not buf.endswith(PROMPT):
            return None
        return text[:-len(PROMPT)]

    def cmd(self, command, timeout=ut.TOOL_TIMEOUT):
        """Run one command; returns its output, or None when no prompt came back."""
        self.log += command + "\n"
        try:
            self.p.stdin.write(command.encode() + b"\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            return None
        return self._until_prompt(timeout)

    def ok(self, command, d=None, timeout=ut.TOOL_TIMEOUT):
        out = self.cmd(command, timeout)
        bad = out is None or any(w in out for w in ut.QEMU_IO_FAILURES)
        assert not bad, "qemu-io %r failed in the open session:\n%s%s" % (
            command, self.log[-4000:],
            ("\n--- utargetd stderr ---\n" + d.stderr_tail(3000)) if d else "")
        return out

    def kill(self):
        """For a session the target dropped: qemu keeps trying to log in again."""
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdin.close()
        self.p.stdout.close()

    def close(self):
        """quit: a clean logout (while the daemon still runs)."""
        if self.p.stdout.closed:
            return
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"quit\n")
                self.p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()


@pytest.fixture
def sessions():
    """Opens QemuIoSessions and closes them all at teardown."""
    opened = []

    def open_(opts, **kw):
        s = QemuIoSession(opts, **kw)
        opened.append(s)
        return s

    yield open_
    # By now the daemon has stopped (conftest stops it at the end of the test body),
    # so a session still open cannot log out: kill it. Tests close the healthy ones.
    for s in opened:
        if not s.p.stdout.closed:
            s.kill()


def wait_until(pred, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


def session_of(rpc, initiator):
    return [s for s in rpc.call("sessions")
            if s["initiator"] == initiator and s["type"] == "Normal"]


def opts(d, lun, initiator):
    return ut.image_opts(d.port, IQN, lun, initiator=initiator)


def acl_config(config, write_protect_b=False):
    """generate_node_acls=0; A sees rd0 as LUN 0, B sees rd1 as LUN 0."""
    rd0 = config.ramdisk("rd0", size=16 * MiB)
    rd1 = config.ramdisk("rd1", size=16 * MiB)
    config.ramdisk("rd2", size=8 * MiB)
    tpg = config.target(IQN).tpg(generate_node_acls=0)
    tpg.lun(0, rd0).lun(1, rd1)
    tpg.acl(INIT_A).map(0, 0)
    tpg.acl(INIT_B).map(0, 1, write_protect=write_protect_b)
    return config


# --------------------------------------------------------------------------- new LUN

def test_new_lun_reaches_an_open_session(config, utarget, sessions):
    d = utarget(acl_config(config))
    rpc = RpcClient(d.sock).connect()
    a = sessions(opts(d, 0, INIT_A))
    a.ok("write -P 0x31 0 65536", d)
    (before,) = session_of(rpc, INIT_A)
    assert [m["mapped_lun"] for m in before["mapped_luns"]] == [0], before

    res = rpc.call("lun.create", storage_object="/backstores/ramdisk/rd2", lun=2, **T)
    assert sorted((m["node_wwn"], m["mapped_lun"]) for m in res["mapped"]) == \
        [(INIT_A, 2), (INIT_B, 2)], res

    # the open session: its next command gets the unit attention, qemu retries, it works
    out = a.ok("read -P 0x31 0 65536", d)
    assert "UNIT_ATTENTION" in out and "0x3f0e" in out.lower(), \
        "no REPORTED LUNS DATA HAS CHANGED unit attention in the open session:\n" + out
    # one UA per change: the next command is clean
    out = a.ok("read -P 0x31 0 4096", d)
    assert "UNIT_ATTENTION" not in out, out
    # the same session (same TSIH) now maps LUN 2
    (after,) = session_of(rpc, INIT_A)
    assert after["tsih"] == before["tsih"], (before, after)
    assert sorted(m["mapped_lun"] for m in after["mapped_luns"]) == [0, 2], after
    # REPORT LUNS from the same initiator name shows it, and it serves I/O
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=INIT_A)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets.get(IQN, {}).get("luns", {})) == [0, 2], ut.describe(res, d)
    res = ut.qemu_io(opts(d, 2, INIT_A), ["write -P 0x32 0 4096", "read -P 0x32 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    # B got it too (add_mapped_luns: the same index, 2, was free in its ACL)
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=INIT_B)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets.get(IQN, {}).get("luns", {})) == [0, 2], ut.describe(res, d)
    a.ok("read -P 0x31 0 65536", d)
    a.close()
    rpc.close()


def test_deleted_lun_leaves_an_open_session(config, utarget, sessions):
    d = utarget(acl_config(config))
    rpc = RpcClient(d.sock).connect()
    rpc.call("lun.create", storage_object="/backstores/ramdisk/rd2", lun=2, **T)
    a0 = sessions(opts(d, 0, INIT_A))
    a2 = sessions(opts(d, 2, INIT_A))
    a0.ok("write -P 0x41 0 4096", d)
    a2.ok("write -P 0x42 0 4096", d)
    rpc.call("lun.delete", lun=2, **T)
    # the session on LUN 2 can no longer read it; the one on LUN 0 carries on
    out = a2.cmd("read -P 0x42 0 4096", timeout=10)
    assert out is None or "failed" in out, "a deleted LUN still serves reads:\n" + a2.log
    a0.ok("read -P 0x41 0 4096", d)
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=INIT_A)
    assert sorted(targets.get(IQN, {}).get("luns", {})) == [0], ut.describe(res, d)
    a2.kill()
    a0.close()
    rpc.close()


# --------------------------------------------------------------------------- ACLs

def test_deleted_acl_loses_access_other_session_unaffected(config, utarget, sessions):
    d = utarget(acl_config(config))
    rpc = RpcClient(d.sock).connect()
    a = sessions(opts(d, 0, INIT_A))
    b = sessions(opts(d, 0, INIT_B))
    a.ok("write -P 0x51 0 65536", d)
    b.ok("write -P 0x52 0 65536", d)
    (sb,) = session_of(rpc, INIT_B)
    assert session_of(rpc, INIT_A)

    rpc.call("acl.delete", node_wwn=INIT_A, **T)
    # A's session ends (the daemon drops it; the sessions list says so) ...
    wait_until(lambda: not session_of(rpc, INIT_A), what="A's session to end")
    # ... its next command does not succeed (qemu may try to log in again: refused) ...
    out = a.cmd("read -P 0x51 0 4096", timeout=10)
    assert out is None or "failed" in out, "a deleted ACL's session still reads:\n" + a.log
    assert not session_of(rpc, INIT_A), "A logged in again after its ACL was deleted"
    # ... and a new login is refused
    res, _ = ut.iscsi_inq(d.lun_url(0), initiator=INIT_A)
    assert res.returncode != 0, ut.describe(res, d)
    assert "Authorization failure" in res.stdout + res.stderr or \
        "Login" in res.stdout + res.stderr, ut.describe(res, d)
    # B's session is the same session and carries on
    b.ok("read -P 0x52 0 65536", d)
    b.ok("write -P 0x53 65536 65536", d)
    b.ok("read -P 0x53 65536 65536", d)
    (sb2,) = session_of(rpc, INIT_B)
    assert sb2["tsih"] == sb["tsih"], (sb, sb2)
    assert d.alive()
    a.kill()
    b.close()
    rpc.close()


# --------------------------------------------------------------------------- portals, TPGs

def test_deleted_portal_stops_accepting(config, utarget, sessions):
    rd0 = config.ramdisk("rd0", size=16 * MiB)
    port2 = ut.free_port()
    config.target(IQN).tpg(portals=[("127.0.0.1", config.port), ("127.0.0.1", port2)]) \
        .lun(0, rd0)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    # a session through the second portal, open before the portal goes
    s2 = sessions(ut.image_opts(port2, IQN, 0, initiator=INIT_B))
    s2.ok("write -P 0x61 0 4096", d)

    rpc.call("portal.delete", ip_address="127.0.0.1", port=port2, **T)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", port2), timeout=5).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(refused, what="the deleted portal's listener to close")
    # the connection accepted before carries on (docs/control-api.md "Live effect")
    s2.ok("read -P 0x61 0 4096", d)
    # the other portal serves
    res = ut.qemu_io(d.image_opts(0, initiator=INIT_A), ["read -P 0x61 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    # and the portal can come back
    rpc.call("portal.create", ip_address="127.0.0.1", port=port2, **T)
    res = ut.qemu_io(ut.image_opts(port2, IQN, 0, initiator=INIT_A), ["read -P 0x61 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    s2.close()
    rpc.close()


def test_disabled_tpg_ends_its_sessions(config, utarget, sessions):
    rd0 = config.ramdisk("rd0", size=16 * MiB)
    rd1 = config.ramdisk("rd1", size=16 * MiB)
    iqn2 = "iqn.2003-01.org.linux-iscsi.test:t2"
    config.target(IQN).tpg().lun(0, rd0)
    config.target(iqn2).tpg().lun(0, rd1)
    d = utarget(config)
    rpc = RpcClient(d.sock).connect()
    a = sessions(opts(d, 0, INIT_A))
    other = sessions(ut.image_opts(d.port, iqn2, 0, initiator=INIT_B))
    a.ok("write -P 0x71 0 4096", d)
    other.ok("write -P 0x72 0 4096", d)
    (so,) = session_of(rpc, INIT_B)

    rpc.call("tpg.enable", enable=False, **T)
    wait_until(lambda: not session_of(rpc, INIT_A), what="the disabled TPG's session to end")
    out = a.cmd("read -P 0x71 0 4096", timeout=10)
    assert out is None or "failed" in out, "a disabled TPG still serves:\n" + a.log
    res, _ = ut.iscsi_inq(d.lun_url(0), initiator="iqn.1994-05.com.example:new")
    assert res.returncode != 0, ut.describe(res, d)
    # the other target's session carries on
    other.ok("read -P 0x72 0 4096", d)
    (so2,) = session_of(rpc, INIT_B)
    assert so2["tsih"] == so["tsih"]
    # enabled again, it serves new sessions
    rpc.call("tpg.enable", enable=True, **T)
    res = ut.qemu_io(d.image_opts(0, initiator=INIT_A), ["read -P 0x71 0 4096"])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)
    a.kill()
    other.close()
    rpc.close()


# --------------------------------------------------------------------------- write protect

def test_write_protect_applies_to_the_next_command(config, utarget, sessions):
    d = utarget(acl_config(config))
    rpc = RpcClient(d.sock).connect()
    a = sessions(opts(d, 0, INIT_A))
    a.ok("write -P 0x81 0 65536", d)

    rpc.call("mapped_lun.set_write_protect", node_wwn=INIT_A, mapped_lun=0,
             write_protect=True, **T)
    out = a.cmd("write -P 0x82 0 65536")
    assert out is not None and "write failed" in out, \
        "a write through a write-protected mapped LUN did not fail:\n" + a.log
    # qemu turns sense key DATA PROTECT (and only it) into EACCES
    assert "Permission denied" in out, out
    a.ok("read -P 0x81 0 65536", d)        # reads still work, the data is unchanged
    (s,) = session_of(rpc, INIT_A)
    assert s["mapped_luns"][0]["write_protect"] is True, s

    rpc.call("mapped_lun.set_write_protect", node_wwn=INIT_A, mapped_lun=0,
             write_protect=False, **T)
    a.ok("write -P 0x83 0 65536", d)
    a.ok("read -P 0x83 0 65536", d)
    a.close()
    rpc.close()
