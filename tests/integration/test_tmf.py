"""Task management across I_T nexuses (SAM-5 §7.7, §5.6; SPC-4 §5.12.11.5).

A LOGICAL UNIT RESET from one session ends the tasks another session has on that LU: with
TAS (emulate_tas=1, LIO's default) that initiator gets TASK ABORTED status, and its session
carries on. Real initiators cannot hold a task open on purpose, so this test uses the raw
client (iscsiraw) and parks a WRITE waiting for its Data-Out (InitialR2T=Yes,
ImmediateData=No: the target answers with an R2T and waits).
"""

import iscsiraw as raw
import uthelpers as ut

INIT_A = "iqn.1994-05.com.example:tmf-a"
INIT_B = "iqn.1994-05.com.example:tmf-b"
LUN_RESET = 5


def session(daemon, initiator):
    c = raw.RawConn("127.0.0.1", daemon.port)
    c.login(ut.DEFAULT_TARGET, initiator=initiator, extra={"ImmediateData": "No"})
    # a new nexus starts with POWER ON (29/00): TEST UNIT READY until GOOD
    for _ in range(5):
        rsp, _ = c.command(raw.TUR)
        if rsp is not None and rsp.status == 0:
            return c
    raise AssertionError("TEST UNIT READY never returned GOOD")


def park_write(c):
    """A WRITE of one block that waits for its Data-Out; returns its ITT."""
    itt = c.next_itt()
    c.send(c.scsi_cmd(raw.write10(10, 1), 512, write=True, itt=itt))
    _, r2t = c.recv_until(raw.OP_R2T)
    assert r2t is not None and r2t.itt == itt, "no R2T for the parked write"
    return itt


def lun_reset(c, lun=0):
    itt = c.next_itt()
    c.send(raw.bhs(raw.OP_TMF | raw.IMMEDIATE, 0x80 | LUN_RESET, lun=raw.lun_field(lun),
                   itt=itt, f20=raw.RSVD_TAG, f24=c.cmdsn, f28=c.expstatsn))
    _, rsp = c.recv_until(raw.OP_TMF_RSP)
    assert rsp is not None and rsp.itt == itt, "no answer to the LUN RESET"
    assert rsp.bhs[2] == 0, "LUN RESET answered %d, not FUNCTION COMPLETE" % rsp.bhs[2]


def test_lun_reset_aborts_other_sessions_tasks_with_task_aborted(config, utarget):
    config.target().tpg().lun(0, config.ramdisk("rd0"))
    daemon = utarget(config)
    with session(daemon, INIT_A) as a, session(daemon, INIT_B) as b:
        itt = park_write(a)
        lun_reset(b)
        # A's write ends with TASK ABORTED (TAS=1) ...
        _, rsp = a.recv_until(raw.OP_SCSI_RSP)
        assert rsp is not None and rsp.itt == itt
        assert rsp.status == 0x40, "status 0x%02x, expected TASK ABORTED" % rsp.status
        # ... and A's session carries on, with the reset's unit attention (29/xx)
        rsp, _ = a.command(raw.TUR)
        assert rsp.status == 0x02, "expected the reset's unit attention"
        sense = rsp.data[2:]
        assert sense[2] & 0x0F == 0x06 and sense[12] == 0x29
        rsp, _ = a.command(raw.TUR)
        assert rsp.status == 0


def test_lun_reset_without_tas_ends_other_tasks_silently(config, utarget):
    config.target().tpg().lun(0, config.ramdisk("rd0", attributes={"emulate_tas": 0}))
    daemon = utarget(config)
    with session(daemon, INIT_A) as a, session(daemon, INIT_B) as b:
        itt = park_write(a)
        lun_reset(b)
        # A's next command is answered; the aborted write never is
        tur = a.next_itt()
        a.send(a.scsi_cmd(raw.TUR, itt=tur))
        _, rsp = a.recv_until(raw.OP_SCSI_RSP)
        assert rsp is not None and rsp.itt == tur, \
            "the aborted write (ITT %#x) was answered without TAS" % itt
