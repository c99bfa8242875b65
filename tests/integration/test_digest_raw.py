"""CRC32C header and data digests received by the target (RFC 7143 §12.1),
driven by the raw client (iscsiraw), since libiscsi cannot negotiate
DataDigest.

- I/O with HeaderDigest+DataDigest, DataDigest only and HeaderDigest only:
  READ CAPACITY, NOP-Outs with and without data, PDUs without a data
  segment pipelined with others (§11.1: no data digest without data), a
  4 KiB WRITE with immediate data, a 1 MiB WRITE (FirstBurstLength of
  immediate data, then 256 KiB R2Ts / Data-Outs), READs back, Logout. Every
  PDU the target sends is checked: its digests are present exactly when
  negotiated (the data digest only with a data segment) and correct.
- A wrong data digest (on immediate data; on a small Data-Out read through
  the receive buffer; on a 256 KiB Data-Out read straight into the task
  buffer): Reject 0x02 (§11.17.1) carrying the PDU's header, then the
  connection closes (ErrorRecoveryLevel 0); the blocks are unchanged.
- A wrong header digest: the connection closes (§7.8, the PDU's length
  cannot be trusted at ERL 0) and the PDU is not acted upon.
- Around every fault, a session logged in before it keeps working, and a
  fresh login afterwards works.
"""

import random
import struct
import time

import pytest

import iscsiraw as raw
import uthelpers as ut
from uthelpers import KiB, MiB

IQN = ut.DEFAULT_TARGET
INIT = "iqn.1994-05.com.example:digest-"
SIZE = 16 * MiB
MRDSL = 262144
PARAMS = {"HeaderDigest": "CRC32C,None", "DataDigest": "CRC32C,None",
          "MaxRecvDataSegmentLength": str(MRDSL)}
REJECT_DATA_DIGEST = 0x02      # §11.17.1 "Data (payload) digest error"

MODES = [pytest.param(True, True, id="hd+dd"),
         pytest.param(False, True, id="dd"),
         pytest.param(True, False, id="hd")]


@pytest.fixture
def daemon(config, utarget):
    config.target(IQN).tpg(parameters=PARAMS).lun(
        0, config.ramdisk("rd0", size=SIZE))
    return utarget(config)


_isids = iter(range(1, 1 << 16))


def session(daemon, name, hd=True, dd=True, isid=None):
    """A logged-in RawConn with these digests, past the POWER ON unit
    attention. Every session has its own ISID unless one is given."""
    isid = isid or bytes([0x80, 0, 0, 0x44]) + next(_isids).to_bytes(2, "big")
    c = raw.RawConn("127.0.0.1", daemon.port, isid=isid)
    keys = c.login(IQN, initiator=INIT + name, header_digest=hd,
                   data_digest=dd)
    assert (c.hdigest, c.ddigest) == (hd, dd), keys
    assert keys["HeaderDigest"] == ("CRC32C" if hd else "None")
    assert keys["DataDigest"] == ("CRC32C" if dd else "None")
    assert c.max_send_dsl() == MRDSL, keys
    for _ in range(3):
        rsp, _ = c.command(raw.TUR)
        assert rsp is not None, "no answer to TEST UNIT READY"
        check_digests(c, rsp)
        if rsp.status == 0:
            return c
    raise AssertionError("TEST UNIT READY never returned GOOD")


def check_digests(c, p):
    """recv_pdu already verified the digests it read; here: they were there
    exactly when negotiated, the data digest only with a data segment."""
    assert (p.hdigest is not None) == c.hdigest, \
        "header digest %r on %r (HeaderDigest %s)" % (p.hdigest, p, c.hdigest)
    assert (p.ddigest is not None) == (c.ddigest and len(p.data) > 0), \
        "data digest %r on %r (DataDigest %s)" % (p.ddigest, p, c.ddigest)


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


def write(c, lba, data, timeout=20):
    """WRITE(10): up to FirstBurstLength as immediate data, the rest on R2T;
    returns the R2Ts' (offset, length) and the Data-Out sizes sent."""
    itt = c.next_itt()
    imm = data[:c.immediate_limit()]
    c.send(c.scsi_cmd(raw.write10(lba, len(data) // 512), len(data),
                      write=True, data=imm, itt=itt))
    r2ts, outs = [], []
    while True:
        p = c.recv_pdu(timeout)
        assert p is not None, "no answer to the WRITE (R2Ts so far %r)" % r2ts
        check_digests(c, p)
        if p.opcode == raw.OP_R2T and p.itt == itt:
            off, length = struct.unpack(">II", p.bhs[40:48])
            r2ts.append((off, length))
            for pdu in c.data_out_seq(itt, p.ttt, off, data[off:off + length]):
                outs.append(len(pdu) - 48)
                c.send(pdu)
        elif p.opcode == raw.OP_SCSI_RSP and p.itt == itt:
            assert p.status == 0, "WRITE status 0x%02x" % p.status
            return r2ts, outs
        else:
            raise AssertionError("unexpected %r during the WRITE" % p)


def read(c, lba, n, timeout=20, cdb=None):
    """READ(10) of n bytes (or another command reading n bytes):
    (data, Data-In PDUs)."""
    itt = c.next_itt()
    cdb = cdb or raw.read10(lba, n // 512)
    c.send(c.scsi_cmd(cdb, n, read=True, itt=itt))
    data, pdus = b"", []
    while True:
        p = c.recv_pdu(timeout)
        assert p is not None, "READ: no answer after %d bytes" % len(data)
        check_digests(c, p)
        if p.opcode == raw.OP_DATA_IN and p.itt == itt:
            pdus.append(p)
            data += p.data
            if p.flags & 1:
                assert p.status == 0, "READ status 0x%02x" % p.status
                return data, pdus
        elif p.opcode == raw.OP_SCSI_RSP and p.itt == itt:
            assert p.status == 0, "READ status 0x%02x" % p.status
            return data, pdus
        else:
            raise AssertionError("unexpected %r during the READ" % p)


def nop(c, data=b""):
    """A NOP-Out (I=1, TTT reserved) answered by its NOP-In echoing data."""
    itt = c.next_itt()
    c.send(c.nop_out(data, itt=itt))
    got, nin = c.recv_until(raw.OP_NOP_IN)
    assert nin is not None, "no NOP-In (got %r)" % got
    assert nin.itt == itt and nin.data == data
    check_digests(c, nin)
    return nin


def logout(c):
    rsp = c.logout()
    assert rsp is not None, "no Logout Response"
    assert rsp.bhs[2] == 0, "Logout response 0x%02x" % rsp.bhs[2]
    check_digests(c, rsp)
    assert c.closed_within(5), "connection open after the Logout Response"
    c.close()


def still_serving(daemon, lba, expect):
    """The daemon is up and a fresh login (with both digests) reads `expect`
    at lba and logs out."""
    assert daemon.alive(), daemon.stderr_tail()
    c = session(daemon, "fresh")
    try:
        got, _ = read(c, lba, len(expect))
        assert got == expect, "blocks at LBA %d changed" % lba
        logout(c)
    finally:
        c.close()


def expect_reject_then_close(c, sent, itt):
    """Reject 0x02 whose data is the rejected PDU's BHS, no answer to the
    task, then the connection closes."""
    got, rej = c.recv_until(raw.OP_REJECT, timeout=5)
    assert rej is not None, "no Reject for the data digest error: %r" % got
    assert rej.reason == REJECT_DATA_DIGEST, "reason 0x%02x" % rej.reason
    assert rej.itt == raw.RSVD_TAG
    assert rej.data[:48] == sent[:48], "the Reject does not carry the header"
    check_digests(c, rej)
    assert not [p for p in got if p.itt == itt and p is not rej], got
    assert c.closed_within(5), "connection still open after the Reject"


# ---- CRC32C itself ----------------------------------------------------------

def test_crc32c_rfc_vectors():
    """RFC 7143 Appendix B.4, with the CRC bytes in wire order."""
    read10_pdu = bytearray(48)
    for i, v in {0: 0x01, 1: 0xc0, 16: 0x14, 22: 0x04, 27: 0x14, 31: 0x18,
                 32: 0x28, 40: 0x02}.items():
        read10_pdu[i] = v
    vectors = [(bytes(32), "aa36918a"), (b"\xff" * 32, "43aba862"),
               (bytes(range(32)), "4e79dd46"),
               (bytes(range(31, -1, -1)), "5cdb3f11"),
               (bytes(read10_pdu), "563a96d9")]
    for data, wire in vectors:
        assert raw.digest(data).hex() == wire
    assert raw.crc32c(b"123456789") == 0xe3069283    # the CRC-32C check value
    # two bytes per step: odd lengths and chaining agree with one byte per step
    blob = pattern(1001, 7)
    crc = 0xffffffff
    for b in blob:
        crc = raw._CRC_T8[(crc ^ b) & 0xff] ^ (crc >> 8)
    assert raw.crc32c(blob) == crc ^ 0xffffffff
    assert raw.crc32c_update(raw.crc32c_update(0xffffffff, blob[:501]),
                             blob[501:]) == crc


# ---- I/O with digests -------------------------------------------------------

@pytest.mark.parametrize("hd,dd", MODES)
def test_io_with_digests(daemon, hd, dd):
    c = session(daemon, "io", hd, dd)
    try:
        # READ CAPACITY(10): 8 bytes of data in a Data-In with status
        data, _ = read(c, 0, 8, cdb=bytes([0x25]) + bytes(9))
        assert struct.unpack(">II", data) == (SIZE // 512 - 1, 512)

        # NOP-Out without data: no data digest follows it, none on the NOP-In
        nin = nop(c)
        assert nin.ddigest is None
        # NOP-Out with data (odd length: the digest covers the padding)
        nop(c, pattern(1001, 1))

        # the header digest covers BHS + AHS and follows the AHS (§11.1): a
        # SCSI command with a (well-formed, unsupported) 32-byte-CDB AHS is
        # answered Reject 0x05, not closed as a header digest error
        ext = struct.pack(">HBB", 17, 1, 0) + bytes(16)
        p = bytearray(c.scsi_cmd(raw.INQUIRY, 96, read=True))
        p[4] = len(ext) // 4
        p = bytes(p[:48]) + ext
        c.send(p)
        got, rej = c.recv_until(raw.OP_REJECT)
        assert rej is not None, "no Reject for the AHS (got %r)" % got
        assert rej.reason == raw.REJECT_CMD_NOT_SUPPORTED
        assert rej.data[:48] == p[:48]
        check_digests(c, rej)

        # PDUs without data segment sent back to back with others in one
        # write: a target that waits for a data digest after them reads the
        # next PDU's header as one and loses the framing
        itt_nop, itt_rd, itt_tail = c.next_itt(), c.next_itt(), c.next_itt()
        burst = [c.nop_out(itt=itt_nop),
                 c.scsi_cmd(raw.read10(0, 1), 512, read=True, itt=itt_rd),
                 c.nop_out(b"tail", itt=itt_tail)]
        c.sock.sendall(b"".join(c.frame(p) for p in burst))
        nops, read_done = [], False
        while len(nops) < 2 or not read_done:
            p = c.recv_pdu(5)
            assert p is not None, "pipelined PDUs unanswered (NOP-Ins %r, " \
                "READ done %s)" % (nops, read_done)
            check_digests(c, p)
            if p.opcode == raw.OP_NOP_IN:
                nops.append((p.itt, p.data))
            elif p.itt == itt_rd and p.opcode in (raw.OP_DATA_IN,
                                                  raw.OP_SCSI_RSP):
                read_done = read_done or p.opcode == raw.OP_SCSI_RSP or \
                    bool(p.flags & 1)
            else:
                raise AssertionError("unexpected %r" % p)
        assert nops == [(itt_nop, b""), (itt_tail, b"tail")], nops

        # 4 KiB WRITE, all of it immediate data; READ back
        four = pattern(4 * KiB, 2)
        r2ts, _ = write(c, 64, four)
        assert r2ts == [], "R2T for a write that fit in immediate data"
        got, _ = read(c, 64, len(four))
        assert got == four

        # 1 MiB WRITE: FirstBurstLength (64 KiB) of immediate data, the rest
        # on R2Ts of MaxBurstLength (256 KiB), one Data-Out each
        mib = pattern(MiB, 3)
        fb = int(c.keys["FirstBurstLength"])
        mb = int(c.keys["MaxBurstLength"])
        assert (fb, mb) == (64 * KiB, 256 * KiB), c.keys
        r2ts, outs = write(c, 2048, mib)
        assert r2ts and r2ts[0][0] == fb, r2ts
        assert all(ln <= mb for _, ln in r2ts), r2ts
        assert sum(ln for _, ln in r2ts) == MiB - fb, r2ts
        assert max(outs) == 256 * KiB, outs
        got, pdus = read(c, 2048, MiB)
        assert got == mib, "1 MiB read back differs"
        assert max(len(p.data) for p in pdus) <= MRDSL   # what we declared

        nop(c)
        logout(c)
    finally:
        c.close()


def send_in_pieces(c, wire, cuts=None, seed=None):
    """Send wire in pieces with pauses, so the target's reads end where the
    pieces do: at the given offsets, or (seed) at random places: inside a
    payload, inside its padding or data digest, inside the next header."""
    if cuts is None:
        rnd, cuts, i = random.Random(seed), [], 0
        while i < len(wire):
            i += rnd.choice((1, 2, 3, 5, 47, 49, 52, 700, 4099, 16384, 20000))
            cuts.append(i)
    prev = 0
    for cut in sorted(cuts) + [len(wire)]:
        if cut > prev:
            c.sock.sendall(wire[prev:cut])
            prev = cut
            time.sleep(0.002)


def collect(c, want, timeout=10):
    """PDUs until every (opcode, itt) in want has been seen; returns them."""
    got = {}
    while set(want) - set(got):
        p = c.recv_pdu(timeout)
        assert p is not None, "waiting for %r, got %r" % (want, got)
        check_digests(c, p)
        got[(p.opcode, p.itt)] = p
    return got


def write_in_pieces(c, lba, data, how):
    """A WRITE (64 KiB immediate, the rest on one R2T / Data-Out), each PDU
    sent in pieces and followed by a NOP-Out in the same stream. how(frame
    of the PDU, frame of PDU + NOP) -> cut offsets, or None for random."""
    imm = data[:c.immediate_limit()]
    assert len(imm) == 64 * KiB and len(data) - len(imm) <= MRDSL
    itt, n1, n2 = c.next_itt(), c.next_itt(), c.next_itt()
    cmd = c.frame(c.scsi_cmd(raw.write10(lba, len(data) // 512), len(data),
                             write=True, data=imm, itt=itt))
    wire = cmd + c.frame(c.nop_out(b"one", itt=n1))
    send_in_pieces(c, wire, how(cmd, wire), seed=lba)
    got = collect(c, [(raw.OP_R2T, itt), (raw.OP_NOP_IN, n1)])
    r2t = got[(raw.OP_R2T, itt)]
    off, length = struct.unpack(">II", r2t.bhs[40:48])
    assert (off, length) == (len(imm), len(data) - len(imm))
    [out] = c.data_out_seq(itt, r2t.ttt, off, data[off:])
    out = c.frame(out)
    wire = out + c.frame(c.nop_out(b"two!!", itt=n2))
    send_in_pieces(c, wire, how(out, wire), seed=lba + 1)
    got = collect(c, [(raw.OP_SCSI_RSP, itt), (raw.OP_NOP_IN, n2)])
    assert got[(raw.OP_SCSI_RSP, itt)].status == 0
    assert got[(raw.OP_NOP_IN, n2)].data == b"two!!"
    back, _ = read(c, lba, len(data))
    assert back == data


@pytest.mark.parametrize("hd,dd", MODES + [pytest.param(False, False, id="none")])
def test_large_pdus_arriving_in_pieces(daemon, hd, dd):
    """Payloads of 16 KiB and more are received in place, and the read that
    finishes one also takes its padding, data digest and exactly the next
    header (src/iscsi/conn.c rx_direct). Here each large PDU arrives in
    pieces, followed by a NOP-Out: the header with the first bytes of the
    payload, then the rest with the trailer and the start of the NOP-Out's
    header in one piece (that read ends inside the next header), then the
    rest; and once more cut at random places. The data must land intact and
    every PDU be answered."""
    c = session(daemon, "split", hd, dd)
    try:
        h = 48 + (4 if hd else 0)
        for tail in (0, 3, 10, h, h + 1):    # where the big read ends
            write_in_pieces(c, 512 + tail * 512, pattern(192 * KiB, tail),
                            lambda pdu, wire, t=tail: [h + 100, len(pdu) + t])
        write_in_pieces(c, 8192, pattern(192 * KiB, 99), lambda pdu, wire: None)
        logout(c)
    finally:
        c.close()


# ---- wrong digests ----------------------------------------------------------

def test_wrong_data_digest_on_immediate_data(daemon):
    """§7.8 / §11.17.1: a data digest error is answered with Reject 0x02;
    at ERL 0 the target then ends the connection. The WRITE never runs."""
    lba = 256
    old, new = pattern(4 * KiB, 10), pattern(4 * KiB, 11)
    other = session(daemon, "other")
    bad_isid = bytes([0x80, 0, 0, 0x55, 0, 1])
    try:
        write(other, lba, old)
        bad = session(daemon, "bad", isid=bad_isid)
        with bad:
            itt = bad.next_itt()
            pdu = bad.scsi_cmd(raw.write10(lba, 8), len(new), write=True,
                               data=new, itt=itt)
            bad.send(pdu, bad_ddigest=True)
            expect_reject_then_close(bad, pdu, itt)
        # the session logged in before the fault is fine, the data unchanged
        got, _ = read(other, lba, len(old))
        assert got == old, "a WRITE with a bad data digest changed the blocks"
        nop(other, b"alive")
        # the failed initiator logs in again (same ISID: the old session
        # is reinstated, §6.3.5) and reads the old data
        again = session(daemon, "bad", isid=bad_isid)
        with again:
            got, _ = read(again, lba, len(old))
            assert got == old
            logout(again)
        still_serving(daemon, lba, old)
        logout(other)
    finally:
        other.close()


@pytest.mark.parametrize("size", [pytest.param(4 * KiB, id="4k-rbuf"),
                                  pytest.param(256 * KiB, id="256k-direct")])
def test_wrong_data_digest_on_data_out(daemon, size):
    """The same on a solicited Data-Out; 256 KiB (more than the daemon's
    64 KiB receive buffer and its 16 KiB direct-receive threshold, the
    header sent alone first) is read straight into the task buffer, 4 KiB
    through the receive buffer."""
    lba = 1024
    old, new = pattern(size, 20), pattern(size, 21)
    other = session(daemon, "other")
    try:
        write(other, lba, old)
        with session(daemon, "bad") as bad:
            itt = bad.next_itt()
            bad.send(bad.scsi_cmd(raw.write10(lba, size // 512), size,
                                  write=True, itt=itt))
            got, r2t = bad.recv_until(raw.OP_R2T)
            assert r2t is not None and r2t.itt == itt, got
            check_digests(bad, r2t)
            assert struct.unpack(">II", r2t.bhs[40:48]) == (0, size)
            pdu = bad.data_out(itt, r2t.ttt, 0, 0, new)
            bad.send(pdu, bad_ddigest=True, header_pause=0.2)
            expect_reject_then_close(bad, pdu, itt)
        got, _ = read(other, lba, size)
        assert got == old, "a Data-Out with a bad data digest was written"
        nop(other, b"alive")
        still_serving(daemon, lba, old)
        logout(other)
    finally:
        other.close()


@pytest.mark.parametrize("kind", ["nop-out", "write"])
def test_wrong_header_digest_closes_the_connection(daemon, kind):
    """§7.8: at ERL 0 a header digest error ends the connection (its length
    fields cannot be trusted); the PDU is not acted upon (no NOP-In, no
    WRITE). A Reject is allowed but not needed."""
    lba = 4096
    old, new = pattern(4 * KiB, 30), pattern(4 * KiB, 31)
    other = session(daemon, "other")
    try:
        write(other, lba, old)
        with session(daemon, "bad") as bad:
            itt = bad.next_itt()
            if kind == "nop-out":
                pdu = bad.nop_out(itt=itt)
            else:
                pdu = bad.scsi_cmd(raw.write10(lba, 8), len(new), write=True,
                                   data=new, itt=itt)
            bad.send(pdu, bad_hdigest=True)
            answers = []
            try:
                while True:
                    p = bad.recv_pdu(5)
                    assert p is not None, \
                        "connection still open 5 s after a header digest error"
                    answers.append(p)
            except raw.Closed:
                pass
            assert all(p.opcode == raw.OP_REJECT for p in answers), answers
        got, _ = read(other, lba, len(old))
        assert got == old, "a WRITE with a bad header digest was executed"
        nop(other, b"alive")
        still_serving(daemon, lba, old)
        logout(other)
    finally:
        other.close()
