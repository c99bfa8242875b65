"""A raw iSCSI initiator for tests (stdlib only): builds Basic Header Segments
(RFC 7143 §11), logs in with a real text key exchange, and can then send any
PDU, well-formed or not, and read what the target answers.

    c = RawConn("127.0.0.1", port)
    c.login(target=IQN)                 # Normal session, full feature phase
    c.send(scsi_cmd(INQUIRY, ...))      # or any bytes at all: c.sock.sendall()
    pdu = c.recv_pdu(timeout=2)         # Pdu(opcode, flags, bhs, data) or None

CRC32C digests (RFC 7143 §12.1) are off unless asked for:

    c.login(target=IQN, header_digest=True, data_digest=True)
    c.send(pdu)                         # header digest after BHS+AHS, data
                                        # digest after data+padding (if any)
    c.send(pdu, bad_ddigest=True)       # ... or with a deliberately wrong one
    p = c.recv_pdu()                    # digests checked (DigestError if
                                        # wrong); p.hdigest / p.ddigest:
                                        # the values read, None if absent
"""

import array
import socket
import struct
import sys
import time

OP_NOP_OUT, OP_SCSI_CMD, OP_TMF, OP_LOGIN, OP_TEXT, OP_DATA_OUT, OP_LOGOUT = \
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_SNACK = 0x10
OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP, OP_TEXT_RSP, OP_DATA_IN, \
    OP_LOGOUT_RSP, OP_R2T, OP_ASYNC, OP_REJECT = \
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f
IMMEDIATE = 0x40
RSVD_TAG = 0xffffffff

# Reject reasons (§11.17.1)
REJECT_PROTOCOL = 0x04
REJECT_CMD_NOT_SUPPORTED = 0x05
REJECT_INVALID_PDU_FIELD = 0x09

INITIATOR = "iqn.1994-05.com.example:raw"


# ---- CRC32C (RFC 7143 §12.1, Appendix B.4) ---------------------------------
#
# Castagnoli polynomial, reflected (0x82F63B78), register preset to all ones,
# result complemented. On the wire the digest goes least significant byte
# first: 32 zero bytes give CRC 0x8a9136aa, sent as "aa 36 91 8a" (§B.4), as
# iscsi_digest_put() in src/iscsi/digest.h does. Table-driven, two bytes per
# step (a 65536-entry table), about 50 ms per MiB.

CRC32C_POLY = 0x82F63B78
_CRC_T8 = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ CRC32C_POLY if _c & 1 else _c >> 1
    _CRC_T8.append(_c)
_CRC_T16 = [0] * 65536
for _i in range(65536):
    _c = _CRC_T8[_i & 0xff] ^ (_i >> 8)
    _CRC_T16[_i] = _CRC_T8[_c & 0xff] ^ (_c >> 8)
del _i, _c
_BIG_ENDIAN_HOST = sys.byteorder == "big"


def crc32c_update(crc, data):
    """The CRC register after `data` (no final complement)."""
    n = len(data) & ~1
    if n:
        words = array.array("H")
        words.frombytes(memoryview(data)[:n])
        if _BIG_ENDIAN_HOST:
            words.byteswap()        # little-endian pairs, as the wire has them
        t = _CRC_T16
        for w in words:
            crc = t[(crc ^ w) & 0xffff] ^ (crc >> 16)
    if n != len(data):
        crc = _CRC_T8[(crc ^ data[n]) & 0xff] ^ (crc >> 8)
    return crc


def crc32c(data):
    return crc32c_update(0xffffffff, data) ^ 0xffffffff


def digest(data):
    """The 4 digest bytes that follow `data` on the wire."""
    return crc32c(data).to_bytes(4, "little")


class DigestError(AssertionError):
    """A received header or data digest does not match the PDU."""


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def text(pairs):
    """[("k", "v"), ...] or {"k": "v"} -> b"k=v\\0..." (§6.1)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return b"".join(("%s=%s" % kv).encode() + b"\0" for kv in items)


def parse_text(data):
    out = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def bhs(opcode, flags=0, data=b"", ahs=b"", lun=0, itt=0, f20=0, f24=0,
        f28=0, f32=0, tail=b"", dsl=None, ahs_words=None):
    """A PDU: 48-byte BHS + AHS + padded data segment. dsl / ahs_words
    override the length fields (to lie about them)."""
    h = bytearray(48)
    h[0] = opcode
    h[1] = flags
    h[4] = len(ahs) // 4 if ahs_words is None else ahs_words
    n = len(data) if dsl is None else dsl
    h[5:8] = n.to_bytes(3, "big")
    h[8:16] = struct.pack(">Q", lun)
    struct.pack_into(">IIIII", h, 16, itt, f20, f24, f28, f32)
    h[36:36 + len(tail)] = tail
    return bytes(h) + ahs + pad4(data)


def lun_field(lun):
    return lun << 48 if lun < 256 else (0x4000 | lun) << 48


class Pdu:
    def __init__(self, raw_bhs, data, ahs=b"", hdigest=None, ddigest=None):
        self.bhs = raw_bhs
        self.data = data
        self.ahs = ahs
        # the digests as received (already checked), None when absent
        self.hdigest = hdigest
        self.ddigest = ddigest
        self.opcode = raw_bhs[0] & 0x3f
        self.flags = raw_bhs[1]
        self.itt, self.ttt, self.statsn, self.expcmdsn, self.maxcmdsn = \
            struct.unpack(">IIIII", raw_bhs[16:36])

    @property
    def reason(self):            # Reject (§11.17)
        return self.bhs[2]

    @property
    def status(self):            # SCSI Response (§11.4)
        return self.bhs[3]

    @property
    def login_status(self):      # Login Response (§11.13)
        return (self.bhs[36] << 8) | self.bhs[37]

    def __repr__(self):
        return "<Pdu op=0x%02x flags=0x%02x itt=0x%x dlen=%d>" % (
            self.opcode, self.flags, self.itt, len(self.data))


class Closed(Exception):
    pass


class RawConn:
    def __init__(self, host, port, timeout=10, isid=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cmdsn = 1
        self.expstatsn = 0
        self.itt = 0x100
        self.isid = bytes(isid or [0x80, 0, 0, 0x12, 0x34, 0x56])
        self.tsih = 0
        self.keys = {}
        self.buf = b""
        # CRC32C digests in use: set by login() from the negotiated keys
        self.hdigest = False
        self.ddigest = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def next_itt(self):
        self.itt += 1
        return self.itt

    # ---- I/O
    def frame(self, pdu, bad_hdigest=False, bad_ddigest=False):
        """pdu (BHS + AHS + padded data, as bhs() builds it) as it goes on
        the wire here: with a header digest after BHS + AHS and, when there
        is a data segment, a data digest after data + padding (§11.1). The
        header is BHS + TotalAHSLength words; the rest is the data segment.
        bad_*: that digest is sent wrong (one bit flipped)."""
        if (bad_hdigest and not self.hdigest) or \
                (bad_ddigest and not self.ddigest):
            raise ValueError("that digest is not in use on this connection")
        if not (self.hdigest or self.ddigest):
            return pdu
        hlen = min(len(pdu), 48 + pdu[4] * 4) if len(pdu) > 4 else len(pdu)
        head, seg = pdu[:hlen], pdu[hlen:]
        out = [head]
        if self.hdigest:
            out.append((crc32c(head) ^ int(bad_hdigest)).to_bytes(4,
                                                                  "little"))
        out.append(seg)
        if self.ddigest and seg:
            out.append((crc32c(seg) ^ int(bad_ddigest)).to_bytes(4, "little"))
        return b"".join(out)

    def header_len(self, pdu):
        """Bytes of frame(pdu) up to the data segment (header + digest)."""
        return 48 + pdu[4] * 4 + (4 if self.hdigest else 0)

    def send(self, pdu, bad_hdigest=False, bad_ddigest=False,
             header_pause=None):
        """Sends pdu with this connection's digests (see frame()).
        header_pause: send the header (and its digest) alone, wait that
        many seconds, then the data segment, so that the target reads the
        header before any data arrives."""
        wire = self.frame(pdu, bad_hdigest, bad_ddigest)
        if header_pause is None:
            self.sock.sendall(wire)
            return
        h = self.header_len(pdu)
        self.sock.sendall(wire[:h])
        time.sleep(header_pause)
        self.sock.sendall(wire[h:])

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_pdu(self, timeout=5):
        """The next PDU, or None when nothing came within timeout; raises
        Closed when the target closed the connection."""
        deadline = time.monotonic() + timeout
        try:
            h = self._read(48, deadline)
            dlen = int.from_bytes(h[5:8], "big")
            ahs = self._read(h[4] * 4, deadline)
            hd = dd = None
            if self.hdigest:
                hd = int.from_bytes(self._read(4, deadline), "little")
            seg = self._read(dlen + (-dlen % 4), deadline)
            if self.ddigest and dlen:
                dd = int.from_bytes(self._read(4, deadline), "little")
        except socket.timeout:
            return None
        if hd is not None and hd != crc32c(h + ahs):
            raise DigestError("header digest 0x%08x, computed 0x%08x: %r" % (
                hd, crc32c(h + ahs), Pdu(h, b"")))
        if dd is not None and dd != crc32c(seg):
            raise DigestError("data digest 0x%08x, computed 0x%08x: %r" % (
                dd, crc32c(seg), Pdu(h, seg[:dlen])))
        p = Pdu(h, seg[:dlen], ahs, hd, dd)
        if p.opcode != OP_DATA_IN or p.flags & 1:  # Data-In: StatSN with S only
            self.expstatsn = p.statsn + 1
        return p

    def recv_until(self, opcode, timeout=5):
        """PDUs up to and including the first with this opcode."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv_pdu(max(0.0, deadline - time.monotonic()))
            if p is None:
                return got, None
            got.append(p)
            if p.opcode == opcode:
                return got, p

    def closed_within(self, timeout):
        """True when the target closes (EOF / reset) within timeout; PDUs
        that come first are read and dropped."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv_pdu(max(0.01, deadline - time.monotonic()))
        except Closed:
            return True
        return False

    # ---- login (§6, §11.12)
    def login_pdu(self, csg, nsg, transit, pairs, cont=False, dsl=None):
        flags = (0x80 if transit else 0) | (0x40 if cont else 0) | \
            (csg << 2) | (nsg if transit else 0)
        p = bytearray(bhs(OP_LOGIN | IMMEDIATE, flags, text(pairs),
                          itt=self.itt, f24=self.cmdsn, f28=self.expstatsn,
                          dsl=dsl))
        p[8:14] = self.isid
        p[14:16] = struct.pack(">H", self.tsih)
        return bytes(p)

    def login(self, target, initiator=INITIATOR, extra=None, discovery=False,
              timeout=10, header_digest=False, data_digest=False):
        """Security stage (AuthMethod=None), then operational, then full
        feature phase. Returns the negotiated keys; raises on refusal.
        header_digest / data_digest: offer HeaderDigest / DataDigest=CRC32C
        (instead of None) and fail unless the target agrees. Whatever was
        negotiated is used from the first PDU after the final Login
        Response on (§13.1)."""
        self.login_security(target, initiator, discovery, timeout)
        ops = [("HeaderDigest", "CRC32C" if header_digest else "None"),
               ("DataDigest", "CRC32C" if data_digest else "None"),
               ("MaxRecvDataSegmentLength", "262144")]
        if not discovery:
            ops += [("InitialR2T", "Yes"), ("ImmediateData", "Yes"),
                    ("MaxBurstLength", "262144"),
                    ("FirstBurstLength", "65536"),
                    ("MaxOutstandingR2T", "1"),
                    ("ErrorRecoveryLevel", "0")]
        # extra keys replace the defaults above (a key sent twice fails)
        ops = list(dict(ops, **(extra or {})).items())
        r = self.login_step(1, 3, True, ops, timeout)
        if not (r.flags & 0x80 and r.flags & 3 == 3):
            raise AssertionError("target did not move to full feature phase")
        for key, wanted in (("HeaderDigest", header_digest),
                            ("DataDigest", data_digest)):
            if wanted and self.keys.get(key) != "CRC32C":
                raise AssertionError("offered %s=CRC32C, target answered %r"
                                     % (key, self.keys.get(key)))
        self.hdigest = self.keys.get("HeaderDigest") == "CRC32C"
        self.ddigest = self.keys.get("DataDigest") == "CRC32C"
        self.tsih = struct.unpack(">H", r.bhs[14:16])[0]
        self.cmdsn = r.expcmdsn
        self.maxcmdsn = r.maxcmdsn
        return self.keys

    def login_security(self, target, initiator=INITIATOR, discovery=False,
                       timeout=10):
        """The security stage only (AuthMethod=None, on to operational)."""
        ident = [("InitiatorName", initiator)]
        if discovery:
            ident.append(("SessionType", "Discovery"))
        else:
            ident += [("TargetName", target), ("SessionType", "Normal")]
        return self.login_step(0, 1, True, ident + [("AuthMethod", "None")],
                               timeout)

    def login_step(self, csg, nsg, transit, pairs, timeout=10):
        """One Login Request and its Response (keys kept in self.keys)."""
        self.send(self.login_pdu(csg, nsg, transit, pairs))
        return self._login_rsp(timeout)

    def _login_rsp(self, timeout):
        r = self.recv_pdu(timeout)
        if r is None or r.opcode != OP_LOGIN_RSP:
            raise AssertionError("no Login Response: %r" % r)
        if r.login_status:
            raise AssertionError("login refused: 0x%04x" % r.login_status)
        self.keys.update(parse_text(r.data))
        return r

    # ---- full feature phase PDUs
    def nop_out(self, data=b"", immediate=True, itt=None):
        itt = self.next_itt() if itt is None else itt
        p = bhs(OP_NOP_OUT | (IMMEDIATE if immediate else 0), 0x80, data,
                itt=itt, f20=RSVD_TAG, f24=self.cmdsn, f28=self.expstatsn)
        if not immediate:
            self.cmdsn += 1
        return p

    def ping(self, timeout=5):
        """NOP-Out / NOP-In round trip: the session still works. Returns the
        NOP-In (PDUs before it are dropped) or None."""
        itt = self.next_itt()
        self.send(self.nop_out(b"ping", itt=itt))
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv_pdu(max(0.0, deadline - time.monotonic()))
            if p is None:
                return None
            if p.opcode == OP_NOP_IN and p.itt == itt:
                return p

    def scsi_cmd(self, cdb, edtl=0, read=False, write=False, data=b"",
                 final=True, lun=0, itt=None, cmdsn=None, flags_extra=0,
                 immediate=False):
        itt = self.next_itt() if itt is None else itt
        sn = self.cmdsn if cmdsn is None else cmdsn
        if cmdsn is None and not immediate:
            self.cmdsn += 1
        flags = (0x80 if final else 0) | (0x40 if read else 0) | \
            (0x20 if write else 0) | 1 | flags_extra
        p = bytearray(bhs(OP_SCSI_CMD | (IMMEDIATE if immediate else 0),
                          flags, data, lun=lun_field(lun), itt=itt, f20=edtl,
                          f24=sn, f28=self.expstatsn))
        p[32:32 + len(cdb)] = cdb
        return bytes(p)

    def data_out(self, itt, ttt, datasn, offset, data, final=True, lun=0):
        return bhs(OP_DATA_OUT, 0x80 if final else 0, data,
                   lun=lun_field(lun), itt=itt, f20=ttt, f28=self.expstatsn,
                   tail=struct.pack(">II", datasn, offset))

    def max_send_dsl(self):
        """The MaxRecvDataSegmentLength the target declared (§13.12)."""
        return int(self.keys.get("MaxRecvDataSegmentLength", 8192))

    def data_out_seq(self, itt, ttt, offset, data, lun=0):
        """The Data-Out PDUs of one sequence (DataSN from 0, F on the
        last), each at most the target's MaxRecvDataSegmentLength."""
        step = self.max_send_dsl()
        chunks = [data[i:i + step] for i in range(0, len(data), step)] or \
            [b""]
        return [self.data_out(itt, ttt, sn, offset + sn * step, ch,
                              final=sn == len(chunks) - 1, lun=lun)
                for sn, ch in enumerate(chunks)]

    def immediate_limit(self):
        """How much immediate data a command may carry (§13.11, §13.14)."""
        if self.keys.get("ImmediateData") == "No":
            return 0
        return min(int(self.keys.get("FirstBurstLength", 65536)),
                   self.max_send_dsl())

    def command(self, cdb, edtl=0, read=False, write=False, data=b"",
                timeout=5, lun=0):
        """Runs one SCSI command to its response (answering R2Ts);
        returns (response PDU, Data-In bytes). The response is the SCSI
        Response or the last Data-In when it carries the status (S bit);
        its .status is the SCSI status either way."""
        itt = self.next_itt()
        imm = data[:min(len(data), self.immediate_limit())] if write else b""
        self.send(self.scsi_cmd(cdb, edtl, read, write, imm, itt=itt,
                                lun=lun))
        return self.wait_status(itt, data, timeout, lun)

    def wait_status(self, itt, data=b"", timeout=5, lun=0):
        din = b""
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv_pdu(max(0.0, deadline - time.monotonic()))
            if p is None:
                return None, din
            if p.opcode == OP_DATA_IN and p.itt == itt:
                din += p.data
                if p.flags & 1:
                    return p, din
            elif p.opcode == OP_R2T and p.itt == itt:
                off, length = struct.unpack(">II", p.bhs[40:48])
                for pdu in self.data_out_seq(itt, p.ttt, off,
                                             data[off:off + length], lun=lun):
                    self.send(pdu)
            elif p.opcode == OP_SCSI_RSP and p.itt == itt:
                return p, din

    def logout(self, timeout=5):
        self.send(bhs(OP_LOGOUT | IMMEDIATE, 0x80, itt=self.next_itt(),
                      f24=self.cmdsn, f28=self.expstatsn))
        return self.recv_until(OP_LOGOUT_RSP, timeout)[1]


TUR = bytes(6)
INQUIRY = bytes([0x12, 0, 0, 0, 96, 0])


def read10(lba, nblk):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, nblk, 0)


def write10(lba, nblk):
    return struct.pack(">BBIBHB", 0x2a, 0, lba, 0, nblk, 0)
