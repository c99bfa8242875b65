"""Helpers for the utarget integration tests (stdlib only).

- Config: builds a LIO-schema saveconfig.json (storage objects, targets, TPGs, LUNs,
  portals, node ACLs) so a test can compose what it needs.
- Daemon: starts `$UTARGETD -c CFG -s SOCK -f`, waits for the portal, stops it with
  SIGTERM and checks the exit code and the sanitizer output.
- Thin wrappers around the initiators a storage admin would use (libiscsi's iscsi-ls,
  iscsi-inq, iscsi-readcapacity16; qemu-io, qemu-img) with parsers for their output.

Command-line facts these wrappers rely on (libiscsi 1.19, qemu 7.2, Debian 12):
- iscsi-inq parses -e/-c with atoi(): `-c 0x80` is page 0, so pass decimal (`-c 128`).
- iscsi-ls -s prints "Lun:N    Type:T (Size:NNx)" where the size is
  READ CAPACITY(10) block_length * *last* LBA, divided by 1024 while > 1024 (integer),
  so a 64 MiB LUN shows as "63M". iscsi_ls_size() reproduces that formula.
- libiscsi tools set HeaderDigest themselves (None,CRC32C) after parsing the URL, so the
  URL argument `?header_digest=crc32c` does not force a digest for them; qemu does:
  `--image-opts driver=iscsi,...,header-digest=crc32c|none|crc32c-none|none-crc32c`
  (qemu's default is none-crc32c).
- LIBISCSI_DEBUG=6 in the environment makes libiscsi print the negotiated keys, e.g.
  "TargetLoginReply: HeaderDigest=CRC32C", which is how a test proves the digest was on.
- qemu initiator name: image option `initiator-name=IQN`; libiscsi tools: `-i IQN`.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

KiB = 1024
MiB = 1024 * KiB

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
DEFAULT_TARGET = "iqn.2003-01.org.linux-iscsi.test:t1"
TOOL_TIMEOUT = 90  # seconds per initiator command; the daemon under test is an ASan build


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- config

class MappedLun:
    def __init__(self, index, tpg_lun, write_protect=False):
        self.index, self.tpg_lun, self.write_protect = index, tpg_lun, write_protect

    def dump(self):
        return {"index": self.index, "tpg_lun": self.tpg_lun,
                "write_protect": self.write_protect}


class NodeAcl:
    def __init__(self, node_wwn, attributes=None):
        self.node_wwn = node_wwn
        self.attributes = dict(attributes or {})
        self.mapped_luns = []

    def map(self, index, tpg_lun, write_protect=False):
        self.mapped_luns.append(MappedLun(index, tpg_lun, write_protect))
        return self

    def dump(self):
        return {"node_wwn": self.node_wwn, "attributes": self.attributes,
                "mapped_luns": [m.dump() for m in self.mapped_luns]}


class Tpg:
    def __init__(self, tag, port, enable=True, generate_node_acls=1,
                 demo_mode_write_protect=0, authentication=0, parameters=None,
                 attributes=None, portals=None):
        self.tag = tag
        self.enable = enable
        self.attributes = {"authentication": authentication,
                           "generate_node_acls": generate_node_acls,
                           "demo_mode_write_protect": demo_mode_write_protect,
                           "cache_dynamic_acls": 1}
        self.attributes.update(attributes or {})
        self.parameters = {"HeaderDigest": "CRC32C,None"}
        self.parameters.update(parameters or {})
        self.luns = []
        self.portals = list(portals) if portals is not None else [("127.0.0.1", port)]
        self.acls = []

    def lun(self, index, storage_object):
        """storage_object: the path returned by Config.ramdisk()/fileio()/block()."""
        self.luns.append((index, storage_object))
        return self

    def acl(self, node_wwn, attributes=None):
        a = NodeAcl(node_wwn, attributes)
        self.acls.append(a)
        return a

    def dump(self):
        return {"tag": self.tag, "enable": self.enable,
                "attributes": self.attributes, "parameters": self.parameters,
                "luns": [{"index": i, "storage_object": so} for i, so in self.luns],
                "portals": [{"ip_address": ip, "port": p} for ip, p in self.portals],
                "node_acls": [a.dump() for a in self.acls]}


class Target:
    def __init__(self, wwn, port):
        self.wwn, self.port = wwn, port
        self.tpgs = []

    def tpg(self, tag=1, **kw):
        t = Tpg(tag, self.port, **kw)
        self.tpgs.append(t)
        return t

    def dump(self):
        return {"fabric": "iscsi", "wwn": self.wwn, "tpgs": [t.dump() for t in self.tpgs]}


class Config:
    """LIO saveconfig.json builder. `port` is the default portal port of new TPGs."""

    def __init__(self, port, workdir):
        self.port = port
        self.workdir = str(workdir)
        self.storage_objects = []
        self.targets = []
        self.so_by_path = {}

    def _add(self, so):
        self.storage_objects.append(so)
        path = "/backstores/%s/%s" % (so["plugin"], so["name"])
        self.so_by_path[path] = so
        return path

    def ramdisk(self, name, size=64 * MiB, block_size=512, wwn=None, attributes=None):
        attrs = {"block_size": block_size}
        attrs.update(attributes or {})
        return self._add({"name": name, "plugin": "ramdisk", "size": size,
                          "wwn": wwn or str(uuid.uuid4()), "attributes": attrs})

    def fileio(self, name, dev=None, size=64 * MiB, write_back=False, block_size=None,
               wwn=None, create=True, attributes=None):
        """A fileio object; by default its file is created (sparse) in the work dir."""
        dev = dev or os.path.join(self.workdir, name + ".img")
        if create and not os.path.exists(dev):
            with open(dev, "wb") as f:
                f.truncate(size)
        attrs = {} if block_size is None else {"block_size": block_size}
        attrs.update(attributes or {})
        return self._add({"name": name, "plugin": "fileio", "dev": dev, "size": size,
                          "write_back": write_back, "wwn": wwn or str(uuid.uuid4()),
                          "attributes": attrs})

    def block(self, name, dev, readonly=False, wwn=None, attributes=None):
        return self._add({"name": name, "plugin": "block", "dev": dev,
                          "readonly": readonly, "wwn": wwn or str(uuid.uuid4()),
                          "attributes": dict(attributes or {})})

    def rbd(self, name, config, size=None, wwn=None, attributes=None):
        """A Ceph RBD object as LIO saves it: plugin "user", config "rbd/POOL/IMAGE..."."""
        so = {"name": name, "plugin": "user", "config": "rbd/" + config,
              "wwn": wwn or str(uuid.uuid4()), "attributes": dict(attributes or {})}
        if size is not None:
            so["size"] = size
        return self._add(so)

    def so(self, path):
        return self.so_by_path[path]

    def target(self, wwn=DEFAULT_TARGET):
        t = Target(wwn, self.port)
        self.targets.append(t)
        return t

    def dump(self):
        return {"fabric_modules": [], "storage_objects": self.storage_objects,
                "targets": [t.dump() for t in self.targets]}

    def write(self, path):
        with open(path, "w") as f:
            json.dump(self.dump(), f, indent=2, sort_keys=True)
            f.write("\n")
        return path


def simple_config(port, workdir, iqn=DEFAULT_TARGET, **ramdisk_kw):
    """One target, TPG 1 in demo mode, LUN 0 = 64 MiB ramdisk rd0."""
    cfg = Config(port, workdir)
    rd = cfg.ramdisk("rd0", **ramdisk_kw)
    cfg.target(iqn).tpg().lun(0, rd)
    return cfg


# --------------------------------------------------------------------------- daemon

def _tail(path, nbytes=6000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "<cannot read %s: %s>" % (path, e)


def _listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            pass
    return inodes


def _group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if int(st.rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(d)
            except (OSError, ValueError, IndexError):
                pass
    return pids


def owns_listener(pgid, port):
    """True when a process of group `pgid` has a socket listening on TCP `port`: the
    portal that answered is ours, not another program's that grabbed the same port."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    for pid in _group_pids(pgid):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


class Daemon:
    """One utargetd process running in the foreground on a config written to workdir."""

    def __init__(self, binary, cfg, workdir, name="utargetd", argv=None, env=None,
                 host="127.0.0.1"):
        """argv: run this command instead of `binary -c CFG -s SOCK -f` (cfg then only
        supplies the port); env: extra environment variables; host: the address of the
        portal that says the daemon is up (a gateway on 127.0.0.2 ...)."""
        self.host = host
        self.binary = binary
        self.argv = argv
        self.extra_env = dict(env or {})
        self.cfg = cfg
        self.port = cfg.port
        self.workdir = str(workdir)
        self.cfg_path = os.path.join(self.workdir, name + "-saveconfig.json")
        self.sock = os.path.join(self.workdir, "ctl.sock") if name == "utargetd" \
            else os.path.join(self.workdir, name + ".sock")
        self.stderr_path = os.path.join(self.workdir, name + ".stderr")
        self.stdout_path = os.path.join(self.workdir, name + ".stdout")
        self.proc = None
        self.stopped = False

    @property
    def portal_url(self):
        return "iscsi://127.0.0.1:%d" % self.port

    def lun_url(self, lun=0, iqn=DEFAULT_TARGET):
        return "iscsi://127.0.0.1:%d/%s/%d" % (self.port, iqn, lun)

    def image_opts(self, lun=0, iqn=DEFAULT_TARGET, digest=None, initiator=None):
        return image_opts(self.port, iqn, lun, digest=digest, initiator=initiator)

    def stderr_tail(self, nbytes=6000):
        return _tail(self.stderr_path, nbytes)

    def start(self, timeout=10.0):
        if self.argv is None:
            self.cfg.write(self.cfg_path)
        env = dict(os.environ)
        env.update(self.extra_env)
        # Leak checking at exit; keep any options the caller set.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            "detect_leaks=1", "abort_on_error=0", env.get("ASAN_OPTIONS", "")]))
        env["UBSAN_OPTIONS"] = ":".join(filter(None, [
            "print_stacktrace=1", env.get("UBSAN_OPTIONS", "")]))
        env["UTARGET_SOCKET"] = self.sock
        env.setdefault("XDG_RUNTIME_DIR", self.workdir)
        cmd = self.argv or [self.binary, "-c", self.cfg_path, "-s", self.sock, "-f"]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, cwd=self.workdir, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.stopped = True
                raise AssertionError(
                    "utargetd exited with status %d before its portal 127.0.0.1:%d "
                    "accepted connections\ncommand: %s\n--- stderr tail ---\n%s"
                    % (rc, self.port, " ".join(cmd), self.stderr_tail()))
            accepted = False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    accepted = True
            except OSError:
                pass
            # Ports are picked free but not reserved: make sure the listener is ours.
            if accepted and owns_listener(self.proc.pid, self.port):
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    "utargetd's portal 127.0.0.1:%d did not accept TCP within %.0f s%s\n"
                    "--- stderr tail ---\n%s" % (
                        self.port, timeout,
                        " (the port is held by another program)" if accepted else "",
                        self.stderr_tail()))
            time.sleep(0.05)

    def _kill_group(self):
        # The daemon runs in its own session: take any children down with it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            self.proc.kill()
        self.proc.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self._kill_group()
        self.stopped = True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, and assert a clean exit (status 0, no sanitizer report)."""
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                raise AssertionError(
                    "utargetd did not exit within %.0f s of SIGTERM (killed)\n"
                    "--- stderr tail ---\n%s" % (timeout, self.stderr_tail()))
        rc = self.proc.returncode
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        found = [m for m in SANITIZER_MARKERS if m in err]
        if rc != 0 or found:
            what = []
            if rc != 0:
                what.append("exit status %d" % rc if rc > 0 else "killed by signal %d" % -rc)
            if found:
                what.append("sanitizer report (%s)" % ", ".join(found))
            raise AssertionError("utargetd did not stop cleanly: %s\n--- stderr tail ---\n%s"
                                 % ("; ".join(what), self.stderr_tail()))


# --------------------------------------------------------------------------- tools

def run(cmd, timeout=TOOL_TIMEOUT, env=None, input=None):
    """Run a command, capture text stdout/stderr, never raise on non-zero status."""
    e = dict(os.environ)
    if env:
        e.update(env)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=e, input=input, errors="replace")
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout.decode(errors="replace") if isinstance(ex.stdout, bytes) else (ex.stdout or "")
        err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else (ex.stderr or "")
        return subprocess.CompletedProcess(cmd, -999, out, err + "\n<timed out after %ss>" % timeout)


def describe(res, daemon=None):
    s = "$ %s\nexit status %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        " ".join(res.args), res.returncode, res.stdout[-6000:], res.stderr[-6000:])
    if daemon is not None:
        s += "\n--- utargetd stderr tail ---\n%s" % daemon.stderr_tail(3000)
    return s


def iscsi_ls_size(size_bytes, block_size):
    """The size string iscsi-ls -s prints for a LUN (see the module docstring)."""
    size = block_size * (size_bytes // block_size - 1)
    units = " kMGT"
    i = 0
    while i < 4 and size > 1024:
        size //= 1024
        i += 1
    return "%d%s" % (size, units[i])


_LS_TARGET = re.compile(r"^Target:(\S+) Portal:(\S+)$")
_LS_LUN = re.compile(r"^Lun:(\d+)\s+Type:(\S+)(?: \(Size:(\S+)\))?")


def parse_iscsi_ls(text):
    """{iqn: {"portals": [..], "luns": {n: {"type": T, "size": "63M"|None}}}}"""
    targets, cur = {}, None
    for line in text.splitlines():
        line = line.rstrip()
        m = _LS_TARGET.match(line)
        if m:
            cur = targets.setdefault(m.group(1), {"portals": [], "luns": {}})
            cur["portals"].append(m.group(2))
            continue
        m = _LS_LUN.match(line)
        if m and cur is not None:
            cur["luns"][int(m.group(1))] = {"type": m.group(2), "size": m.group(3)}
    return targets


def iscsi_ls(portal_url, show_luns=False, initiator=None):
    cmd = ["iscsi-ls"]
    if initiator:
        cmd += ["-i", initiator]
    if show_luns:
        cmd.append("-s")
    cmd.append(portal_url)
    res = run(cmd)
    return res, parse_iscsi_ls(res.stdout)


def parse_colon_fields(text):
    """'Key:Value' lines (iscsi-inq, iscsi-readcapacity16) into a dict (first wins)."""
    d = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d.setdefault(k.strip(), v)
    return d


def iscsi_inq(url, initiator=None, evpd=None, page=None):
    cmd = ["iscsi-inq"]
    if initiator:
        cmd += ["-i", initiator]
    if evpd is not None:
        cmd += ["-e", str(int(evpd))]
    if page is not None:
        cmd += ["-c", str(int(page))]  # decimal: iscsi-inq uses atoi()
    cmd.append(url)
    res = run(cmd)
    return res, parse_colon_fields(res.stdout)


def unit_serial(fields):
    """'Unit Serial Number:[   abc]' -> 'abc'."""
    v = fields.get("Unit Serial Number")
    if v is None:
        return None
    return v.strip().strip("[]").strip()


def readcap16(url, initiator=None):
    cmd = ["iscsi-readcapacity16"]
    if initiator:
        cmd += ["-i", initiator]
    cmd.append(url)
    res = run(cmd)
    f = parse_colon_fields(res.stdout)
    out = {}
    for key, name in (("RETURNED LOGICAL BLOCK ADDRESS", "last_lba"),
                      ("LOGICAL BLOCK LENGTH IN BYTES", "block_size"),
                      ("Total size", "total")):
        if key in f:
            out[name] = int(f[key].strip())
    return res, out


def image_opts(port, iqn, lun, digest=None, initiator=None):
    """qemu --image-opts string for the iscsi block driver."""
    s = "driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=%d" % (port, iqn, lun)
    if digest:
        s += ",header-digest=" + digest
    if initiator:
        s += ",initiator-name=" + initiator
    return s


QEMU_IO_FAILURES = ("Pattern verification failed", "failed:", "Input/output error",
                    "can't open", "No such", "Invalid argument")


def qemu_io_problems(res):
    """qemu-io exits 0 on verification failure in some versions: read its words too.

    Returns a list of problems (empty when the run was clean). libiscsi debug lines
    (LIBISCSI_DEBUG) are ignored."""
    text = "\n".join(l for l in (res.stdout + "\n" + res.stderr).splitlines()
                     if not l.startswith("libiscsi:"))
    bad = ["output contains %r" % w for w in QEMU_IO_FAILURES if w in text]
    if res.returncode != 0:
        bad.insert(0, "exit status %s" % res.returncode)
    return bad


def qemu_io(opts, commands, env=None, timeout=TOOL_TIMEOUT, read_only=False, popen=False):
    """Run qemu-io on an --image-opts string with a list of -c commands."""
    cmd = ["qemu-io"]
    if read_only:
        cmd.append("-r")
    cmd += ["--image-opts"]
    for c in commands:
        cmd += ["-c", c]
    cmd.append(opts)
    if popen:
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=e, errors="replace")
    return run(cmd, timeout=timeout, env=env)


def pattern_commands(regions, verb):
    """regions: [(offset, length, pattern)] -> ['write -P 0x11 0 4096', ...]"""
    return ["%s -P 0x%02x %d %d" % (verb, p, off, ln) for off, ln, p in regions]


def check_regions_in_file(path, regions, zero_regions=()):
    """Compare byte ranges of a file (or block device) with the expected pattern."""
    bad = []
    with open(path, "rb") as f:
        for off, ln, p in list(regions) + [(o, l, 0) for o, l in zero_regions]:
            f.seek(off)
            data = f.read(ln)
            if data != bytes([p]) * ln:
                first = next((i for i in range(len(data)) if data[i] != p), len(data))
                bad.append("offset %d len %d: expected 0x%02x, first mismatch at +%d "
                           "(got %s)" % (off, ln, p, first,
                                         data[first:first + 1].hex() or "EOF"))
    return bad
