#!/bin/sh
# /init of the kernel-initiator test guest (scripts/guest/build_initramfs.py packs it).
# Mounts the kernel file systems, loads the modules in /etc/modules.order, brings up
# eth0 on qemu's user network (10.0.2.15), sources the appended /test.sh and powers off.
# The network is restricted (tests/integration/guest.py): the guest reaches only the
# addresses the test forwards to the target's loopback portals (10.0.2.100:3260 ...). Everything reaches the host on the serial console;
# lines starting with @@ are markers tests/integration/guest.py reads:
#   @@BOOTED  @@RESULT KEY VALUE  @@FAIL WHY  @@STEP NAME  @@EXIT RC
export PATH=/sbin:/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/lib:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "@@BOOTED $(cat /proc/uptime)"
while read -r m; do
  insmod "$m" 2>/tmp/insmod.err || grep -q "File exists" /tmp/insmod.err || \
    echo "@@WARN insmod $m: $(cat /tmp/insmod.err)"
done < /etc/modules.order
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

result() { echo "@@RESULT $*"; }
fail() { echo "@@FAIL $*"; FAILED=1; }
step() { echo "@@STEP $* $(cut -d' ' -f1 /proc/uptime)"; }
# login IQN TPGT ADDR PORT [USER PASSWORD]: one kernel session through iscsistart
login() {
  _a="-i $INITIATOR -t $1 -g $2 -a $3 -p $4"
  [ -n "$5" ] && _a="$_a -u $5 -w $6"
  # no iscsid in the guest: a connection failure must fail fast, not queue for 120 s
  iscsistart $_a -P node.session.timeo.replacement_timeout=5 \
    -P node.conn[0].timeo.noop_out_interval=0 -P node.conn[0].timeo.noop_out_timeout=0
}
# disks of the iSCSI sessions: sdX names, waiting for the SCSI scan
wait_disks() {
  _n=0
  while [ $_n -lt 100 ]; do
    _d=$(ls /sys/block | grep '^sd' | wc -l)
    [ "$_d" -ge "$1" ] && return 0
    sleep 0.2; _n=$((_n + 1))
  done
  return 1
}
now() { cut -d. -f1 /proc/uptime; }
# until_true SECS WHAT CONDITION: poll the shell CONDITION every 0.2 s, at most SECS s;
# past that fail "timed out ... WHAT" (the tests wait for what they can observe, never
# for a fixed time)
until_true() {
  _t=$1; _what=$2; shift 2
  _end=$(( $(now) + _t ))
  while ! eval "$@"; do
    if [ "$(now)" -ge "$_end" ]; then fail "timed out after $_t s waiting for $_what"; return 1; fi
    sleep 0.2
  done
  return 0
}
# start_multipathd: systemd-udevd (multipathd takes path add / remove from udev's events
# and a path's WWID from udev's database), the block devices that exist replayed to it,
# then multipathd in the foreground of a background job, its log in /tmp/multipathd.log
start_multipathd() {
  mkdir -p /run/udev /etc/multipath
  /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/tmp/udevd.err ||     { fail "systemd-udevd did not start: $(cat /tmp/udevd.err)"; return 1; }
  udevadm trigger --action=add --subsystem-match=block
  udevadm settle --timeout=30 || fail "udevadm settle"
  multipathd -d -s -v3 > /tmp/multipathd.log 2>&1 &
  MULTIPATHD=$!
  until_true 30 "multipathd to answer on its socket"     'multipathd show daemon 2>/dev/null | grep -qE "idle|running"' ||     { tail -20 /tmp/multipathd.log; return 1; }
}
# start_iscsid: open-iscsi's daemon, for sessions that must survive a lost connection
# (iscsistart's do not: it logs in and exits); its log in /tmp/iscsid.log
start_iscsid() {
  mkdir -p /etc/iscsi/nodes /etc/iscsi/send_targets /run/lock/iscsi
  echo "InitiatorName=$INITIATOR" > /etc/iscsi/initiatorname.iscsi
  iscsid -f > /tmp/iscsid.log 2>&1 &
  ISCSID=$!
  # iscsiadm exits 21 ("no sessions") once iscsid answers, 20 before
  until_true 30 "iscsid to answer" \
    'iscsiadm -m session > /dev/null 2>&1; _rc=$?; [ $_rc = 0 ] || [ $_rc = 21 ]' || \
    { cat /tmp/iscsid.log; return 1; }
}
# node_login IQN TPGT ADDR PORT: a node record (iscsid.conf's defaults) and its session,
# which iscsid keeps re-establishing when the connection is lost
node_login() {
  iscsiadm -m node -o new -T $1 -p $3:$4,$2 > /dev/null && \
    iscsiadm -m node -T $1 -p $3:$4,$2 --login
}
FAILED=0
RC=0
INITIATOR=$(sed -n 's/.*ut.initiator=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$INITIATOR" ] || INITIATOR=iqn.1994-05.com.example:guest
if [ -f /test.sh ]; then
  . /test.sh
  RC=$?
else
  fail "no /test.sh"
fi
[ "$FAILED" = 0 ] || RC=1
echo "@@EXIT $RC"
sync
poweroff -f
