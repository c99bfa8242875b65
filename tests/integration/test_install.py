"""Installing utarget (issue 19): `make install DESTDIR=...` lays out the daemon, the
shell, the shared library (soname, symlinks, only ut_* exported), the header,
utarget.pc, the Python module, man pages, the systemd unit and bash completion;
a program built with pkg-config against the installed tree drives a daemon; the man
pages render; the unit passes `systemd-analyze verify`; the Debian packages build,
hold those files and pass lintian; one version number everywhere.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

import uthelpers as ut

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VERSION = open(os.path.join(REPO, "VERSION")).read().strip()
SYS_PY = "/usr/bin/python3"  # "importable from the system Python"
WWN = "iqn.2003-01.org.linux-iscsi.test:pkgconfig"

# What an install with PREFIX=/usr must hold (paths relative to DESTDIR).
LAYOUT = [
    "usr/sbin/utargetd",
    "usr/bin/utargetcli",
    "usr/lib/libutarget.so.%s" % VERSION,
    "usr/lib/libutarget.a",
    "usr/include/utarget/utarget.h",
    "usr/lib/pkgconfig/utarget.pc",
    "usr/lib/python3/dist-packages/utarget/__init__.py",
    "usr/lib/python3/dist-packages/utarget/_version.py",
    "usr/lib/python3/dist-packages/utarget/rtslib/__init__.py",
    "usr/lib/python3/dist-packages/utarget/rtslib/client.py",
    "usr/share/man/man8/utargetd.8",
    "usr/share/man/man8/utargetcli.8",
    "usr/share/man/man5/utarget-saveconfig.json.5",
    "usr/share/man/man3/libutarget.3",
    "lib/systemd/system/utargetd.service",
    "usr/share/bash-completion/completions/utargetcli",
]
MAN_PAGES = [p for p in LAYOUT if "/man/" in p]


def make_env():
    # The test may run under `make check`: do not hand the outer make's jobserver on.
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def make(*args, timeout=600):
    res = subprocess.run(["make", "--no-print-directory", "-C", REPO, "-j2"] + list(args),
                         capture_output=True, text=True, timeout=timeout, env=make_env())
    assert res.returncode == 0, "make %s failed:\n%s\n%s" % (" ".join(args), res.stdout,
                                                             res.stderr)
    return res


INSTALL_VARS = ["PREFIX=/usr", "LIBDIR=/usr/lib", "SYSTEMDUNITDIR=/lib/systemd/system"]


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("destdir"))
    make("install", "DESTDIR=" + d, *INSTALL_VARS)
    return d


def need(tool, package):
    """deps.sh installs these for `make check`; a missing one is a failure, not a skip."""
    path = shutil.which(tool)
    assert path, "%s is not installed (Debian package %s; scripts/deps.sh test)" % (
        tool, package)
    return path


def test_install_layout(dest):
    missing = [p for p in LAYOUT if not os.path.isfile(os.path.join(dest, p))]
    assert not missing, "not installed: %s" % missing
    lib = os.path.join(dest, "usr/lib")
    assert os.readlink(os.path.join(lib, "libutarget.so.0")) == "libutarget.so.%s" % VERSION
    assert os.readlink(os.path.join(lib, "libutarget.so")) == "libutarget.so.0"
    for exe in ("usr/sbin/utargetd", "usr/bin/utargetcli"):
        assert os.access(os.path.join(dest, exe), os.X_OK)
    # the installed unit and man pages name the installed paths
    unit = open(os.path.join(dest, "lib/systemd/system/utargetd.service")).read()
    assert "ExecStart=/usr/sbin/utargetd -f -c /etc/utarget/saveconfig.json" in unit
    pc = open(os.path.join(dest, "usr/lib/pkgconfig/utarget.pc")).read()
    assert "prefix=/usr\n" in pc and "libdir=/usr/lib\n" in pc
    # the completion loads and offers the one-shot commands
    comp = os.path.join(dest, "usr/share/bash-completion/completions/utargetcli")
    res = ut.run(["bash", "-c", 'source "$0"; complete -p utargetcli; '
                  'COMP_WORDS=(utargetcli save); COMP_CWORD=1; _utargetcli; '
                  'echo "${COMPREPLY[*]}"', comp])
    assert res.returncode == 0, ut.describe(res)
    assert "complete -F _utargetcli utargetcli" in res.stdout
    assert res.stdout.splitlines()[-1] == "saveconfig", res.stdout


def test_library_soname_and_exports(dest):
    so = os.path.join(dest, "usr/lib/libutarget.so.%s" % VERSION)
    res = ut.run([need("readelf", "binutils"), "-d", so])
    assert re.search(r"\(SONAME\)\s+Library soname: \[libutarget\.so\.0\]", res.stdout), \
        res.stdout
    res = ut.run([need("nm", "binutils"), "-D", "--defined-only", so])
    assert res.returncode == 0, ut.describe(res)
    syms = [l.split() for l in res.stdout.splitlines() if l.strip()]
    # "A UTARGET_0" is the version node of the export map itself
    exported = [s[-1].split("@")[0] for s in syms if s[-2] != "A"]
    assert all(s[-1].endswith("@@UTARGET_0") for s in syms if s[-2] != "A"), syms
    assert "ut_open" in exported and "ut_version" in exported
    stray = [s for s in exported if not s.startswith("ut_")]
    assert not stray, "exported beyond ut_*: %s" % stray
    # internals that happen to be called ut_ stay hidden too
    assert "ut_fail" not in exported
    header = open(os.path.join(dest, "usr/include/utarget/utarget.h")).read()
    undeclared = [s for s in exported if not re.search(r"\b%s\(" % s, header)]
    assert not undeclared, "exported but not in utarget.h: %s" % undeclared


def test_python_module_from_system_python(dest, utarget, config):
    rd = config.ramdisk("rd0", size=8 * ut.MiB)
    config.target(WWN).tpg().lun(0, rd)
    d = utarget(config)
    site = os.path.join(dest, "usr/lib/python3/dist-packages")
    code = ("import json, utarget, utarget.rtslib as r\n"
            "print(json.dumps([utarget.__file__, r.__version__,\n"
            "                  [t.wwn for t in r.RTSRoot(%r).targets]]))" % d.sock)
    env = dict(os.environ, PYTHONPATH=site)
    res = subprocess.run([SYS_PY, "-c", code], capture_output=True, text=True, cwd="/",
                         env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    path, version, wwns = json.loads(res.stdout)
    assert path.startswith(site), path
    assert version == VERSION
    assert wwns == [WWN]


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utarget/utarget.h>

/* Builds a target through libutarget: ramdisk, target, TPG 1 in demo mode, LUN 0,
 * portal 127.0.0.1:PORT. Prints the daemon's version. */
#define CHECK(x) do { if ((x)) { fprintf(stderr, "%s: %s\n", #x, ut_last_error(ut)); \
	return 1; } } while (0)

int main(int argc, char **argv)
{
	struct ut_ctx *ut = ut_open(NULL);	/* $UTARGET_SOCKET */
	struct ut_so_spec so = { .plugin = "ramdisk", .name = "pc0", .size = 8 << 20 };
	const char *wwn = argv[1];
	char *v;

	if (argc != 3 || !ut)
		return 2;
	CHECK(ut_version(ut, &v));
	/* the installed header carries the version, and the daemon agrees */
	if (strcmp(v, UT_LIB_VERSION))
		return 3;
	printf("%s\n", v);
	free(v);
	CHECK(ut_backstore_create(ut, &so, NULL));
	CHECK(ut_target_create(ut, wwn, NULL));
	CHECK(ut_tpg_create(ut, wwn, 1, NULL));
	CHECK(ut_tpg_set_attribute(ut, wwn, 1, "generate_node_acls", 1));
	CHECK(ut_tpg_set_attribute(ut, wwn, 1, "demo_mode_write_protect", 0));
	CHECK(ut_tpg_set_attribute(ut, wwn, 1, "authentication", 0));
	CHECK(ut_lun_create(ut, wwn, 1, "/backstores/ramdisk/pc0", 0, 0, NULL));
	CHECK(ut_portal_create(ut, wwn, 1, "127.0.0.1", (unsigned)atoi(argv[2]), NULL));
	CHECK(ut_tpg_enable(ut, wwn, 1, true));
	ut_close(ut);
	return 0;
}
"""


def test_pkg_config_program_against_daemon(dest, utarget, config, workdir):
    pkgconf = need("pkg-config", "pkg-config")
    cc = need(os.environ.get("CC", "cc"), "gcc")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(dest, "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=dest)
    res = ut.run([pkgconf, "--modversion", "utarget"], env=env)
    assert res.returncode == 0 and res.stdout.strip() == VERSION, ut.describe(res)
    res = ut.run([pkgconf, "--cflags", "--libs", "utarget"], env=env)
    assert res.returncode == 0, ut.describe(res)
    flags = res.stdout.split()
    assert "-I%s/usr/include" % dest in flags and "-lutarget" in flags, flags
    src = os.path.join(str(workdir), "pc.c")
    exe = os.path.join(str(workdir), "pc")
    with open(src, "w") as f:
        f.write(C_PROGRAM)
    res = ut.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe, src] + flags)
    assert res.returncode == 0, ut.describe(res)
    # linked on the shared library, found by its soname
    needed = ut.run(["readelf", "-d", exe]).stdout
    assert "Shared library: [libutarget.so.0]" in needed, needed

    rd = config.ramdisk("rd0", size=8 * ut.MiB)
    config.target(ut.DEFAULT_TARGET).tpg().lun(0, rd)
    d = utarget(config)
    res = ut.run([exe, WWN, str(d.port)],
                 env={"UTARGET_SOCKET": d.sock,
                      "LD_LIBRARY_PATH": os.path.join(dest, "usr/lib")})
    assert res.returncode == 0, ut.describe(res, d)
    assert res.stdout.strip() == VERSION
    res, fields = ut.iscsi_inq(d.lun_url(0, WWN))
    assert res.returncode == 0, ut.describe(res, d)


@pytest.mark.parametrize("page", MAN_PAGES, ids=os.path.basename)
def test_man_page_renders(dest, page):
    man = need("man", "man-db")
    path = os.path.join(dest, page)
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    res = subprocess.run([man, "--warnings", "-l", path], capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not res.stderr.strip(), "groff warnings:\n" + res.stderr
    name = os.path.basename(page).rsplit(".", 1)[0]
    assert "NAME" in res.stdout and "SEE ALSO" in res.stdout
    assert re.search(r"^\s+%s - " % re.escape(name), res.stdout, re.M), res.stdout[:400]
    assert "utarget %s" % VERSION in res.stdout
    assert "@" + "VERSION@" not in res.stdout and "@SBINDIR@" not in res.stdout


def test_systemd_unit_verifies(dest, workdir):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # deps.sh installs systemd; only a system where it cannot be installed skips
        pytest.skip("systemd-analyze is not installed and scripts/deps.sh could not "
                    "install the systemd package")
    unit = open(os.path.join(dest, "lib/systemd/system/utargetd.service")).read()
    for setting in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes",
                    "ProtectSystem=", "RuntimeDirectory=utarget",
                    "ConfigurationDirectory=utarget"):
        assert setting in unit, "unit lacks %s" % setting
    # verify checks that ExecStart exists and that Documentation= pages resolve: point
    # both at the DESTDIR tree, the rest of the unit as installed.
    rooted = unit.replace("/usr/sbin/utargetd", os.path.join(dest, "usr/sbin/utargetd"))
    path = os.path.join(str(workdir), "utargetd.service")
    with open(path, "w") as f:
        f.write(rooted)
    env = dict(os.environ, MANPATH=os.path.join(dest, "usr/share/man"))
    res = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                         env=env, timeout=120)
    # verify exits 0 on mere warnings (unknown keys): any output is a finding
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), \
        res.stdout + res.stderr


def test_uninstall_removes_everything(tmp_path):
    d = str(tmp_path / "root")
    make("install", "DESTDIR=" + d, *INSTALL_VARS)
    make("uninstall", "DESTDIR=" + d, *INSTALL_VARS)
    left = [os.path.relpath(os.path.join(dp, f), d)
            for dp, _, fs in os.walk(d) for f in fs]
    assert not left, "left after uninstall: %s" % left


def test_one_version_everywhere(dest, utarget, config, utargetd_bin):
    res = ut.run([utargetd_bin, "-V"])
    assert res.stdout.strip() == "utargetd %s" % VERSION
    res = ut.run([os.path.join(dest, "usr/bin/utargetcli"), "-V"])
    assert res.stdout.strip() == "utargetcli version %s" % VERSION
    import rpcclient
    config.target(WWN).tpg().lun(0, config.ramdisk("rd0", size=8 * ut.MiB))
    d = utarget(config)
    assert rpcclient.RpcClient(d.sock).call("version")["version"] == VERSION
    pc = open(os.path.join(dest, "usr/lib/pkgconfig/utarget.pc")).read()
    assert "\nVersion: %s\n" % VERSION in pc
    py = open(os.path.join(dest, "usr/lib/python3/dist-packages/utarget/_version.py")).read()
    assert '"%s"' % VERSION in py
    first = open(os.path.join(REPO, "debian", "changelog")).readline()
    m = re.match(r"utarget \(([^)-]+)(-[^)]+)?\)", first)
    assert m and m.group(1) == VERSION, "debian/changelog says %r, VERSION %s" % (
        first, VERSION)
    # nothing else in the tree spells the version out
    stray = subprocess.run(["git", "-C", REPO, "grep", "-n", "-F", '"%s"' % VERSION,
                            "--", "src", "include", "python"],
                           capture_output=True, text=True).stdout
    assert not stray.strip(), "version written outside VERSION:\n" + stray


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    need("dpkg-buildpackage", "dpkg-dev")
    need("dh", "debhelper")
    out = str(tmp_path_factory.mktemp("debs"))
    res = subprocess.run([os.path.join(REPO, "scripts", "build-deb.sh"), out],
                         capture_output=True, text=True, timeout=1200, env=make_env())
    assert res.returncode == 0, "package build failed:\n%s\n%s" % (res.stdout[-4000:],
                                                                   res.stderr[-4000:])
    return out


DEB_FILES = {
    "utarget": ["./usr/sbin/utargetd", "./usr/bin/utargetcli",
                "./lib/systemd/system/utargetd.service",
                "./usr/share/man/man8/utargetd.8.gz", "./usr/share/man/man8/utargetcli.8.gz",
                "./usr/share/man/man5/utarget-saveconfig.json.5.gz",
                "./usr/share/bash-completion/completions/utargetcli"],
    "libutarget0": ["./usr/lib/x86_64-linux-gnu/libutarget.so.%s" % VERSION,
                    "./usr/lib/x86_64-linux-gnu/libutarget.so.0"],
    "libutarget-dev": ["./usr/include/utarget/utarget.h",
                       "./usr/lib/x86_64-linux-gnu/libutarget.so",
                       "./usr/lib/x86_64-linux-gnu/pkgconfig/utarget.pc",
                       "./usr/share/man/man3/libutarget.3.gz"],
    "python3-utarget": ["./usr/lib/python3/dist-packages/utarget/rtslib/__init__.py"],
}


def deb_path(debs, pkg):
    names = [n for n in os.listdir(debs) if n.startswith(pkg + "_") and n.endswith(".deb")]
    assert len(names) == 1, (pkg, os.listdir(debs))
    return os.path.join(debs, names[0])


def test_deb_contents(debs):
    if ut.run(["dpkg", "--print-architecture"]).stdout.strip() != "amd64":
        for k in DEB_FILES:
            DEB_FILES[k] = [p.replace("x86_64-linux-gnu", "*") for p in DEB_FILES[k]]
    for pkg, files in DEB_FILES.items():
        deb = deb_path(debs, pkg)
        res = ut.run(["dpkg-deb", "-f", deb, "Version"])
        assert res.stdout.strip() == VERSION, (pkg, res.stdout)
        listing = ut.run(["dpkg-deb", "-c", deb]).stdout
        paths = {l.split()[5] for l in listing.splitlines() if len(l.split()) >= 6}
        missing = [f for f in files if f not in paths]
        assert not missing, "%s lacks %s:\n%s" % (pkg, missing, listing)
    # the config is the administrator's: no package ships or owns /etc/utarget
    for pkg in DEB_FILES:
        assert "./etc/utarget/" not in ut.run(["dpkg-deb", "-c", deb_path(debs, pkg)]).stdout


def test_deb_unpacked_tree_works(debs, tmp_path):
    root = str(tmp_path / "root")
    for pkg in DEB_FILES:
        res = ut.run(["dpkg-deb", "-x", deb_path(debs, pkg), root])
        assert res.returncode == 0, ut.describe(res)
    res = ut.run([os.path.join(root, "usr/sbin/utargetd"), "-V"])
    assert res.stdout.strip() == "utargetd %s" % VERSION, ut.describe(res)
    res = subprocess.run([SYS_PY, "-c", "import utarget.rtslib as r; print(r.__version__)"],
                         capture_output=True, text=True, cwd="/", timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.path.join(
                             root, "usr/lib/python3/dist-packages")))
    assert res.stdout.strip() == VERSION, res.stderr


def test_lintian_reports_no_errors(debs):
    lintian = need("lintian", "lintian")
    changes = [n for n in os.listdir(debs) if n.endswith(".changes")]
    assert len(changes) == 1, os.listdir(debs)
    res = subprocess.run([lintian, "--no-tag-display-limit", os.path.join(debs, changes[0])],
                         capture_output=True, text=True, timeout=600)
    tags = [l for l in res.stdout.splitlines() if re.match(r"[EW]: ", l)]
    errors = [l for l in tags if l.startswith("E: ")]
    assert not errors, "lintian errors:\n" + "\n".join(tags)
    assert res.returncode == 0, res.stdout + res.stderr
