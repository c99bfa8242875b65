"""What real initiators never send (issue 9, "Bad input"): each case gets the
RFC 7143 answer (a Reject with the right reason, a login reject, silence
where the RFC says so, or the connection closed) while another session does
verified I/O (qemu-io write/read -P loops on LUN 0) the whole time.

The raw sessions (tests/integration/iscsiraw.py) use LUN 1 so that they
never touch the data the qemu-io loop verifies. Simpler first-PDU garbage
and stalled clients are in test_malformed.py."""

import socket
import struct
import threading
import time

import pytest

import iscsiraw as raw
import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET


@pytest.fixture
def daemon(config, utarget):
    tpg = config.target(IQN).tpg(attributes={"login_timeout": 5})
    tpg.lun(0, config.ramdisk("rd0", size=64 * MiB))
    tpg.lun(1, config.ramdisk("rd1", size=16 * MiB))
    return utarget(config)


class IoLoop:
    """qemu-io sessions writing and verifying patterns on LUN 0, one after
    another, until stopped; every run must be clean."""

    def __init__(self, d):
        self.d = d
        self.runs = 0
        self.problems = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        i = 0
        while not self.stop_ev.is_set():
            pat = 0x30 + i % 64
            off = (i % 32) * MiB
            res = ut.qemu_io(self.d.image_opts(0),
                             ["write -P 0x%x %d 1M" % (pat, off),
                              "read -P 0x%x %d 1M" % (pat, off)])
            bad = ut.qemu_io_problems(res)
            if bad:
                self.problems.append((bad, ut.describe(res)))
            self.runs += 1
            i += 1

    def start(self):
        self.t.start()
        return self

    def check(self):
        """Called at the end of each test body (the daemon is stopped right
        after it): at least one run overlapped the test, all were clean."""
        deadline = time.monotonic() + 60
        while self.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop_ev.set()
        self.t.join(120)
        assert self.runs >= 1, "the qemu-io loop never completed a run"
        assert not self.problems, "%s\n%s" % (self.problems[0],
                                               self.d.stderr_tail(3000))
        assert self.d.alive(), self.d.stderr_tail()


@pytest.fixture
def io_loop(daemon):
    lp = IoLoop(daemon).start()
    yield lp
    lp.stop_ev.set()
    lp.t.join(120)


@pytest.fixture
def conn(daemon, io_loop):
    c = raw.RawConn("127.0.0.1", daemon.port)
    c.login(IQN)
    # the POWER ON unit attentions of the new nexus
    c.command(raw.TUR)
    c.command(raw.TUR, lun=1)
    yield c
    c.close()


def expect_reject(c, reason, sent_bhs, timeout=5):
    got, rej = c.recv_until(raw.OP_REJECT, timeout)
    assert rej is not None, "no Reject (got %r)" % got
    assert rej.reason == reason, "Reject reason 0x%02x, want 0x%02x" % (
        rej.reason, reason)
    # §11.17: the data segment is the rejected PDU's header
    assert rej.data[:48] == sent_bhs[:48]
    assert rej.itt == raw.RSVD_TAG
    return rej


def still_serving(c):
    assert c.ping() is not None, "the session stopped answering"


# ---- opcodes and reserved fields -------------------------------------------

@pytest.mark.parametrize("opcode", [0x07, 0x0d, 0x1c, 0x1f, 0x21, 0x3f])
def test_unknown_opcode_rejected(conn, opcode, io_loop):
    """§11.17.1: an opcode the target does not know -> Reject 0x05
    (Command not supported); the session goes on."""
    p = raw.bhs(opcode | raw.IMMEDIATE, 0x80, itt=conn.next_itt(),
                f24=conn.cmdsn, f28=conn.expstatsn)
    conn.send(p)
    expect_reject(conn, raw.REJECT_CMD_NOT_SUPPORTED, p)
    still_serving(conn)
    io_loop.check()


def test_reserved_bits_are_ignored(conn, io_loop):
    """§11 "any compliant receiver MUST ignore any bit not defined": a SCSI
    command and a NOP-Out with every reserved bit set work as usual."""
    itt = conn.next_itt()
    p = bytearray(conn.scsi_cmd(raw.INQUIRY, 96, read=True, itt=itt,
                                flags_extra=0x18))
    p[2] = p[3] = 0xff            # reserved
    conn.send(bytes(p))
    rsp, din = conn.wait_status(itt)
    assert rsp is not None and rsp.status == 0, rsp
    assert len(din) == 96 and din[8:16].strip()
    nop = bytearray(conn.nop_out(b"abc", itt=0x777))
    nop[1] |= 0x7f                # byte 1: only F is defined
    nop[2] = nop[3] = 0xff
    nop[36:48] = b"\xff" * 12     # reserved
    conn.send(bytes(nop))
    got, nin = conn.recv_until(raw.OP_NOP_IN)
    assert nin is not None and nin.itt == 0x777 and nin.data == b"abc"
    still_serving(conn)
    io_loop.check()


def test_login_request_in_full_feature_phase(conn, io_loop):
    """§6 / §11.17.1: a Login Request after the login completed is a
    protocol error -> Reject 0x04; the session goes on."""
    p = conn.login_pdu(1, 3, True, [("MaxBurstLength", "512")])
    conn.send(p)
    expect_reject(conn, raw.REJECT_PROTOCOL, p)
    still_serving(conn)
    io_loop.check()


# ---- lengths ---------------------------------------------------------------

def test_data_segment_above_max_recv(conn, io_loop):
    """A DataSegmentLength above the MaxRecvDataSegmentLength the target
    declared: the framing cannot be trusted -> the connection closes (at
    ErrorRecoveryLevel 0), without waiting for the data."""
    mrdsl = int(conn.keys["MaxRecvDataSegmentLength"])
    conn.send(raw.bhs(raw.OP_NOP_OUT | raw.IMMEDIATE, 0x80,
                      itt=conn.next_itt(), f20=raw.RSVD_TAG, f24=conn.cmdsn,
                      dsl=mrdsl + 4))
    assert conn.closed_within(5)
    io_loop.check()


def test_16mib_data_segment(conn, io_loop):
    """DataSegmentLength 0xffffff (16 MiB - 1) on a write: closed at once,
    the daemon never reads (or allocates) 16 MiB."""
    p = conn.scsi_cmd(raw.write10(0, 8), 4096, write=True)
    p = p[:5] + b"\xff\xff\xff" + p[8:]
    conn.send(p + b"\0" * 4096)
    assert conn.closed_within(5)
    io_loop.check()


def test_wrong_data_segment_length_on_command(conn, io_loop):
    """Immediate data longer than the EDTL (DataSegmentLength does not fit
    the command): §11.3 -> Reject 0x04, the command never runs, the session
    goes on and the blocks are untouched."""
    conn.command(raw.write10(10, 1), 512, write=True, data=b"\x11" * 512)
    itt = conn.next_itt()
    p = conn.scsi_cmd(raw.write10(10, 1), 512, write=True, itt=itt,
                      data=b"\x22" * 1024)
    conn.send(p)
    expect_reject(conn, raw.REJECT_PROTOCOL, p)
    rsp, din = conn.command(raw.read10(10, 1), 512, read=True)
    assert rsp is not None and din == b"\x11" * 512
    io_loop.check()


def test_ahs_past_the_pdu(conn, io_loop):
    """An AHS entry whose AHSLength runs past TotalAHSLength (§11.2.2):
    Reject 0x04; an extended-CDB AHS we do not support: Reject 0x05."""
    itt = conn.next_itt()
    bad_ahs = struct.pack(">HBB", 0x1000, 1, 0)       # 4096 bytes claimed
    p = bytearray(conn.scsi_cmd(raw.INQUIRY, 96, read=True, itt=itt))
    p[4] = 1                                          # TotalAHSLength: 1 word
    p = bytes(p[:48]) + bad_ahs
    conn.send(p)
    expect_reject(conn, raw.REJECT_PROTOCOL, p)
    # a well-formed 32-byte CDB AHS (CDB bytes 16-31; AHSLength = 17)
    ext = struct.pack(">HBB", 17, 1, 0) + bytes(16)
    p = bytearray(conn.scsi_cmd(raw.INQUIRY, 96, read=True))
    p[4] = len(ext) // 4
    p = bytes(p[:48]) + ext
    conn.send(p)
    expect_reject(conn, raw.REJECT_CMD_NOT_SUPPORTED, p)
    still_serving(conn)
    io_loop.check()


# ---- Data-Out ----------------------------------------------------------------

def test_data_out_unknown_itt(conn, io_loop):
    """Data-Out for a task that does not exist -> Reject 0x09 (Invalid PDU
    field, §11.7); the session goes on."""
    p = conn.data_out(0xdead, raw.RSVD_TAG, 0, 0, b"\0" * 512, lun=1)
    conn.send(p)
    expect_reject(conn, raw.REJECT_INVALID_PDU_FIELD, p)
    still_serving(conn)
    io_loop.check()


def test_data_out_beyond_the_burst(conn, io_loop):
    """Data-Out past what the R2T asked for -> Reject 0x09; the write then
    completes with the data the R2T solicited."""
    itt = conn.next_itt()
    conn.send(conn.scsi_cmd(raw.write10(0, 8), 4096, write=True, itt=itt,
                            lun=1))
    got, r2t = conn.recv_until(raw.OP_R2T)
    assert r2t is not None, got
    off, length = struct.unpack(">II", r2t.bhs[40:48])
    assert (off, length) == (0, 4096)
    p = conn.data_out(itt, r2t.ttt, 0, 4096, b"\xee" * 512, final=False,
                      lun=1)
    conn.send(p)
    expect_reject(conn, raw.REJECT_INVALID_PDU_FIELD, p)
    conn.send(conn.data_out(itt, r2t.ttt, 0, 0, b"\x5a" * 4096, lun=1))
    got, rsp = conn.recv_until(raw.OP_SCSI_RSP)
    assert rsp is not None and rsp.itt == itt and rsp.status == 0, got
    still_serving(conn)
    io_loop.check()


# ---- CmdSN -----------------------------------------------------------------

def test_cmdsn_far_outside_the_window(conn, io_loop):
    """§4.2.2.1: a non-immediate command with a CmdSN outside
    [ExpCmdSN, MaxCmdSN] is silently ignored; ExpCmdSN does not move."""
    before = conn.ping()
    itt = conn.next_itt()
    conn.send(conn.scsi_cmd(raw.TUR, 0, itt=itt,
                            cmdsn=(conn.cmdsn + 0x40000000) & 0xffffffff))
    assert conn.recv_pdu(timeout=1.5) is None, "answered out of window"
    after = conn.ping()
    assert after is not None and after.expcmdsn == before.expcmdsn
    rsp, _ = conn.command(raw.TUR)             # in-window still works
    assert rsp is not None and rsp.status == 0
    io_loop.check()


def test_cmdsn_window_is_default_cmdsn_depth(conn, io_loop):
    """MaxCmdSN - ExpCmdSN + 1 = the TPG's default_cmdsn_depth (64)."""
    p = conn.ping()
    assert (p.maxcmdsn - p.expcmdsn + 1) & 0xffffffff == 64
    io_loop.check()


def test_immediate_commands_beyond_the_cmdsn_depth(conn, io_loop):
    """Immediate commands take no CmdSN slot but are tasks all the same:
    with default_cmdsn_depth (64) tasks in progress, one more is refused
    with Reject 0x06 (too many immediate commands, §11.17.1) instead of
    queueing without bound."""
    for i in range(64):   # writes that wait for their Data-Out (R2T)
        conn.send(conn.scsi_cmd(raw.write10(i * 8, 8), 4096, write=True,
                                lun=1, immediate=True))
    p = conn.scsi_cmd(raw.write10(0, 8), 4096, write=True, lun=1,
                      immediate=True)
    conn.send(p)
    expect_reject(conn, 0x06, p)
    still_serving(conn)
    io_loop.check()


# ---- login -----------------------------------------------------------------

def test_scsi_command_during_login(daemon, io_loop):
    """§6.1: between the first Login Request and full feature phase only
    Login Requests are allowed: a SCSI command there ends the connection."""
    with raw.RawConn("127.0.0.1", daemon.port) as c:
        c.send(c.login_pdu(0, 1, False, [("InitiatorName", raw.INITIATOR),
                                         ("TargetName", IQN),
                                         ("AuthMethod", "None")]))
        r = c.recv_pdu()
        assert r is not None and r.opcode == raw.OP_LOGIN_RSP
        c.send(c.scsi_cmd(raw.TUR))
        assert c.closed_within(5)
    io_loop.check()


def test_thousands_of_keys_in_login(daemon, io_loop):
    """3000 unknown keys over Login continuation PDUs: every one would be
    answered NotUnderstood, more than fits the 8192 bytes an initiator
    receives during login -> login reject 0x0302 (out of resources)."""
    keys = [("X-com.example.k%d" % i, "v") for i in range(3000)]
    body = raw.text(keys)
    with raw.RawConn("127.0.0.1", daemon.port) as c:
        ident = raw.text([("InitiatorName", raw.INITIATOR),
                          ("TargetName", IQN), ("AuthMethod", "None")])
        chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
        chunks[-1] += ident
        for i, ch in enumerate(chunks):
            last = i == len(chunks) - 1
            p = bytearray(c.login_pdu(0, 1, last, [], cont=not last))
            p[5:8] = len(ch).to_bytes(3, "big")
            c.send(bytes(p) + raw.pad4(ch))
            r = c.recv_pdu()
            assert r is not None and r.opcode == raw.OP_LOGIN_RSP
            if not last:
                assert r.login_status == 0 and not r.data
        assert r.login_status == 0x0302, hex(r.login_status)
        assert c.closed_within(5)
    io_loop.check()


def test_login_text_above_64k(daemon, io_loop):
    """§6.1 asks for at most 64 KiB of key=value data in a negotiation:
    more is refused (0x0302) instead of growing the buffer."""
    chunk = raw.text([("X-com.example.pad", "v" * 8000)])
    with raw.RawConn("127.0.0.1", daemon.port) as c:
        for i in range(20):
            c.send(bytes(c.login_pdu(0, 1, False, [], cont=True)[:5]) +
                   len(chunk).to_bytes(3, "big") +
                   c.login_pdu(0, 1, False, [], cont=True)[8:48] +
                   raw.pad4(chunk))
            r = c.recv_pdu()
            assert r is not None and r.opcode == raw.OP_LOGIN_RSP
            if r.login_status:
                break
        assert r.login_status == 0x0302, hex(r.login_status)
        assert i * len(chunk) <= 64 * 1024 + len(chunk)
        assert c.closed_within(5)
    io_loop.check()


def test_thousands_of_keys_in_text_request(conn, io_loop):
    """2000 unknown keys in a Text Request spread over continuation PDUs
    (§11.10): the target collects them, answers NotUnderstood for each, in
    as many Text Responses as MaxRecvDataSegmentLength requires."""
    keys = [("X-com.example.k%d" % i, "v") for i in range(2000)]
    body = raw.text(keys)
    chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
    itt = conn.next_itt()
    ttt = raw.RSVD_TAG
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        conn.send(raw.bhs(raw.OP_TEXT | raw.IMMEDIATE, 0x80 if last else 0x40,
                          ch, itt=itt, f20=ttt, f24=conn.cmdsn,
                          f28=conn.expstatsn))
        got, r = conn.recv_until(raw.OP_TEXT_RSP)
        assert r is not None, got
        if not last:
            # §11.11: an empty answer, F=0, with the TTT the next part of
            # the request carries (§11.10.4)
            assert not r.data and not r.flags & 0xc0
            assert r.ttt != raw.RSVD_TAG
            ttt = r.ttt
    answer = r.data
    while r.flags & 0x40:        # C: more answer to fetch with its TTT
        conn.send(raw.bhs(raw.OP_TEXT | raw.IMMEDIATE, 0x80, itt=itt,
                          f20=r.ttt, f24=conn.cmdsn, f28=conn.expstatsn))
        got, r = conn.recv_until(raw.OP_TEXT_RSP)
        assert r is not None, got
        answer += r.data
    got = raw.parse_text(answer)
    assert len(got) == 2000 and set(got.values()) == {"NotUnderstood"}
    still_serving(conn)
    io_loop.check()


# ---- silence ---------------------------------------------------------------

def test_half_a_header_then_silence(daemon, io_loop):
    """Half a BHS in full feature phase, then nothing: the other session is
    unaffected, and this one still has its NOP-In watchdog (it ends after
    nopin_timeout + nopin_response_timeout, here 15 + 30 s by default: we
    only check it is not served while stuck and the daemon stays up)."""
    with raw.RawConn("127.0.0.1", daemon.port) as c:
        c.login(IQN)
        c.send(c.nop_out(b"x")[:24])
        assert c.recv_pdu(timeout=2) is None
    assert daemon.alive()
    io_loop.check()


def test_login_timeout_drops_a_silent_client(daemon, io_loop):
    """A client that connects and says nothing is dropped after the TPG's
    login_timeout (5 s here, LIO's attribute), not the built-in 15 s."""
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
    t0 = time.monotonic()
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    elapsed = time.monotonic() - t0
    s.close()
    assert data == b""
    assert 4 <= elapsed < 9, "dropped after %.1f s" % elapsed
    io_loop.check()


def test_login_timeout_after_the_target_is_known(daemon, io_loop):
    """A login that names its target and then stalls is dropped after that
    TPG's login_timeout too."""
    with raw.RawConn("127.0.0.1", daemon.port, timeout=20) as c:
        c.send(c.login_pdu(0, 1, False, [("InitiatorName", raw.INITIATOR),
                                         ("TargetName", IQN),
                                         ("AuthMethod", "None")]))
        assert c.recv_pdu().opcode == raw.OP_LOGIN_RSP
        t0 = time.monotonic()
        assert c.closed_within(12)
        assert time.monotonic() - t0 < 8
    io_loop.check()




@pytest.mark.parametrize("name", ["iqn.2024-01.com.example:a b",
                                  "iqn.2024-01.com.example:a\nfake log line",
                                  "iqn.2024-01.com.example:\x1b[31mred"])
def test_initiator_name_with_spaces_or_control_bytes_refused(daemon, name):
    """iSCSI names hold no spaces or control characters (RFC 3722): such a
    name is refused at login (initiator error) and never reaches the log."""
    c = raw.RawConn("127.0.0.1", daemon.port)
    try:
        with pytest.raises(AssertionError, match="login refused: 0x0200"):
            c.login(IQN, initiator=name)
    finally:
        c.close()
    assert "fake log line" not in daemon.stderr_tail()
    assert "\x1b[31m" not in daemon.stderr_tail()
