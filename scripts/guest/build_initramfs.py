#!/usr/bin/env python3
"""Build the initramfs of the kernel-initiator test guest (docs/testing-guest.md).

From the host's installed Debian kernel (linux-image-amd64: /boot/vmlinuz-K and
/lib/modules/K) it packs, as an uncompressed newc cpio:
- the kernel modules the guest loads (with their dependencies from modules.dep): network
  (virtio_net), iSCSI (iscsi_tcp, libiscsi, scsi_transport_iscsi), disks (sd_mod), ALUA
  (scsi_dh_alua) and dm-multipath (dm-mod, dm-multipath, dm-round-robin, dm-service-time);
- busybox (static) as the shell and tools;
- iscsistart, iscsid and iscsiadm (open-iscsi) with /etc/iscsi/iscsid.conf, multipath,
  multipathd and dmsetup (multipath-tools, dmsetup) with the shared libraries ldd names and
  multipath's checker / prioritizer plugins;
- systemd-udevd and udevadm (Debian's udev) with the udev rules of block devices, device
  mapper and multipath and their scsi_id helper: multipathd learns of paths coming and
  going from udev's events, and finds a path's WWID (ID_SERIAL) in udev's database;
- /init (scripts/guest/init.sh).

The test script itself is not in it: guest.py appends a second cpio holding /test.sh (the
kernel unpacks concatenated archives in order), so the base image is built once.

Usage: build_initramfs.py OUT.cpio [--kernel-version K]   prints "KERNEL_IMAGE OUT"
"""

import argparse
import glob
import os
import re
import stat
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

MODULES = ["virtio_pci", "virtio_net", "af_packet", "crc32c_generic", "crc32c-intel",
           "sd_mod", "scsi_dh_alua", "iscsi_tcp", "dm-mod", "dm-multipath",
           "dm-round-robin", "dm-service-time", "dm-queue-length"]
BINARIES = ["/sbin/iscsistart", "/sbin/iscsid", "/sbin/iscsiadm", "/sbin/multipath",
            "/sbin/multipathd", "/sbin/dmsetup", "/sbin/kpartx"]
PLUGIN_DIRS = ["/lib/multipath", "/usr/lib/x86_64-linux-gnu/multipath"]
UDEVADM = "/usr/bin/udevadm"     # also systemd-udevd: it picks its role from argv[0]
UDEV_HELPERS = ["/lib/udev/scsi_id"]
# only what block devices, device mapper and multipath need: every rule file more is work
# for each uevent on an emulated CPU (no input, sound, network naming, drivers, systemd)
UDEV_RULES = ["50-udev-default.rules", "55-dm.rules", "56-dm-mpath.rules", "60-block.rules",
              "60-multipath.rules", "60-persistent-storage.rules",
              "60-persistent-storage-dm.rules", "95-dm-notify.rules"]
UDEV_RULES_DIR = "/lib/udev/rules.d"


def kernel_version(wanted=None):
    if wanted:
        return wanted
    vers = sorted(os.path.basename(p)[len("vmlinuz-"):] for p in glob.glob("/boot/vmlinuz-*")
                  if os.path.isdir("/lib/modules/" + os.path.basename(p)[len("vmlinuz-"):]))
    if not vers:
        sys.exit("build_initramfs: no /boot/vmlinuz-* with /lib/modules/* "
                 "(scripts/deps.sh test installs linux-image-amd64)")
    return vers[-1]


def module_deps(kver):
    base = "/lib/modules/" + kver
    deps = {}
    with open(base + "/modules.dep") as f:
        for line in f:
            path, rest = line.split(":", 1)
            deps[path] = rest.split()
    byname = {}
    for p in deps:
        n = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", os.path.basename(p)).replace("-", "_")
        byname[n] = p
    return base, deps, byname


def resolve_modules(kver, names):
    """Module files in load order (dependencies first); names not found are built in
    or absent: returned separately."""
    base, deps, byname = module_deps(kver)
    order, missing = [], []

    def add(path):
        for d in reversed(deps.get(path, [])):
            add(d)
        if path not in order:
            order.append(path)

    builtin = set()
    try:
        with open(base + "/modules.builtin") as f:
            builtin = {re.sub(r"\.ko$", "", os.path.basename(l.strip())).replace("-", "_")
                       for l in f}
    except OSError:
        pass
    for n in names:
        key = n.replace("-", "_")
        if key in byname:
            # modules.dep lists dependencies in reverse load order
            for d in reversed(deps[byname[key]]):
                add(d)
            add(byname[key])
        elif key not in builtin:
            missing.append(n)
    return base, order, missing


def ldd_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


class Cpio:
    """newc writer."""

    def __init__(self, f):
        self.f, self.ino, self.seen = f, 1, set()

    def _hdr(self, name, mode, size, nlink=1):
        name_b = name.encode() + b"\0"
        h = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.f.write(h.encode() + name_b)
        self.f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))

    def dir(self, name):
        name = name.strip("/")
        if not name or name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._hdr(name, stat.S_IFDIR | 0o755, 0, 2)

    def file(self, name, data, mode=0o755):
        name = name.strip("/")
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._hdr(name, stat.S_IFREG | mode, len(data))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def symlink(self, name, target):
        name = name.strip("/")
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        t = target.encode()
        self._hdr(name, stat.S_IFLNK | 0o777, len(t))
        self.f.write(t)
        self.f.write(b"\0" * ((4 - len(t) % 4) % 4))

    def host_file(self, path, as_name=None):
        """Copy a host file, following symlinks but keeping the link name too."""
        name = as_name or path
        real = os.path.realpath(path)
        with open(real, "rb") as f:
            data = f.read()
        self.file(name, data, os.stat(real).st_mode & 0o777)
        if real != path and as_name is None:
            self.file(real, data, os.stat(real).st_mode & 0o777)

    def trailer(self):
        self._hdr("TRAILER!!!", 0, 0)
        self.f.write(b"\0" * ((512 - self.f.tell() % 512) % 512))


def write_extra(out_path, files):
    """A small cpio of {name: (bytes, mode)}: appended to the base image by guest.py."""
    with open(out_path, "wb") as f:
        c = Cpio(f)
        for name, (data, mode) in files.items():
            c.file(name, data, mode)
        c.trailer()


def build(out, kver):
    base, mods, missing = resolve_modules(kver, MODULES)
    required = {"virtio_net", "sd_mod", "scsi_dh_alua", "iscsi_tcp", "dm_mod",
                "dm_multipath", "dm_round_robin"}
    really = [m for m in missing if m.replace("-", "_") in required]
    if really:
        sys.exit("build_initramfs: kernel %s lacks modules: %s" % (kver, " ".join(really)))
    busybox = "/bin/busybox"
    if "statically linked" not in subprocess.run(["file", "-L", busybox], capture_output=True,
                                                 text=True).stdout:
        sys.exit("build_initramfs: /bin/busybox is not static (install busybox-static)")
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        c = Cpio(f)
        for d in ("dev", "proc", "sys", "tmp", "run", "etc", "var/run", "mnt", "root",
                  "etc/iscsi", "etc/multipath", "etc/udev/rules.d"):
            c.dir(d)
        c.host_file(busybox, "bin/busybox")
        for applet in ("sh", "mount", "insmod", "modprobe", "ip", "ifconfig", "route", "dd",
                       "cat", "ls", "sleep", "echo", "grep", "sed", "awk", "cmp", "poweroff",
                       "mkdir", "ln", "head", "tail", "tr", "wc", "md5sum", "sync", "find",
                       "readlink", "basename", "kill", "ps", "date", "seq", "test", "[", "rm",
                       "nc", "timeout", "cut", "sort", "uniq", "xargs", "pidof", "stat",
                       "touch", "true", "false", "expr", "printf"):
            c.symlink("bin/" + applet, "busybox")
        libs = set()
        for b in BINARIES:
            if not os.path.exists(b):
                if b.endswith(("iscsistart", "iscsid", "iscsiadm", "/multipath", "multipathd",
                                "dmsetup")):
                    sys.exit("build_initramfs: %s missing (scripts/deps.sh test installs "
                             "open-iscsi multipath-tools)" % b)
                continue
            c.host_file(b, "sbin/" + os.path.basename(b))
            libs.update(ldd_libs(b))
        if not os.path.exists(UDEVADM):
            sys.exit("build_initramfs: %s missing (scripts/deps.sh test installs udev)"
                     % UDEVADM)
        c.host_file(UDEVADM, "bin/udevadm")
        libs.update(ldd_libs(UDEVADM))
        c.symlink("lib/systemd/systemd-udevd", "/bin/udevadm")
        for h in UDEV_HELPERS:
            c.host_file(h, "lib/udev/" + os.path.basename(h))
            libs.update(ldd_libs(h))
        for r in UDEV_RULES:
            p = os.path.join(UDEV_RULES_DIR, r)
            if not os.path.exists(p):
                sys.exit("build_initramfs: %s missing (scripts/deps.sh test installs udev "
                         "dmsetup multipath-tools)" % p)
            c.host_file(p, "lib/udev/rules.d/" + r)
        for d in PLUGIN_DIRS:
            for p in glob.glob(d + "/*.so"):
                c.host_file(p)
                libs.update(ldd_libs(p))
        # glibc dlopens libgcc_s for pthread_cancel, which multipathd calls when it stops
        # its threads: ldd does not name it
        libs.update(glob.glob("/lib/x86_64-linux-gnu/libgcc_s.so.1"))
        for lib in sorted(libs):
            c.host_file(lib)
        for m in mods:
            c.host_file(os.path.join(base, m), "lib/modules/%s/%s" % (kver, m))
        c.file("etc/modules.order", ("\n".join(
            "/lib/modules/%s/%s" % (kver, m) for m in mods) + "\n").encode(), 0o644)
        c.file("etc/multipath.conf", b"""defaults {
    user_friendly_names no
    find_multipaths no
    path_grouping_policy group_by_prio
    prio alua
    failback immediate
    path_checker tur
    # check paths every second (at most every 2 s while they are healthy): a path that
    # comes back is reinstated within a couple of seconds, not after the default 5-20 s
    polling_interval 1
    max_polling_interval 2
    # with every path down, queue for 30 checks then fail: a lost target ends the test
    # with I/O errors instead of hanging it
    no_path_retry 30
}
blacklist_exceptions {
    property ".*"
}
""", 0o644)
        # iscsid's node defaults: a session whose connection is lost is re-established by
        # iscsid (it retries the login for ever), and its commands fail after 5 s, not 120 s,
        # so dm-multipath fails the path and goes on through another
        c.file("etc/iscsi/iscsid.conf", b"""node.startup = manual
node.session.timeo.replacement_timeout = 5
node.conn[0].timeo.login_timeout = 5
node.conn[0].timeo.noop_out_interval = 0
node.conn[0].timeo.noop_out_timeout = 0
node.session.initial_login_retry_max = 2
node.session.scan = auto
""", 0o644)
        c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        c.file("etc/group", b"root:x:0:\n", 0o644)
        with open(os.path.join(HERE, "init.sh"), "rb") as f:
            c.file("init", f.read(), 0o755)
        c.trailer()
    os.replace(tmp, out)
    return "/boot/vmlinuz-" + kver


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--kernel-version")
    a = ap.parse_args()
    kver = kernel_version(a.kernel_version)
    print(build(a.out, kver), a.out)


if __name__ == "__main__":
    main()
