"""A qemu guest running the real Linux kernel iSCSI initiator (docs/testing-guest.md).

LinuxGuest(workdir, script) boots /boot/vmlinuz-K with the initramfs of
scripts/guest/build_initramfs.py (built once per pytest session) plus a small appended
cpio holding /test.sh, under qemu-system-x86_64 (-accel kvm when a kernel boots under it, else
tcg) with user-mode networking restricted to the test's forwards (slirp `restrict=on`): each
`forwards` entry (GUEST_ADDR, GUEST_PORT, HOST_PORT) lets the guest reach the host's
127.0.0.1:HOST_PORT as GUEST_ADDR:GUEST_PORT, through scripts/guest/fwd.py, which qemu
runs once per guest connection (`guestfwd=...-cmd:`), so a forward carries any number of
sessions and reconnects. Nothing else outside the guest answers it: not the host's other
ports, not 10.0.2.2, not the outside world. The serial console is read line by line into
`log` (and the file serial.log in the work dir); lines starting with @@ are the guest's
markers (see scripts/guest/init.sh).
"""

import os
import shutil
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "guest"))
import build_initramfs as bi  # noqa: E402

_BASE = {}


def base_image(cache_dir):
    """(kernel image, base initramfs): built once per process."""
    if "img" not in _BASE:
        # a missing prerequisite is a failure, never a skip: scripts/deps.sh test
        # installs all of it (kernel, busybox-static, open-iscsi, multipath-tools, qemu)
        if shutil.which("qemu-system-x86_64") is None:
            raise AssertionError("qemu-system-x86_64 not installed (scripts/deps.sh test "
                                 "installs qemu-system-x86)")
        try:
            kver = bi.kernel_version()
            out = os.path.join(str(cache_dir), "guest-base-%s.cpio" % kver)
            kernel = bi.build(out, kver)
        except SystemExit as e:
            raise AssertionError("cannot build the guest initramfs: %s" % e)
        _BASE["img"] = (kernel, out)
    return _BASE["img"]


def accel(kernel):
    """kvm when /dev/kvm is usable and a guest kernel really runs under it, else tcg.
    The probe matters: on some nested hosts /dev/kvm opens but a guest kernel hangs right
    after the boot loader (seen: a host whose vCPU lacks SSE3, "host doesn't support
    requested feature: CPUID.01H:ECX.pni"), which left every guest test waiting for a
    guest that never starts. Probed once per process."""
    if "accel" not in _BASE:
        _BASE["accel"] = "tcg"
        if os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
            if kvm_boots(kernel):
                _BASE["accel"] = "kvm"
            else:
                print("guest: /dev/kvm is there but a kernel does not boot under it; "
                      "using tcg", file=sys.stderr)
    return _BASE["accel"]


def kvm_boots(kernel, timeout=15):
    """Whether `kernel` prints its first line under -accel kvm within `timeout`."""
    p = subprocess.Popen(["qemu-system-x86_64", "-accel", "kvm", "-m", "128", "-nographic",
                          "-no-reboot", "-kernel", kernel, "-append",
                          "console=ttyS0 panic=-1 earlyprintk=ttyS0", "-display", "none",
                          "-vga", "none", "-net", "none"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    found = threading.Event()

    def read():
        for line in p.stdout:
            if b"Linux version" in line:
                found.set()
                return
    t = threading.Thread(target=read, daemon=True)
    t.start()
    found.wait(timeout)
    p.kill()
    p.wait()
    t.join(5)
    return found.is_set()


class LinuxGuest:
    def __init__(self, workdir, script, cache_dir=None, initiator=None, memory=512,
                 cpus=1, name="guest", forwards=()):
        self.workdir = str(workdir)
        self.script = script
        self.cache_dir = str(cache_dir or workdir)
        self.initiator = initiator or "iqn.1994-05.com.example:guest"
        self.memory, self.cpus, self.name = memory, cpus, name
        self.forwards = list(forwards)
        self.fwd_log = os.path.join(self.workdir, name + "-fwd.log")
        self.log_path = os.path.join(self.workdir, name + "-serial.log")
        self.lines = []
        self.proc = None
        self._cond = threading.Condition()
        self.started = None

    def _initrd(self):
        kernel, base = base_image(self.cache_dir)
        extra = os.path.join(self.workdir, self.name + "-test.cpio")
        bi.write_extra(extra, {"test.sh": (self.script.encode(), 0o755)})
        initrd = os.path.join(self.workdir, self.name + "-initrd.cpio")
        with open(initrd, "wb") as out:
            for p in (base, extra):
                with open(p, "rb") as f:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        out.write(b)
        return kernel, initrd

    def command(self):
        kernel, initrd = self._initrd()
        a = accel(kernel)
        cmd = ["qemu-system-x86_64", "-nographic", "-no-reboot", "-m", str(self.memory),
               "-smp", str(self.cpus), "-accel", a, "-kernel", kernel, "-initrd", initrd,
               "-append", "console=ttyS0 panic=-1 quiet loglevel=4 ut.initiator=%s"
               % self.initiator,
               "-netdev", self.netdev(), "-device", "virtio-net-pci,netdev=n0",
               "-serial", "mon:stdio", "-display", "none", "-vga", "none"]
        if a == "tcg":
            cmd[cmd.index("-accel") + 1] = "tcg,thread=single"
            cmd += ["-cpu", "max"]
        return cmd

    def netdev(self):
        """qemu's -netdev: user networking with no way out (restrict=on) except a guestfwd
        per forward, each running fwd.py for every connection the guest opens to it."""
        fwd = os.path.join(REPO, "scripts", "guest", "fwd.py")
        parts = ["user", "id=n0", "restrict=on"]
        for f in self.forwards:
            # (guest address, guest port, host port[, host address: 127.0.0.1])
            gaddr, gport, hport = f[:3]
            haddr = f[3] if len(f) > 3 else "127.0.0.1"
            cmd = "%s %s %s %d %s" % (sys.executable, fwd, haddr, hport, self.fwd_log)
            # qemu's option parser takes ",," for a comma inside a value
            parts.append("guestfwd=tcp:%s:%d-cmd:%s" % (gaddr, gport, cmd.replace(",", ",,")))
        return ",".join(parts)

    def forward_connects(self, host_port=None):
        """Connections the guest opened through the forwards (fwd.py's log), to one host
        port or all of them."""
        try:
            with open(self.fwd_log) as f:
                lines = f.read().split("\n")
        except OSError:
            return []
        return [l for l in lines if " connect " in l and
                (host_port is None or l.endswith(" %d" % host_port))]

    def start(self):
        cmd = self.command()
        self.started = time.monotonic()
        self.logf = open(self.log_path, "w")
        self.logf.write("$ %s\n" % " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.logf.write(line + "\n")
            self.logf.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, prefix, timeout=120):
        """The first console line starting with `prefix` (markers: '@@STEP io'), or None
        when the guest ends or the time runs out."""
        deadline = time.monotonic() + timeout
        i = 0
        with self._cond:
            while True:
                while i < len(self.lines):
                    if self.lines[i].lstrip().startswith(prefix):
                        return self.lines[i].strip()
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and i >= len(self.lines):
                    return None
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout=240):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("guest did not power off within %d s\n%s"
                                 % (timeout, self.tail()))
        time.sleep(0.2)
        self.elapsed = time.monotonic() - self.started
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                self.proc.kill()
            self.proc.wait()

    def run(self, timeout=240):
        return self.start().wait(timeout)

    # ---- results
    def markers(self, kind):
        out = []
        for l in self.lines:
            l = l.strip()
            if l.startswith("@@" + kind + " ") or l == "@@" + kind:
                out.append(l[len(kind) + 3:])
        return out

    def results(self):
        r = {}
        for m in self.markers("RESULT"):
            k, _, v = m.partition(" ")
            r[k] = v
        return r

    def exit_code(self):
        e = self.markers("EXIT")
        return int(e[-1]) if e else None

    def tail(self, n=80):
        return "--- serial log tail (%s) ---\n%s" % (self.log_path, "\n".join(self.lines[-n:]))

    def check(self):
        """Assert the script ran to its end with no @@FAIL."""
        fails = self.markers("FAIL")
        rc = self.exit_code()
        assert rc == 0 and not fails, "guest: exit %s, failures %s\n%s" % (rc, fails,
                                                                          self.tail())
        return self.results()


# A guest shell fragment (the test scripts provide until_true): verified I/O through a
# multipath map, for the failover tests (test_kernel_initiator.py, test_rbd_ha.py).
IO_LOOP_SH = r"""# io_loop: write, read back and compare 1 MiB regions of the map $DM until /tmp/io.stop;
# /tmp/io.count holds "ROUNDS ERRORS", /tmp/io.times "ROUND@UPTIME" per round
io_loop() {
  i=0; errs=0
  while [ ! -e /tmp/io.stop ]; do
    # 1 MiB commands: few of them, as each one through a non-optimized port waits for
    # the group's nonop_delay_msecs
    seek=$(( i % 8 + 1 ))
    dd if=/tmp/pat of=$DM bs=1M seek=$seek oflag=direct conv=fsync 2>/tmp/io.err || \
      { errs=$((errs+1)); echo "@@WARN round $i write: $(cat /tmp/io.err)"; }
    dd if=$DM of=/tmp/io.back bs=1M skip=$seek count=1 iflag=direct 2>/tmp/io.err || \
      { errs=$((errs+1)); echo "@@WARN round $i read: $(cat /tmp/io.err)"; }
    cmp -s /tmp/pat /tmp/io.back || { errs=$((errs+1)); echo "@@WARN round $i: read back differs"; }
    i=$((i+1))
    echo "$i $errs" > /tmp/io.count
    echo "$i@$(cut -d' ' -f1 /proc/uptime)" >> /tmp/io.times
  done
}
rounds() { cut -d' ' -f1 /tmp/io.count 2>/dev/null || echo 0; }
# more_rounds N WHAT [SECONDS]: wait until the loop has done N rounds more than now
more_rounds() { _r=$(( $(rounds) + $1 )); until_true ${3:-120} "$2" '[ $(rounds) -ge $_r ]'; }
"""
