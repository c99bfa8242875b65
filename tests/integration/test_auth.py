"""Access control and authentication with real initiators (issue 6): demo mode, node ACLs,
CHAP and mutual CHAP (per ACL and per TPG), discovery CHAP, SendTargets filtering.

Initiators: libiscsi's iscsi-inq / iscsi-ls (CHAP from the URL
`iscsi://user%secret@host:port/iqn/lun`, mutual CHAP from the URL arguments
`?target_user=U&target_password=P`, initiator name from `-i`), qemu-io's iscsi driver
(`user=`, `password=`, `initiator-name=`), and `iscsi_rw`, a few lines of C on libiscsi
compiled here, which sends real WRITE(10) / READ(10) and prints the sense of a failure:
qemu refuses to open a write-protected LUN read-write at all, so it cannot show that the
target itself answers a WRITE with DATA PROTECT.

libiscsi reports a refused login as "Status: Authentication failure(513)" (0x0201),
"Authorization failure(514)" (0x0202), "Target not found(515)" (0x0203); a target that
fails mutual authentication as "Invalid CHAP_R response from the target" (or "Wrong CHAP
targetname received" when the CHAP_N is not the one it expects).
"""

import os
import shutil
import subprocess

import pytest

import uthelpers as ut
from uthelpers import MiB

IQN = ut.DEFAULT_TARGET
IQN2 = "iqn.2003-01.org.linux-iscsi.test:private"
GOOD = "iqn.1994-05.com.example:good"
OTHER = "iqn.1994-05.com.example:other"
READER = "iqn.1994-05.com.example:reader"
INTRUDER = "iqn.1994-05.com.example:intruder"

# CHAP names and secrets (12-16 bytes: what every initiator accepts)
USER, SECRET = "gooduser", "good-secret-1234"
OUSER, OSECRET = "otheruser", "other-secret-123"
TUSER, TSECRET = "targetuser", "target-secret-12"
TPG_USER, TPG_SECRET = "tpguser", "tpg-secret-12345"
TPG_TUSER, TPG_TSECRET = "tpgtarget", "tpg-tsecret-1234"
D_USER, D_SECRET = "discuser", "disc-secret-1234"
D_TUSER, D_TSECRET = "disctarget", "disc-tsecret-123"
WRONG = "wrong-secret-123"
ALL_SECRETS = (SECRET, OSECRET, TSECRET, TPG_SECRET, TPG_TSECRET, D_SECRET, D_TSECRET)

AUTH_FAILED = "Authentication failure(513)"
FORBIDDEN = "Authorization failure(514)"
NOT_FOUND = "Target not found(515)"
TARGET_NOT_AUTHENTIC = "Invalid CHAP_R response from the target"
DATA_PROTECT = "status=2 key=7("   # CHECK CONDITION, sense key DATA PROTECT


# ----------------------------------------------------------------------------- config

class AuthConfig(ut.Config):
    """uthelpers.Config plus the saveconfig.json keys of authentication: chap_* on TPGs
    and node ACLs (set as a dict attribute `chap` on the Tpg / NodeAcl objects) and the
    fabric module's discovery_* keys."""

    def __init__(self, port, workdir):
        super().__init__(port, workdir)
        self.discovery = None

    def discovery_auth(self, userid, password, mutual_userid=None, mutual_password=None,
                       enable=True):
        self.discovery = {"name": "iscsi", "discovery_enable_auth": enable,
                          "discovery_userid": userid, "discovery_password": password}
        if mutual_userid is not None:
            self.discovery["discovery_mutual_userid"] = mutual_userid
            self.discovery["discovery_mutual_password"] = mutual_password
        return self

    def dump(self):
        d = super().dump()
        for t, td in zip(self.targets, d["targets"]):
            for tpg, tpgd in zip(t.tpgs, td["tpgs"]):
                tpgd.update(getattr(tpg, "chap", {}))
                for acl, ad in zip(tpg.acls, tpgd["node_acls"]):
                    ad.update(getattr(acl, "chap", {}))
        if self.discovery:
            d["fabric_modules"] = [self.discovery]
        return d


def chap(userid, password, mutual_userid=None, mutual_password=None):
    d = {"chap_userid": userid, "chap_password": password}
    if mutual_userid is not None:
        d["chap_mutual_userid"] = mutual_userid
        d["chap_mutual_password"] = mutual_password
    return d


@pytest.fixture
def acfg(port, workdir):
    return AuthConfig(port, workdir)


# ----------------------------------------------------------------------------- initiators

def _creds(user, secret):
    if user is None:
        return ""
    return "%s%%%s@" % (user, secret) if secret is not None else "%s@" % user


def _mutual(tuser, tsecret):
    if tuser is None:
        return ""
    return "?target_user=%s&target_password=%s" % (tuser, tsecret)


def lun_url(d, lun=0, iqn=IQN, user=None, secret=None, tuser=None, tsecret=None):
    return "iscsi://%s127.0.0.1:%d/%s/%d%s" % (_creds(user, secret), d.port, iqn, lun,
                                              _mutual(tuser, tsecret))


def portal_url(d, user=None, secret=None, tuser=None, tsecret=None):
    return "iscsi://%s127.0.0.1:%d%s" % (_creds(user, secret), d.port, _mutual(tuser, tsecret))


def inq_ok(d, initiator, **kw):
    res, inq = ut.iscsi_inq(lun_url(d, **kw), initiator=initiator)
    assert res.returncode == 0, ut.describe(res, d)
    assert inq.get("Peripheral Device Type") == "DIRECT_ACCESS", ut.describe(res, d)


def inq_refused(d, initiator, expect, **kw):
    """A login that must fail; expect is the libiscsi message that names the reason."""
    res, _ = ut.iscsi_inq(lun_url(d, **kw), initiator=initiator)
    assert res.returncode != 0, "login should have been refused\n" + ut.describe(res, d)
    assert expect in res.stdout + res.stderr, "expected %r\n%s" % (expect, ut.describe(res, d))


def qemu_opts(d, lun=0, iqn=IQN, initiator=None, user=None, secret=None):
    s = ut.image_opts(d.port, iqn, lun, initiator=initiator)
    if user is not None:
        s += ",user=%s,password=%s" % (user, secret)
    return s


def qemu_rw_ok(d, pattern, lun=0, offset=0, **kw):
    res = ut.qemu_io(qemu_opts(d, lun=lun, **kw),
                     ["write -P 0x%02x %d 8192" % (pattern, offset),
                      "read -P 0x%02x %d 8192" % (pattern, offset)])
    assert not ut.qemu_io_problems(res), ut.describe(res, d)


def qemu_refused(d, expect, lun=0, **kw):
    res = ut.qemu_io(qemu_opts(d, lun=lun, **kw), ["read 0 4096"])
    assert ut.qemu_io_problems(res), "qemu got in\n" + ut.describe(res, d)
    assert expect in res.stdout + res.stderr, "expected %r\n%s" % (expect, ut.describe(res, d))


def discover(d, initiator, **kw):
    """iscsi-ls (SendTargets in a discovery session): (result, {iqn: ...})"""
    return ut.iscsi_ls(portal_url(d, **kw), initiator=initiator)


IO_SRC = r"""
/* iscsi_rw [-i INITIATOR] URL write|read LBA BLOCKS PATTERN: one WRITE(10) of BLOCKS
 * 512-byte blocks filled with PATTERN, or one READ(10) checked against it. Prints
 * "ok", or "status=S key=K(name) ascq=0xAAQQ"; exit 0 ok, 2 login failed, 3 SCSI error,
 * 4 data mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

int main(int argc, char **argv)
{
	const char *ini = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-rw";
	struct iscsi_context *is;
	struct iscsi_url *u;
	struct scsi_task *t;
	unsigned char *buf;
	unsigned lba, n, pat, i;
	int a = 1, wr;

	if (argc > 2 && !strcmp(argv[1], "-i")) {
		ini = argv[2];
		a = 3;
	}
	if (argc - a != 5)
		return 1;
	wr = !strcmp(argv[a + 1], "write");
	lba = strtoul(argv[a + 2], NULL, 0);
	n = strtoul(argv[a + 3], NULL, 0);
	pat = strtoul(argv[a + 4], NULL, 0);
	is = iscsi_create_context(ini);
	u = is ? iscsi_parse_full_url(is, argv[a]) : NULL;
	if (!u) {
		fprintf(stderr, "bad url: %s\n", is ? iscsi_get_error(is) : "");
		return 1;
	}
	iscsi_set_targetname(is, u->target);
	iscsi_set_session_type(is, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(is, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (u->user[0])
		iscsi_set_initiator_username_pwd(is, u->user, u->passwd);
	if (iscsi_full_connect_sync(is, u->portal, u->lun)) {
		printf("login failed: %s\n", iscsi_get_error(is));
		return 2;
	}
	buf = malloc(n * 512);
	memset(buf, wr ? (int)pat : 0, n * 512);
	t = wr ? iscsi_write10_sync(is, u->lun, lba, buf, n * 512, 512, 0, 0, 0, 0, 0)
	       : iscsi_read10_sync(is, u->lun, lba, n * 512, 512, 0, 0, 0, 0, 0);
	if (!t) {
		printf("transport error: %s\n", iscsi_get_error(is));
		return 3;
	}
	if (t->status != SCSI_STATUS_GOOD) {
		printf("status=%d key=%d(%s) ascq=0x%04x\n", t->status,
		       t->sense.key, scsi_sense_key_str(t->sense.key),
		       t->sense.ascq);
		return 3;
	}
	if (!wr) {
		if (t->datain.size != (int)(n * 512))
			return 4;
		for (i = 0; i < n * 512; i++)
			if (t->datain.data[i] != pat) {
				printf("mismatch at %u: 0x%02x\n", i, t->datain.data[i]);
				return 4;
			}
	}
	printf("ok\n");
	scsi_free_scsi_task(t);
	iscsi_logout_sync(is);
	iscsi_destroy_context(is);
	iscsi_destroy_url(u);
	free(buf);
	return 0;
}
"""


@pytest.fixture(scope="session")
def iscsi_rw(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists("/usr/include/iscsi/iscsi.h"):
        pytest.skip("needs a C compiler and libiscsi-dev to send raw WRITE/READ")
    d = tmp_path_factory.mktemp("iscsi_rw")
    src, exe = d / "iscsi_rw.c", d / "iscsi_rw"
    src.write_text(IO_SRC)
    res = subprocess.run([cc, "-O1", "-o", str(exe), str(src), "-liscsi"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return str(exe)


def raw_io(exe, url, initiator, verb, lba, blocks, pattern):
    return ut.run([exe, "-i", initiator, url, verb, str(lba), str(blocks), str(pattern)])


def no_secrets_logged(d):
    with open(d.stderr_path, errors="replace") as f:
        log = f.read()
    for s in ALL_SECRETS + (WRONG,):
        assert s not in log, "a secret appears in the daemon log"
    return log


# ----------------------------------------------------------------------------- demo mode

def test_open_demo_mode(acfg, utarget, iscsi_rw):
    """generate_node_acls=1, authentication=0: any initiator reads and writes every TPG LUN;
    one that offers CHAP,None (it has a secret configured) gets None."""
    rd = acfg.ramdisk("rd0", size=16 * MiB)
    acfg.target(IQN).tpg(generate_node_acls=1, authentication=0,
                         demo_mode_write_protect=0).lun(0, rd)
    d = utarget(acfg)

    inq_ok(d, INTRUDER)
    inq_ok(d, GOOD, user=USER, secret=SECRET)   # AuthMethod=CHAP,None -> None
    qemu_rw_ok(d, 0x21, initiator=INTRUDER)
    qemu_rw_ok(d, 0x22, offset=65536, initiator=GOOD, user=USER, secret=SECRET)
    res = raw_io(iscsi_rw, lun_url(d), OTHER, "write", 200, 8, 0x23)
    assert res.returncode == 0, ut.describe(res, d)
    res = raw_io(iscsi_rw, lun_url(d), GOOD, "read", 200, 8, 0x23)
    assert res.returncode == 0, ut.describe(res, d)
    # an unknown target name is "not found", not a hang
    inq_refused(d, GOOD, NOT_FOUND, iqn=IQN + "-nope")
    # demo_mode_discovery=1: everyone sees the target
    res, targets = discover(d, INTRUDER)
    assert res.returncode == 0 and IQN in targets, ut.describe(res, d)


def test_write_protected_demo_mode(acfg, utarget, iscsi_rw):
    """demo_mode_write_protect=1: reads work, a real WRITE gets DATA PROTECT / WRITE
    PROTECTED and changes nothing."""
    rd = acfg.ramdisk("rd0", size=16 * MiB)
    acfg.target(IQN).tpg(generate_node_acls=1, authentication=0,
                         demo_mode_write_protect=1).lun(0, rd)
    d = utarget(acfg)

    inq_ok(d, GOOD)
    res = raw_io(iscsi_rw, lun_url(d), GOOD, "read", 0, 8, 0)
    assert res.returncode == 0, ut.describe(res, d)
    res = raw_io(iscsi_rw, lun_url(d), GOOD, "write", 0, 8, 0x5a)
    assert res.returncode == 3, ut.describe(res, d)
    assert DATA_PROTECT in res.stdout and "ascq=0x2700" in res.stdout, \
        ut.describe(res, d)
    res = raw_io(iscsi_rw, lun_url(d), GOOD, "read", 0, 8, 0)
    assert res.returncode == 0, "the refused write changed data\n" + ut.describe(res, d)
    # qemu sees the WP bit (MODE SENSE) and will not open the LUN read-write; read-only works
    res = ut.qemu_io(qemu_opts(d, initiator=GOOD), ["write -P 0x5a 0 4096"])
    assert "write protected" in res.stdout + res.stderr, ut.describe(res, d)
    res = ut.qemu_io(qemu_opts(d, initiator=GOOD), ["read -P 0 0 4096"], read_only=True)
    assert not ut.qemu_io_problems(res), ut.describe(res, d)


# ----------------------------------------------------------------------------- node ACLs

def _acl_tpg(acfg, authentication=0):
    rd0 = acfg.ramdisk("rd0", size=16 * MiB)
    rd1 = acfg.ramdisk("rd1", size=8 * MiB)
    tpg = acfg.target(IQN).tpg(generate_node_acls=0, authentication=authentication)
    tpg.lun(0, rd0).lun(1, rd1)
    good = tpg.acl(GOOD).map(3, 0).map(1, 1)            # LUN 3 -> TPG lun 0
    reader = tpg.acl(READER).map(0, 0, write_protect=True)  # LUN 0 -> TPG lun 0, ro
    return tpg, good, reader


def test_acl_only(acfg, utarget, iscsi_rw):
    """generate_node_acls=0, authentication=0: listed initiators only; mapped LUN numbers;
    write_protect per mapped LUN, checked with real WRITE / READ."""
    _acl_tpg(acfg)
    d = utarget(acfg)

    inq_ok(d, GOOD, lun=3)
    inq_ok(d, READER, lun=0)
    inq_refused(d, INTRUDER, FORBIDDEN, lun=0)
    inq_refused(d, INTRUDER, FORBIDDEN, lun=0, user=USER, secret=SECRET)
    qemu_refused(d, FORBIDDEN, initiator=INTRUDER)

    # REPORT LUNS: GOOD sees 1 and 3, READER sees 0
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=GOOD)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets[IQN]["luns"]) == [1, 3], ut.describe(res, d)
    res, targets = ut.iscsi_ls(d.portal_url, show_luns=True, initiator=READER)
    assert sorted(targets[IQN]["luns"]) == [0], ut.describe(res, d)
    res, targets = ut.iscsi_ls(d.portal_url, initiator=INTRUDER)
    assert IQN not in targets and IQN not in res.stdout, ut.describe(res, d)

    # GOOD writes TPG lun 0 through its LUN 3; READER reads it back through its LUN 0
    res = raw_io(iscsi_rw, lun_url(d, lun=3), GOOD, "write", 100, 16, 0x3c)
    assert res.returncode == 0, ut.describe(res, d)
    res = raw_io(iscsi_rw, lun_url(d, lun=0), READER, "read", 100, 16, 0x3c)
    assert res.returncode == 0, ut.describe(res, d)
    # ... and cannot write it
    res = raw_io(iscsi_rw, lun_url(d, lun=0), READER, "write", 100, 16, 0x77)
    assert res.returncode == 3 and DATA_PROTECT in res.stdout, ut.describe(res, d)
    res = raw_io(iscsi_rw, lun_url(d, lun=3), GOOD, "read", 100, 16, 0x3c)
    assert res.returncode == 0, ut.describe(res, d)
    # LUN 1 of GOOD is the other backstore, LUN 0 is not GOOD's
    qemu_rw_ok(d, 0x41, lun=1, initiator=GOOD)
    res = raw_io(iscsi_rw, lun_url(d, lun=0), GOOD, "read", 100, 16, 0x3c)
    assert res.returncode != 0, "GOOD read an unmapped LUN\n" + ut.describe(res, d)


def test_acl_chap(acfg, utarget, iscsi_rw):
    """authentication=1, CHAP credentials on each ACL."""
    tpg, good, reader = _acl_tpg(acfg, authentication=1)
    good.chap = chap(USER, SECRET)
    reader.chap = chap(OUSER, OSECRET)
    # TPG credentials must not open an ACL that has its own
    tpg.chap = chap(TPG_USER, TPG_SECRET)
    d = utarget(acfg)

    inq_ok(d, GOOD, lun=3, user=USER, secret=SECRET)
    inq_ok(d, READER, lun=0, user=OUSER, secret=OSECRET)
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=USER, secret=WRONG)      # wrong secret
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user="nobody", secret=SECRET)  # wrong name
    inq_refused(d, GOOD, AUTH_FAILED, lun=3)                                # no secret
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=OUSER, secret=OSECRET)    # another's
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=TPG_USER, secret=TPG_SECRET)
    inq_refused(d, INTRUDER, FORBIDDEN, lun=3, user=USER, secret=SECRET)    # unlisted
    # the initiator asks for mutual CHAP, no mutual credentials configured
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=USER, secret=SECRET,
                tuser=TUSER, tsecret=TSECRET)

    qemu_rw_ok(d, 0x51, lun=3, initiator=GOOD, user=USER, secret=SECRET)
    qemu_refused(d, AUTH_FAILED, lun=3, initiator=GOOD, user=USER, secret=WRONG)
    qemu_refused(d, AUTH_FAILED, lun=3, initiator=GOOD)
    qemu_refused(d, FORBIDDEN, lun=3, initiator=INTRUDER, user=USER, secret=SECRET)

    url3 = lun_url(d, lun=3, user=USER, secret=SECRET)
    url0 = lun_url(d, lun=0, user=OUSER, secret=OSECRET)
    assert raw_io(iscsi_rw, url3, GOOD, "write", 8, 8, 0x52).returncode == 0
    res = raw_io(iscsi_rw, url0, READER, "read", 8, 8, 0x52)
    assert res.returncode == 0, ut.describe(res, d)
    res = raw_io(iscsi_rw, url0, READER, "write", 8, 8, 0x53)
    assert res.returncode == 3 and DATA_PROTECT in res.stdout, ut.describe(res, d)

    log = no_secrets_logged(d)
    assert "login refused (0201) for %s" % GOOD in log
    assert "login refused (0202) for %s" % INTRUDER in log


def test_acl_mutual_chap(acfg, utarget, iscsi_rw):
    """authentication=1, mutual CHAP on the ACL: the target proves itself with the mutual
    secret; an initiator holding the wrong target secret refuses the target."""
    tpg, good, reader = _acl_tpg(acfg, authentication=1)
    good.chap = chap(USER, SECRET, TUSER, TSECRET)
    reader.chap = chap(OUSER, OSECRET)
    d = utarget(acfg)

    inq_ok(d, GOOD, lun=3, user=USER, secret=SECRET, tuser=TUSER, tsecret=TSECRET)
    inq_ok(d, GOOD, lun=3, user=USER, secret=SECRET)          # one-way is still fine
    inq_refused(d, GOOD, TARGET_NOT_AUTHENTIC, lun=3, user=USER, secret=SECRET,
                tuser=TUSER, tsecret=WRONG)                     # wrong mutual secret
    inq_refused(d, GOOD, "Wrong CHAP targetname received", lun=3, user=USER,
                secret=SECRET, tuser="someone", tsecret=TSECRET)  # wrong target name
    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=USER, secret=WRONG,
                tuser=TUSER, tsecret=TSECRET)                   # wrong initiator secret
    inq_refused(d, GOOD, AUTH_FAILED, lun=3)
    inq_refused(d, INTRUDER, FORBIDDEN, lun=3, user=USER, secret=SECRET,
                tuser=TUSER, tsecret=TSECRET)
    # READER has no mutual credentials: asking for mutual CHAP fails
    inq_refused(d, READER, AUTH_FAILED, lun=0, user=OUSER, secret=OSECRET,
                tuser=TUSER, tsecret=TSECRET)

    url = lun_url(d, lun=3, user=USER, secret=SECRET, tuser=TUSER, tsecret=TSECRET)
    res = raw_io(iscsi_rw, url, GOOD, "write", 64, 8, 0x61)
    assert res.returncode == 0, ut.describe(res, d)
    res = raw_io(iscsi_rw, url, GOOD, "read", 64, 8, 0x61)
    assert res.returncode == 0, ut.describe(res, d)
    bad = lun_url(d, lun=3, user=USER, secret=SECRET, tuser=TUSER, tsecret=WRONG)
    res = raw_io(iscsi_rw, bad, GOOD, "write", 64, 8, 0x62)
    assert res.returncode == 2, ut.describe(res, d)
    res = raw_io(iscsi_rw, url, GOOD, "read", 64, 8, 0x61)
    assert res.returncode == 0, ut.describe(res, d)
    no_secrets_logged(d)


def test_tpg_chap(acfg, utarget):
    """Demo mode + authentication=1 + TPG credentials (LIO's TPG authentication): any
    initiator name with the TPG secret gets in; an explicit ACL without credentials uses
    the TPG's too; one with its own uses those."""
    rd = acfg.ramdisk("rd0", size=16 * MiB)
    tpg = acfg.target(IQN).tpg(generate_node_acls=1, authentication=1,
                               demo_mode_write_protect=0)
    tpg.lun(0, rd)
    tpg.chap = chap(TPG_USER, TPG_SECRET, TPG_TUSER, TPG_TSECRET)
    tpg.acl(READER).map(0, 0)                         # no credentials: TPG's
    tpg.acl(OTHER).map(0, 0).chap = chap(OUSER, OSECRET)
    d = utarget(acfg)

    for ini in (GOOD, INTRUDER, READER):
        inq_ok(d, ini, user=TPG_USER, secret=TPG_SECRET)
    inq_ok(d, GOOD, user=TPG_USER, secret=TPG_SECRET, tuser=TPG_TUSER, tsecret=TPG_TSECRET)
    inq_refused(d, GOOD, AUTH_FAILED, user=TPG_USER, secret=WRONG)
    inq_refused(d, GOOD, AUTH_FAILED, user="nobody", secret=TPG_SECRET)
    inq_refused(d, GOOD, AUTH_FAILED)
    inq_refused(d, GOOD, TARGET_NOT_AUTHENTIC, user=TPG_USER, secret=TPG_SECRET,
                tuser=TPG_TUSER, tsecret=WRONG)
    inq_ok(d, OTHER, user=OUSER, secret=OSECRET)
    inq_refused(d, OTHER, AUTH_FAILED, user=TPG_USER, secret=TPG_SECRET)

    qemu_rw_ok(d, 0x71, initiator=GOOD, user=TPG_USER, secret=TPG_SECRET)
    qemu_refused(d, AUTH_FAILED, initiator=GOOD, user=TPG_USER, secret=WRONG)
    qemu_refused(d, AUTH_FAILED, initiator=GOOD)
    no_secrets_logged(d)


def test_tpg_chap_without_credentials(acfg, utarget):
    """authentication=1 with no credentials anywhere: nobody gets in, quickly, with 0201."""
    rd = acfg.ramdisk("rd0", size=16 * MiB)
    acfg.target(IQN).tpg(generate_node_acls=1, authentication=1).lun(0, rd)
    d = utarget(acfg)
    inq_refused(d, GOOD, AUTH_FAILED)
    inq_refused(d, GOOD, AUTH_FAILED, user=USER, secret=SECRET)


# ----------------------------------------------------------------------------- discovery

def _two_targets(acfg):
    """IQN: GOOD's ACL (CHAP); IQN2: OTHER's ACL only; demo target hidden from discovery."""
    rd0 = acfg.ramdisk("rd0", size=8 * MiB)
    rd1 = acfg.ramdisk("rd1", size=8 * MiB)
    tpg = acfg.target(IQN).tpg(generate_node_acls=0, authentication=1)
    tpg.lun(0, rd0)
    tpg.acl(GOOD).map(0, 0).chap = chap(USER, SECRET)
    tpg2 = acfg.target(IQN2).tpg(generate_node_acls=0, authentication=0)
    tpg2.lun(0, rd1)
    tpg2.acl(OTHER).map(0, 0)
    hidden = "iqn.2003-01.org.linux-iscsi.test:hidden"
    acfg.target(hidden).tpg(generate_node_acls=1, authentication=0,
                            attributes={"demo_mode_discovery": 0}).lun(0, rd1)
    return hidden


def test_discovery_chap_one_way(acfg, utarget):
    hidden = _two_targets(acfg)
    acfg.discovery_auth(D_USER, D_SECRET)
    d = utarget(acfg)

    res, targets = discover(d, GOOD, user=D_USER, secret=D_SECRET)
    assert res.returncode == 0, ut.describe(res, d)
    assert sorted(targets) == [IQN], ut.describe(res, d)
    res, targets = discover(d, OTHER, user=D_USER, secret=D_SECRET)
    assert sorted(targets) == [IQN2], ut.describe(res, d)
    # authenticated but in no ACL: nothing to learn
    res, targets = discover(d, INTRUDER, user=D_USER, secret=D_SECRET)
    assert res.returncode == 0 and targets == {}, ut.describe(res, d)

    for kw in ({}, {"user": D_USER, "secret": WRONG}, {"user": "nobody", "secret": D_SECRET},
               {"user": USER, "secret": SECRET}):
        res, targets = discover(d, GOOD, **kw)
        assert res.returncode != 0 and targets == {}, ut.describe(res, d)
        for name in (IQN, IQN2, hidden):
            assert name not in res.stdout + res.stderr, ut.describe(res, d)
    # mutual CHAP asked for, none configured for discovery
    res, targets = discover(d, GOOD, user=D_USER, secret=D_SECRET, tuser=D_TUSER,
                            tsecret=D_TSECRET)
    assert res.returncode != 0 and targets == {}, ut.describe(res, d)
    # discovery credentials are not target credentials
    inq_refused(d, GOOD, AUTH_FAILED, user=D_USER, secret=D_SECRET)
    inq_ok(d, GOOD, user=USER, secret=SECRET)
    log = no_secrets_logged(d)
    assert "discovery session" in log


def test_discovery_chap_mutual(acfg, utarget):
    _two_targets(acfg)
    acfg.discovery_auth(D_USER, D_SECRET, D_TUSER, D_TSECRET)
    d = utarget(acfg)

    res, targets = discover(d, GOOD, user=D_USER, secret=D_SECRET, tuser=D_TUSER,
                            tsecret=D_TSECRET)
    assert res.returncode == 0 and sorted(targets) == [IQN], ut.describe(res, d)
    res, targets = discover(d, GOOD, user=D_USER, secret=D_SECRET)   # one-way: allowed
    assert res.returncode == 0 and sorted(targets) == [IQN], ut.describe(res, d)
    for kw in ({"user": D_USER, "secret": D_SECRET, "tuser": D_TUSER, "tsecret": WRONG},
               {"user": D_USER, "secret": WRONG, "tuser": D_TUSER, "tsecret": D_TSECRET},
               {}):
        res, targets = discover(d, GOOD, **kw)
        assert res.returncode != 0 and targets == {}, ut.describe(res, d)
        assert IQN not in res.stdout, ut.describe(res, d)
    no_secrets_logged(d)


def test_discovery_without_auth_filters(acfg, utarget):
    """No discovery auth: anyone may ask, but SendTargets lists only the targets the
    initiator may log in to (ACL or demo_mode_discovery)."""
    hidden = _two_targets(acfg)
    d = utarget(acfg)
    res, targets = discover(d, INTRUDER)
    assert res.returncode == 0 and targets == {}, ut.describe(res, d)
    res, targets = discover(d, OTHER)
    assert sorted(targets) == [IQN2], ut.describe(res, d)
    assert hidden not in res.stdout
    # the hidden demo-mode target still takes logins from anyone who knows its name
    inq_ok(d, INTRUDER, iqn=hidden)


# ----------------------------------------------------------------------------- raw login

class RawLogin:
    """A bare Login Request / Response exchange (RFC 7143 §11.12-11.13) over a socket, for
    what the initiators above never send: other CHAP_A lists, base64 values, AuthMethod and
    CHAP_A in one request, reflected challenges, stalled exchanges."""

    def __init__(self, port):
        import socket
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.itt = 0

    def close(self):
        self.s.close()

    def send(self, pairs, transit=True, csg=0, nsg=1):
        data = b"".join(("%s=%s" % kv).encode() + b"\0" for kv in pairs)
        bhs = bytearray(48)
        bhs[0] = 0x43                               # Login Request, immediate
        bhs[1] = (0x80 if transit else 0) | csg << 2 | (nsg if transit else 0)
        bhs[5:8] = len(data).to_bytes(3, "big")
        bhs[8:14] = bytes([0x80, 0, 0, 0x12, 0x34, 0x56])   # ISID (random format)
        bhs[16:20] = self.itt.to_bytes(4, "big")
        self.itt += 1
        self.s.sendall(bytes(bhs) + data + b"\0" * (-len(data) % 4))

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv(self):
        """-> (status, transit, {key: value})"""
        bhs = self._read(48)
        assert bhs[0] & 0x3f == 0x23, "not a Login Response: 0x%02x" % bhs[0]
        dlen = int.from_bytes(bhs[5:8], "big")
        data = self._read(dlen + (-dlen % 4))[:dlen]
        keys = dict(p.decode().split("=", 1) for p in data.split(b"\0") if p)
        return bhs[36] << 8 | bhs[37], bool(bhs[1] & 0x80), keys

    def closed(self):
        """The target closed the connection (after a failed login)."""
        try:
            return self.s.recv(1) == b""
        except OSError:
            return True


def _chap_hash(alg, ident, secret, challenge):
    import hashlib
    name = {5: "md5", 6: "sha1", 7: "sha256", 8: "sha3_256"}[alg]
    return hashlib.new(name, bytes([ident]) + secret.encode() + challenge).digest()


def _start(d, chap_a):
    """Opens a login of GOOD to IQN offering CHAP with CHAP_A in the first request."""
    c = RawLogin(d.port)
    c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "CHAP,None"), ("CHAP_A", chap_a)])
    return c


def test_chap_protocol_details(acfg, utarget):
    import base64
    tpg, good, reader = _acl_tpg(acfg, authentication=1)
    good.chap = chap(USER, SECRET, TUSER, TSECRET)
    d = utarget(acfg)

    # CHAP_A in the initiator's order (SHA-256 first), asked with T=1: the target stays in
    # security negotiation (T=0) and challenges with >= 32 random bytes in hex.
    for alg, dlen in ((7, 32), (8, 32), (6, 20), (5, 16)):
        c = _start(d, "%d,5" % alg if alg != 5 else "5")
        st, transit, keys = c.recv()
        assert (st, transit) == (0, False), keys
        assert keys["AuthMethod"] == "CHAP" and keys["CHAP_A"] == str(alg), keys
        assert keys["CHAP_C"].startswith("0x"), keys
        chal = bytes.fromhex(keys["CHAP_C"][2:])
        assert len(chal) >= max(16, dlen), keys
        ident = int(keys["CHAP_I"])
        resp = _chap_hash(alg, ident, SECRET, chal)
        mine = os.urandom(16)
        # the response in base64, mutual challenge in hex
        c.send([("CHAP_N", USER), ("CHAP_R", "0b" + base64.b64encode(resp).decode()),
                ("CHAP_I", "77"), ("CHAP_C", "0x" + mine.hex())])
        st, transit, keys = c.recv()
        assert (st, transit) == (0, True), keys
        assert keys["CHAP_N"] == TUSER, keys
        assert keys["CHAP_R"] == "0x" + _chap_hash(alg, 77, TSECRET, mine).hex(), keys
        c.close()

    # the target's own challenge sent back as the initiator's: reflection, refused
    c = _start(d, "5")
    st, _, keys = c.recv()
    chal = bytes.fromhex(keys["CHAP_C"][2:])
    c.send([("CHAP_N", USER), ("CHAP_R", "0x" + _chap_hash(5, int(keys["CHAP_I"]), SECRET,
                                                           chal).hex()),
            ("CHAP_I", keys["CHAP_I"]), ("CHAP_C", keys["CHAP_C"])])
    st, _, keys = c.recv()
    assert st == 0x0201 and "CHAP_R" not in keys, keys
    assert c.closed()
    c.close()

    # no acceptable algorithm
    c = _start(d, "4,129")
    st, _, _ = c.recv()
    assert st == 0x0201 and c.closed()
    c.close()

    # a response of the wrong length, and a malformed one
    for bad in ("0x00112233", "0xzz", "0b!!!!", "12345"):
        c = _start(d, "5")
        c.recv()
        c.send([("CHAP_N", USER), ("CHAP_R", bad)])
        st, _, _ = c.recv()
        assert st == 0x0201 and c.closed(), bad
        c.close()

    # an initiator that asks to leave security negotiation without doing CHAP: refused,
    # not answered T=0 forever
    c = RawLogin(d.port)
    c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "CHAP")])
    st, transit, keys = c.recv()
    assert (st, transit, keys.get("AuthMethod")) == (0, False, "CHAP"), keys
    c.send([])
    st, _, _ = c.recv()
    assert st == 0x0201 and c.closed()
    c.close()

    # AuthMethod=None only, while authentication is required
    c = RawLogin(d.port)
    c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "None")])
    st, _, _ = c.recv()
    assert st == 0x0201 and c.closed()
    c.close()

    # straight to the operational stage
    c = RawLogin(d.port)
    c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
            ("HeaderDigest", "None")], csg=1, nsg=3)
    st, _, _ = c.recv()
    assert st == 0x0201 and c.closed()
    c.close()
    no_secrets_logged(d)


def test_chap_when_not_required(acfg, utarget):
    """authentication=0 with CHAP credentials on the ACL: "CHAP,None" gets CHAP (RFC 7143
    §6.2.1: the first value of the originator's list that the target supports; LIO does
    the same), so the credentials are checked; "None" alone still gets in (LIO's rule);
    an initiator that offers only CHAP is checked against the ACL's credentials."""
    tpg, good, reader = _acl_tpg(acfg, authentication=0)
    good.chap = chap(USER, SECRET)
    d = utarget(acfg)

    c = _start(d, "5")          # AuthMethod=CHAP,None
    st, transit, keys = c.recv()
    assert (st, keys.get("AuthMethod")) == (0, "CHAP") and "CHAP_C" in keys, keys
    c.close()
    c = RawLogin(d.port)        # the originator's order decides: None first gets None
    c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "None,CHAP")], transit=False)
    st, _, keys = c.recv()
    assert (st, keys.get("AuthMethod")) == (0, "None"), keys
    c.close()
    # READER has no credentials anywhere: CHAP cannot be checked, so "CHAP,None" gets None
    c = RawLogin(d.port)
    c.send([("InitiatorName", READER), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "CHAP,None")], transit=False)
    st, _, keys = c.recv()
    assert (st, keys.get("AuthMethod")) == (0, "None"), keys
    c.close()

    for secret, want in ((SECRET, 0), (WRONG, 0x0201)):
        c = RawLogin(d.port)
        c.send([("InitiatorName", GOOD), ("SessionType", "Normal"), ("TargetName", IQN),
                ("AuthMethod", "CHAP")], transit=False)
        st, _, keys = c.recv()
        assert (st, keys.get("AuthMethod")) == (0, "CHAP"), keys
        c.send([("CHAP_A", "5")], transit=False)
        st, _, keys = c.recv()
        chal = bytes.fromhex(keys["CHAP_C"][2:])
        c.send([("CHAP_N", USER),
                ("CHAP_R", "0x" + _chap_hash(5, int(keys["CHAP_I"]), secret, chal).hex())])
        st, transit, keys = c.recv()
        assert st == want and transit == (want == 0), keys
        c.close()
    # READER has no credentials anywhere: CHAP alone cannot succeed
    c = RawLogin(d.port)
    c.send([("InitiatorName", READER), ("SessionType", "Normal"), ("TargetName", IQN),
            ("AuthMethod", "CHAP"), ("CHAP_A", "5")])
    st, _, _ = c.recv()
    assert st == 0x0201 and c.closed()
    c.close()


def test_optional_chap_checks_the_secret(acfg, utarget, iscsi_rw):
    """The LIO wiki's CHAP setup: `/iscsi create` leaves authentication=0, then `set auth
    userid=... password=...` on the ACL. libiscsi (like open-iscsi) offers AuthMethod=CHAP,None
    when it has a secret: a wrong secret must be refused, not let in through None; the
    right one gets in; an initiator without any secret (offers None only) still gets in."""
    tpg, good, reader = _acl_tpg(acfg, authentication=0)
    good.chap = chap(USER, SECRET)
    d = utarget(acfg)

    inq_refused(d, GOOD, AUTH_FAILED, lun=3, user=USER, secret=WRONG)
    qemu_refused(d, AUTH_FAILED, lun=3, initiator=GOOD, user=USER, secret=WRONG)
    res = raw_io(iscsi_rw, lun_url(d, lun=3, user=USER, secret=WRONG), GOOD,
                 "write", 0, 8, 0x66)
    assert res.returncode == 2, "a wrong secret wrote\n" + ut.describe(res, d)
    inq_ok(d, GOOD, lun=3, user=USER, secret=SECRET)
    qemu_rw_ok(d, 0x67, lun=3, initiator=GOOD, user=USER, secret=SECRET)
    inq_ok(d, GOOD, lun=3)                        # AuthMethod=None: LIO's rule
    no_secrets_logged(d)
