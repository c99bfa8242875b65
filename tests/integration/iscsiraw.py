"""A raw iSCSI initiator for tests (stdlib only): builds Basic Header Segments
(RFC 7143 §11), logs in with a real text key exchange, and can then send any
PDU, well-formed or not, and read what the target answers.

    c = RawConn("127.0.0.1", port)
    c.login(target=IQN)                 # Normal session, full feature phase
    c.send(scsi_cmd(INQUIRY, ...))      # or any bytes at all: c.sock.sendall()
    pdu = c.recv_pdu(timeout=2)         # Pdu(opcode, flags, bhs, data) or None
"""

import socket
import struct
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
    def __init__(self, raw_bhs, data):
        self.bhs = raw_bhs
        self.data = data
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
    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cmdsn = 1
        self.expstatsn = 0
        self.itt = 0x100
        self.isid = bytes([0x80, 0, 0, 0x12, 0x34, 0x56])
        self.tsih = 0
        self.keys = {}
        self.buf = b""

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
    def send(self, pdu):
        self.sock.sendall(pdu)

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
            self._read(h[4] * 4, deadline)
            data = self._read(dlen + (-dlen % 4), deadline)[:dlen]
        except socket.timeout:
            return None
        p = Pdu(h, data)
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
              timeout=10):
        """Security stage (AuthMethod=None), then operational, then full
        feature phase. Returns the negotiated keys; raises on refusal."""
        ident = [("InitiatorName", initiator)]
        if discovery:
            ident.append(("SessionType", "Discovery"))
        else:
            ident += [("TargetName", target), ("SessionType", "Normal")]
        self.send(self.login_pdu(0, 1, True, ident + [("AuthMethod", "None")]))
        r = self._login_rsp(timeout)
        ops = [("HeaderDigest", "None"), ("DataDigest", "None"),
               ("MaxRecvDataSegmentLength", "262144")]
        if not discovery:
            ops += [("InitialR2T", "Yes"), ("ImmediateData", "Yes"),
                    ("MaxBurstLength", "262144"),
                    ("FirstBurstLength", "65536"),
                    ("MaxOutstandingR2T", "1"),
                    ("ErrorRecoveryLevel", "0")]
        # extra keys replace the defaults above (a key sent twice fails)
        ops = list(dict(ops, **(extra or {})).items())
        self.send(self.login_pdu(1, 3, True, ops))
        r = self._login_rsp(timeout)
        if not (r.flags & 0x80 and r.flags & 3 == 3):
            raise AssertionError("target did not move to full feature phase")
        self.tsih = struct.unpack(">H", r.bhs[14:16])[0]
        self.cmdsn = r.expcmdsn
        self.maxcmdsn = r.maxcmdsn
        return self.keys

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

    def command(self, cdb, edtl=0, read=False, write=False, data=b"",
                timeout=5, lun=0):
        """Runs one SCSI command to its response (answering R2Ts);
        returns (response PDU, Data-In bytes). The response is the SCSI
        Response or the last Data-In when it carries the status (S bit);
        its .status is the SCSI status either way."""
        itt = self.next_itt()
        imm = data[:min(len(data), 65536)] if write else b""
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
                self.send(self.data_out(itt, p.ttt, 0, off,
                                        data[off:off + length], lun=lun))
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
