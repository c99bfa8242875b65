"""A minimal raw iSCSI initiator (RFC 7143) that can stop anywhere: mid-login, between an
R2T and its Data-Out, in the middle of a Data-Out sequence. test_faults.py runs it as a
child process (`python3 faultraw.py PORT TARGET SCENARIO`), waits for the line
"READY <what>" on its stdout, then SIGKILLs it — a killed initiator, not a polite close.

Scenarios:
  connect-only       TCP connect, send nothing
  half-login-pdu     half a Login Request BHS
  login-security     security stage answered (T=1 CSG=0 NSG=1), operational not started
  login-operational  operational keys sent with T=0 (the target answers and waits)
  logged-in          full feature phase reached, nothing sent after
  r2t-no-data        WRITE of 1 MiB (InitialR2T=Yes, ImmediateData=No): first R2T received,
                     no Data-Out sent
  r2t-half-data      as r2t-no-data, then half of the first burst's Data-Out PDUs sent
  r2t-many           8 WRITEs of 1 MiB outstanding, each with its first R2T and part of
                     its data
  writes-in-flight   32 WRITEs of 64 KiB with immediate data, sent back to back with no
                     reading: the target has them in its backstore when the kill lands
  reads-unread       32 READs of 1 MiB sent, Data-In never read (the target's send
                     queue fills up)
"""

import socket
import struct
import sys

LOGIN_REQ, LOGIN_RSP = 0x03, 0x23
SCSI_CMD, SCSI_RSP, DATA_OUT, DATA_IN, R2T = 0x01, 0x21, 0x05, 0x25, 0x31


def _pad(n):
    return (4 - n % 4) % 4


def _keys(d):
    return b"".join(("%s=%s" % kv).encode() + b"\0" for kv in d.items())


class Raw:
    def __init__(self, port, target, initiator, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=20)
        self.target, self.initiator = target, initiator
        self.cmdsn, self.statsn, self.itt = 1, 0, 0x10
        self.isid = bytes([0x80, 0x00, 0x00, 0x4f, 0x11, 0x22])

    # -- framing
    def send(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = struct.pack(">I", len(data))[1:]
        self.sock.sendall(bytes(bhs) + data + b"\0" * _pad(len(data)))

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise EOFError("connection closed by the target")
            b += chunk
        return b

    def recv(self):
        bhs = self.recv_exact(48)
        ahs = bhs[4] * 4
        dsl = int.from_bytes(bhs[5:8], "big")
        rest = self.recv_exact(ahs + dsl + _pad(dsl))
        return bhs, rest[ahs:ahs + dsl]

    def recv_op(self, opcode):
        """Next PDU with this opcode (NOP-Ins are skipped)."""
        while True:
            bhs, data = self.recv()
            if bhs[0] & 0x3f == opcode:
                return bhs, data
            if bhs[0] & 0x3f == 0x20:  # NOP-In
                continue
            raise AssertionError("expected opcode 0x%02x, got 0x%02x" % (opcode, bhs[0] & 0x3f))

    # -- login
    def login_pdu(self, csg, nsg, transit, keys):
        bhs = bytearray(48)
        bhs[0] = 0x40 | LOGIN_REQ
        bhs[1] = (0x80 if transit else 0) | (csg << 2) | nsg
        bhs[8:14] = self.isid
        bhs[16:20] = struct.pack(">I", self.itt)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        bhs[28:32] = struct.pack(">I", self.statsn)
        return bytes(bhs), _keys(keys)

    def login_step(self, csg, nsg, transit, keys):
        self.send(*self.login_pdu(csg, nsg, transit, keys))
        bhs, data = self.recv_op(LOGIN_RSP)
        if bhs[36] != 0:
            raise AssertionError("login rejected: status %d/%d" % (bhs[36], bhs[37]))
        self.statsn = struct.unpack(">I", bhs[24:28])[0] + 1
        return bhs, data

    def login_security(self):
        return self.login_step(0, 1, True, {
            "InitiatorName": self.initiator, "TargetName": self.target,
            "SessionType": "Normal", "AuthMethod": "None"})

    OPERATIONAL = {
        "HeaderDigest": "None", "DataDigest": "None",
        "InitialR2T": "Yes", "ImmediateData": "No",
        "MaxRecvDataSegmentLength": "65536", "MaxBurstLength": "262144",
        "FirstBurstLength": "65536", "MaxOutstandingR2T": "1",
        "ErrorRecoveryLevel": "0", "DefaultTime2Wait": "0", "DefaultTime2Retain": "0",
    }

    def login(self, **overrides):
        self.login_security()
        keys = dict(self.OPERATIONAL)
        keys.update(overrides)
        while True:
            bhs, data = self.login_step(1, 3, True, keys)
            if bhs[1] & 0x80 and bhs[1] & 0x3 == 3:
                break
            keys = {}
        self.params = dict(kv.split("=", 1) for kv in data.decode().split("\0") if "=" in kv)

    def clear_ua(self, lun=0):
        """TEST UNIT READY until GOOD: the power-on UNIT ATTENTION must not answer the
        command a scenario parks."""
        for _ in range(4):
            self.scsi_cmd(bytes(6), 0, lun=lun)
            bhs, _ = self.recv_op(SCSI_RSP)
            self.statsn = struct.unpack(">I", bhs[24:28])[0] + 1
            if bhs[3] == 0:
                return
        raise AssertionError("TEST UNIT READY never GOOD")

    # -- full feature phase
    def scsi_cmd(self, cdb, edtl, write=False, read=False, lun=0, data=b""):
        self.itt += 1
        bhs = bytearray(48)
        bhs[0] = SCSI_CMD
        bhs[1] = 0x80 | (0x20 if write else 0) | (0x40 if read else 0) | 1
        bhs[8:16] = struct.pack(">Q", lun << 48) if lun else bytes(8)
        bhs[16:20] = struct.pack(">I", self.itt)
        bhs[20:24] = struct.pack(">I", edtl)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        bhs[28:32] = struct.pack(">I", self.statsn)
        bhs[32:32 + len(cdb)] = cdb
        self.cmdsn += 1
        self.send(bhs, data)
        return self.itt

    @staticmethod
    def write10(lba, blocks):
        return struct.pack(">BBIBHB", 0x2a, 0, lba, 0, blocks, 0)

    @staticmethod
    def read10(lba, blocks):
        return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)

    def data_out(self, itt, ttt, offset, data, datasn, final):
        bhs = bytearray(48)
        bhs[0] = DATA_OUT
        bhs[1] = 0x80 if final else 0
        bhs[16:20] = struct.pack(">I", itt)
        bhs[20:24] = struct.pack(">I", ttt)
        bhs[28:32] = struct.pack(">I", self.statsn)
        bhs[36:40] = struct.pack(">I", datasn)
        bhs[40:44] = struct.pack(">I", offset)
        self.send(bhs, data)

    def r2t(self):
        bhs, _ = self.recv_op(R2T)
        itt, ttt = struct.unpack(">II", bhs[16:24])
        offset, length = struct.unpack(">II", bhs[40:48])
        return itt, ttt, offset, length


def ready(what):
    print("READY " + what, flush=True)


def hang():
    sys.stdin.read()  # until the test kills us (or closes our stdin)


def main():
    port, target, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    initiator = "iqn.2024-01.org.utarget.test:faultraw-" + scenario
    if scenario == "connect-only":
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        ready(scenario)
        hang()
        return
    r = Raw(port, target, initiator)
    if scenario == "half-login-pdu":
        bhs, data = r.login_pdu(0, 1, True, {"InitiatorName": initiator})
        r.sock.sendall(bhs[:24])
        ready(scenario)
        hang()
        return
    if scenario == "login-security":
        r.login_security()
        ready(scenario)
        hang()
        return
    if scenario == "login-operational":
        r.login_security()
        r.login_step(1, 3, False, Raw.OPERATIONAL)
        ready(scenario)
        hang()
        return
    r.login()
    r.clear_ua()
    if scenario == "logged-in":
        ready(scenario)
        hang()
        return
    burst = 64 * 1024
    mrdsl = int(r.params.get("MaxRecvDataSegmentLength", "8192"))  # the target's
    seg = min(mrdsl, 8192)
    if scenario in ("r2t-no-data", "r2t-half-data"):
        itt = r.scsi_cmd(Raw.write10(0, 2048), 1 << 20, write=True)
        _, ttt, off, length = r.r2t()
        if scenario == "r2t-half-data":
            sent = 0
            datasn = 0
            while sent < length // 2:
                r.data_out(itt, ttt, off + sent, b"\xa5" * seg, datasn, False)
                sent += seg
                datasn += 1
        ready("%s r2t offset %d length %d" % (scenario, off, length))
        hang()
        return
    if scenario == "r2t-many":
        itts = [r.scsi_cmd(Raw.write10(i * 2048, 2048), 1 << 20, write=True) for i in range(8)]
        for _ in itts:
            itt, ttt, off, length = r.r2t()
            r.data_out(itt, ttt, off, b"\x5a" * seg, 0, False)
        ready(scenario)
        hang()
        return
    if scenario == "writes-in-flight":
        # Immediate data needs ImmediateData=Yes; this scenario logs in on a second
        # connection with it (the first, above, is simply left logged in and killed too).
        r2 = Raw(port, target, initiator + "-imm")
        r2.isid = bytes([0x80, 0x00, 0x00, 0x4f, 0x33, 0x44])
        r2.login(ImmediateData="Yes", InitialR2T="No", FirstBurstLength="65536",
                 MaxRecvDataSegmentLength="65536")
        r2.clear_ua()
        mrdsl2 = int(r2.params.get("MaxRecvDataSegmentLength", "8192"))
        n = min(burst, mrdsl2)
        for i in range(32):
            r2.scsi_cmd(Raw.write10(i * (n // 512), n // 512), n, write=True,
                        data=b"\x3c" * n)
        ready(scenario)
        hang()
        return
    if scenario == "reads-unread":
        # 32 MiB: more than loopback socket buffers hold, so tasks stay queued
        for i in range(32):
            r.scsi_cmd(Raw.read10(i * 2048, 2048), 1 << 20, read=True)
        ready(scenario)
        hang()
        return
    raise SystemExit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
