"""Task management across I_T nexuses (SAM-5 §7.7, §5.6; SPC-4 §5.12.11.5).

A LOGICAL UNIT RESET from one session ends the tasks another session has on that LU: with
TAS (emulate_tas=1, LIO's default) that initiator gets TASK ABORTED status, and its session
carries on. Real initiators cannot hold a task open on purpose, so this test logs in with a
minimal raw iSCSI client and parks a WRITE waiting for its Data-Out (InitialR2T=Yes,
ImmediateData=No: the target answers with an R2T and waits).
"""

import socket
import struct

import uthelpers as ut

INIT_A = "iqn.1994-05.com.example:tmf-a"
INIT_B = "iqn.1994-05.com.example:tmf-b"


def _pad(n):
    return (4 - n % 4) % 4


class RawSession:
    """Just enough of RFC 7143 to log in and exchange a few PDUs."""

    def __init__(self, port, initiator, isid):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.cmdsn = 1
        self.statsn = 0
        self.itt = 0x100
        keys = {
            "InitiatorName": initiator,
            "TargetName": ut.DEFAULT_TARGET,
            "SessionType": "Normal",
            "AuthMethod": "None",
            "HeaderDigest": "None",
            "DataDigest": "None",
            "InitialR2T": "Yes",
            "ImmediateData": "No",
            "MaxRecvDataSegmentLength": "65536",
            "ErrorRecoveryLevel": "0",
        }
        data = b"".join(b"%s=%s\0" % (k.encode(), v.encode()) for k, v in keys.items())
        bhs = bytearray(48)
        bhs[0] = 0x43                  # Login Request, immediate
        bhs[1] = 0x80 | (0 << 2) | 3   # T, CSG security, NSG full feature
        bhs[4:8] = struct.pack(">I", len(data))
        bhs[8:14] = isid
        bhs[16:20] = struct.pack(">I", self.itt)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        self.send(bytes(bhs), data)
        hdr, _ = self.recv()
        assert hdr[0] & 0x3F == 0x23, "expected a Login Response"
        assert hdr[36] == 0 and hdr[37] == 0, "login refused: %02x%02x" % (hdr[36], hdr[37])
        assert hdr[1] & 0x80 and hdr[1] & 0x03 == 3, "target did not go to full feature phase"
        self.statsn = struct.unpack(">I", hdr[24:28])[0] + 1

    def send(self, bhs, data=b""):
        self.sock.sendall(bhs + data + b"\0" * _pad(len(data)))

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the target")
            buf += chunk
        return buf

    def recv(self):
        hdr = self._read(48)
        ahs = hdr[4] * 4
        dlen = struct.unpack(">I", b"\0" + hdr[5:8])[0]
        self._read(ahs)
        data = self._read(dlen + _pad(dlen))[:dlen]
        return hdr, data

    def recv_op(self, opcode):
        """Next PDU with this opcode, skipping NOP-Ins (answered) and asynchronous messages."""
        while True:
            hdr, data = self.recv()
            op = hdr[0] & 0x3F
            if op == opcode:
                return hdr, data
            assert op in (0x20, 0x32), "unexpected opcode 0x%02x" % op

    def scsi_cmd(self, cdb, edtl, write=False, lun=0):
        self.itt += 1
        bhs = bytearray(48)
        bhs[0] = 0x01
        bhs[1] = 0x80 | (0x20 if write else 0x40 if edtl else 0) | 0x01  # F, W/R, SIMPLE
        bhs[8:16] = struct.pack(">Q", lun << 48)
        bhs[16:20] = struct.pack(">I", self.itt)
        bhs[20:24] = struct.pack(">I", edtl)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        bhs[28:32] = struct.pack(">I", self.statsn)
        bhs[32:32 + len(cdb)] = cdb
        self.cmdsn += 1
        self.send(bytes(bhs))
        return self.itt

    def lun_reset(self, lun=0):
        self.itt += 1
        bhs = bytearray(48)
        bhs[0] = 0x42                  # Task Management Function Request, immediate
        bhs[1] = 0x80 | 5              # LOGICAL UNIT RESET
        bhs[8:16] = struct.pack(">Q", lun << 48)
        bhs[16:20] = struct.pack(">I", self.itt)
        bhs[20:24] = struct.pack(">I", 0xFFFFFFFF)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        bhs[28:32] = struct.pack(">I", self.statsn)
        self.send(bytes(bhs))
        return self.itt

    def clear_unit_attentions(self):
        # a new session starts with POWER ON (29/00): TEST UNIT READY until GOOD
        for _ in range(5):
            self.scsi_cmd(bytes(6), 0)
            hdr, _ = self.recv_op(0x21)
            if hdr[3] == 0:
                return
        raise AssertionError("TEST UNIT READY never returned GOOD")

    def close(self):
        self.sock.close()


def _write10(lba, blocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def test_lun_reset_aborts_other_sessions_tasks_with_task_aborted(config, utarget):
    rd = config.ramdisk("rd0")
    config.target().tpg().lun(0, rd)
    daemon = utarget(config)
    a = RawSession(daemon.port, INIT_A, b"\x80\x00\x00\x00\x00\x01")
    b = RawSession(daemon.port, INIT_B, b"\x80\x00\x00\x00\x00\x02")
    try:
        a.clear_unit_attentions()
        b.clear_unit_attentions()
        # A's WRITE waits for its Data-Out after the target's R2T
        itt = a.scsi_cmd(_write10(10, 1), 512, write=True)
        hdr, _ = a.recv_op(0x31)
        assert struct.unpack(">I", hdr[16:20])[0] == itt
        # B resets the LUN
        tmf_itt = b.lun_reset()
        hdr, _ = b.recv_op(0x22)
        assert struct.unpack(">I", hdr[16:20])[0] == tmf_itt
        assert hdr[2] == 0, "LUN RESET answered %d, not FUNCTION COMPLETE" % hdr[2]
        # A's write ends with TASK ABORTED (TAS=1), and A's session still works
        hdr, _ = a.recv_op(0x21)
        assert struct.unpack(">I", hdr[16:20])[0] == itt
        assert hdr[3] == 0x40, "status 0x%02x, expected TASK ABORTED" % hdr[3]
        tur = a.scsi_cmd(bytes(6), 0)
        hdr, data = a.recv_op(0x21)
        assert struct.unpack(">I", hdr[16:20])[0] == tur
        # the reset left a unit attention for A: CHECK CONDITION, 29/03 or 29/00
        assert hdr[3] == 0x02, "expected the reset's unit attention, got 0x%02x" % hdr[3]
        sense = data[2:]
        assert sense[2] & 0x0F == 0x06 and sense[12] == 0x29
    finally:
        a.close()
        b.close()


def test_lun_reset_without_tas_ends_other_tasks_silently(config, utarget):
    rd = config.ramdisk("rd0", attributes={"emulate_tas": 0})
    config.target().tpg().lun(0, rd)
    daemon = utarget(config)
    a = RawSession(daemon.port, INIT_A, b"\x80\x00\x00\x00\x00\x01")
    b = RawSession(daemon.port, INIT_B, b"\x80\x00\x00\x00\x00\x02")
    try:
        a.clear_unit_attentions()
        b.clear_unit_attentions()
        itt = a.scsi_cmd(_write10(10, 1), 512, write=True)
        a.recv_op(0x31)
        b.lun_reset()
        hdr, _ = b.recv_op(0x22)
        assert hdr[2] == 0
        # A's next command is answered; the aborted write never is
        tur = a.scsi_cmd(bytes(6), 0)
        hdr, _ = a.recv_op(0x21)
        assert struct.unpack(">I", hdr[16:20])[0] == tur, \
            "the aborted write (ITT %#x) was answered without TAS" % itt
    finally:
        a.close()
        b.close()
