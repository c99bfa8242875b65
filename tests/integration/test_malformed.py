"""A bad client ends its own connection, never the daemon or other sessions."""

import random
import socket
import struct
import time

import pytest

import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET


def _login_bhs(data_segment_length):
    """A Login Request BHS (RFC 7143 11.12) with an arbitrary DataSegmentLength."""
    bhs = bytearray(48)
    bhs[0] = 0x43                      # I bit + opcode 0x03 (Login Request)
    bhs[1] = 0x87                      # T=1, CSG=1 (operational), NSG=3 (full feature)
    bhs[5:8] = struct.pack(">I", data_segment_length)[1:]
    bhs[8:14] = bytes([0x80, 0, 0, 0x12, 0x34, 0x56])  # ISID
    return bytes(bhs)


def _scsi_read_before_login():
    bhs = bytearray(48)
    bhs[0] = 0x01                      # SCSI Command before any login
    bhs[1] = 0xc0                      # F + R
    bhs[20:24] = struct.pack(">I", 4096)
    bhs[32] = 0x28                     # READ(10)
    return bytes(bhs)


PAYLOADS = {
    "half-bhs": bytes(range(24)),
    "garbage-ff": b"\xff" * 48,
    "garbage-random": random.Random(20240601).randbytes(48),
    "login-huge-dsl": _login_bhs(0xffffff),
    "login-truncated-data": _login_bhs(512) + b"InitiatorName=iqn.1994-05.com.ex",
    "scsi-before-login": _scsi_read_before_login(),
}


def _check_serving(d):
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True)
    assert res.returncode == 0, ut.describe(res, d)
    assert targets.get(IQN, {}).get("luns", {}).get(0, {}).get("size") == \
        ut.iscsi_ls_size(64 * MiB, 512), ut.describe(res, d)


@pytest.fixture
def daemon(config, utarget):
    config.target(IQN).tpg().lun(0, config.ramdisk("rd0"))
    return utarget(config)


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_bad_bytes_then_close(daemon, name):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(PAYLOADS[name])
        time.sleep(0.1)
    time.sleep(0.1)
    assert daemon.alive(), "utargetd died on %s\n%s" % (name, daemon.stderr_tail())
    _check_serving(daemon)


@pytest.mark.parametrize("name", ["half-bhs", "login-huge-dsl", "login-truncated-data"])
def test_stalled_client_does_not_block_others(daemon, name):
    """A peer that sends part of a PDU and then goes quiet must not stall anyone else."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(PAYLOADS[name])
        _check_serving(daemon)
        res = ut.qemu_io(daemon.image_opts(0), ["write -P 0x61 0 1M", "read -P 0x61 0 1M"])
        assert not ut.qemu_io_problems(res), ut.describe(res, daemon)
    assert daemon.alive()


@pytest.mark.parametrize("name", ["garbage-ff", "garbage-random", "scsi-before-login"])
def test_protocol_error_closes_connection(daemon, name):
    """After an invalid first PDU the target ends that connection (perhaps after a
    Reject or a Login Response): the socket reaches EOF rather than hanging open."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(PAYLOADS[name])
        deadline = time.monotonic() + 10
        closed = False
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
        assert closed, ("connection still open 10 s after %s (LIO drops a connection "
                        "whose first PDU is not a Login Request right after the BHS, "
                        "without reading the data segment it announces)\n%s"
                        % (name, daemon.stderr_tail(2000)))
    _check_serving(daemon)


def test_many_connections_opened_and_dropped(daemon):
    socks = [socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
             for _ in range(64)]
    for i, s in enumerate(socks):
        if i % 2:
            s.sendall(PAYLOADS["half-bhs"])
        s.close()
    time.sleep(0.2)
    assert daemon.alive(), daemon.stderr_tail()
    _check_serving(daemon)


def test_login_with_ahs_is_refused_at_once(daemon):
    """A Login Request announcing an AHS (TotalAHSLength != 0; RFC 7143 11.12 defines none
    for Login) is answered at once with a login reject (initiator error, 0x0200) and the
    connection closed, not left waiting until login_timeout (15 s) for AHS bytes that never
    come. Other initiators keep being served."""
    import iscsiraw
    with iscsiraw.RawConn("127.0.0.1", daemon.port) as c:
        pdu = bytearray(c.login_pdu(0, 1, True, [("InitiatorName", iscsiraw.INITIATOR),
                                                 ("SessionType", "Normal"),
                                                 ("TargetName", IQN),
                                                 ("AuthMethod", "None")]))
        pdu[4] = 2                        # claims 8 bytes of AHS, sends none
        start = time.monotonic()
        c.sock.sendall(bytes(pdu[:48]))   # the BHS alone: the AHS "is still coming"
        rsp = c.recv_pdu(timeout=5)
        took = time.monotonic() - start
        assert rsp.opcode == 0x23 and rsp.login_status == 0x0200, rsp
        assert took < 5
        assert c.closed_within(5)
    _check_serving(daemon)
