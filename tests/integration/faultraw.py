"""A raw iSCSI initiator (iscsiraw.RawConn, RFC 7143) that can stop anywhere: mid-login, between an
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

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsiraw as raw  # noqa: E402  (beside this file)

# What every scenario negotiates: no immediate data, so a WRITE waits for R2Ts.
OPERATIONAL = {"ImmediateData": "No", "MaxRecvDataSegmentLength": "65536",
               "DefaultTime2Wait": "0", "DefaultTime2Retain": "0"}


def connect(port, isid=None):
    return raw.RawConn("127.0.0.1", port, timeout=20, isid=isid)


def clear_ua(c):
    """TEST UNIT READY until GOOD: the power-on UNIT ATTENTION must not answer
    the command a scenario parks."""
    for _ in range(4):
        rsp, _ = c.command(raw.TUR, timeout=20)
        if rsp is not None and rsp.status == 0:
            return
    raise AssertionError("TEST UNIT READY never GOOD")


def send_cmd(c, cdb, edtl, write=False, read=False, data=b""):
    itt = c.next_itt()
    c.send(c.scsi_cmd(cdb, edtl, read=read, write=write, data=data, itt=itt))
    return itt


def next_r2t(c):
    """(itt, ttt, offset, length) of the next R2T (NOP-Ins are skipped)."""
    _, p = c.recv_until(raw.OP_R2T, timeout=20)
    if p is None:
        raise AssertionError("no R2T")
    off, length = struct.unpack(">II", p.bhs[40:48])
    return p.itt, p.ttt, off, length


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
    r = connect(port)
    if scenario == "half-login-pdu":
        p = r.login_pdu(0, 1, True, [("InitiatorName", initiator)])
        r.sock.sendall(p[:24])
        ready(scenario)
        hang()
        return
    if scenario == "login-security":
        r.login_security(target, initiator, timeout=20)
        ready(scenario)
        hang()
        return
    if scenario == "login-operational":
        r.login_security(target, initiator, timeout=20)
        r.login_step(1, 3, False, list(OPERATIONAL.items()), timeout=20)
        ready(scenario)
        hang()
        return
    r.login(target, initiator, extra=OPERATIONAL, timeout=20)
    clear_ua(r)
    if scenario == "logged-in":
        ready(scenario)
        hang()
        return
    burst = 64 * 1024
    seg = min(r.max_send_dsl(), 8192)
    if scenario in ("r2t-no-data", "r2t-half-data"):
        itt = send_cmd(r, raw.write10(0, 2048), 1 << 20, write=True)
        _, ttt, off, length = next_r2t(r)
        if scenario == "r2t-half-data":
            sent = 0
            datasn = 0
            while sent < length // 2:
                r.send(r.data_out(itt, ttt, datasn, off + sent, b"\xa5" * seg,
                                  final=False))
                sent += seg
                datasn += 1
        ready("%s r2t offset %d length %d" % (scenario, off, length))
        hang()
        return
    if scenario == "r2t-many":
        itts = [send_cmd(r, raw.write10(i * 2048, 2048), 1 << 20, write=True)
                for i in range(8)]
        for _ in itts:
            itt, ttt, off, length = next_r2t(r)
            r.send(r.data_out(itt, ttt, 0, off, b"\x5a" * seg, final=False))
        ready(scenario)
        hang()
        return
    if scenario == "writes-in-flight":
        # Immediate data needs ImmediateData=Yes; this scenario logs in on a second
        # connection with it (the first, above, is simply left logged in and killed too).
        r2 = connect(port, isid=[0x80, 0x00, 0x00, 0x4f, 0x33, 0x44])
        r2.login(target, initiator + "-imm", timeout=20,
                 extra=dict(OPERATIONAL, ImmediateData="Yes", InitialR2T="No"))
        clear_ua(r2)
        n = min(burst, r2.max_send_dsl())
        for i in range(32):
            send_cmd(r2, raw.write10(i * (n // 512), n // 512), n, write=True,
                     data=b"\x3c" * n)
        ready(scenario)
        hang()
        return
    if scenario == "reads-unread":
        # 32 MiB: more than loopback socket buffers hold, so tasks stay queued
        for i in range(32):
            send_cmd(r, raw.read10(i * 2048, 2048), 1 << 20, read=True)
        ready(scenario)
        hang()
        return
    raise SystemExit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
