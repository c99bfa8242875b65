#!/usr/bin/env python3
"""One guest connection to one host port: qemu's slirp runs this for every TCP connection
the guest opens to a `guestfwd=tcp:ADDR:PORT-cmd:...` address (tests/integration/guest.py),
with the guest's side of the connection as stdin and stdout (and stderr: so this writes
nothing to stderr, it would reach the iSCSI stream).

Usage: fwd.py HOST PORT [LOG]   copies bytes both ways between the guest and HOST:PORT
until either side closes; appends "connect HOST PORT" / "refused HOST PORT ERR" / "close"
lines to LOG when given (the test counts the guest's connections from it).

A plain `guestfwd=...-chardev` serves one connection for the guest's lifetime; a command
per connection lets the guest open several sessions, and reconnect, through one forward.
"""

import os
import selectors
import socket
import sys


def log(path, text):
    if path:
        with open(path, "a") as f:
            f.write("%d %s\n" % (os.getpid(), text))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    logp = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        up = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        log(logp, "refused %s %d %s" % (host, port, e))
        return 1          # closing stdin / stdout resets the guest's connection
    up.settimeout(None)
    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    log(logp, "connect %s %d" % (host, port))
    guest_in, guest_out = 0, 1
    # libslirp hands the command a loopback TCP connection (not a socketpair: it keeps
    # TCP's urgent data), and Nagle is on at its end: the tail of a write command's data
    # waited for this side's delayed ACK, 40 ms and more per command. So this side sends
    # without delay (TCP_NODELAY) and ACKs at once (TCP_QUICKACK, which the kernel clears
    # again: set after every read)
    gsock = None
    try:
        gsock = socket.socket(fileno=os.dup(guest_in))
        gsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        gsock = None      # not a TCP socket (run by hand with pipes)
    sel = selectors.DefaultSelector()
    sel.register(guest_in, selectors.EVENT_READ, "guest")
    sel.register(up, selectors.EVENT_READ, "up")
    open_ends = 2
    while open_ends:
        for key, _ in sel.select():
            if key.data == "guest":
                try:
                    b = os.read(guest_in, 1 << 16)
                    if gsock is not None:
                        gsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                except OSError:
                    b = b""
                if not b:
                    sel.unregister(guest_in)
                    open_ends -= 1
                    try:
                        up.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                up.sendall(b)
            else:
                try:
                    b = up.recv(1 << 16)
                except OSError:
                    b = b""
                if not b:
                    # the target closed: the guest sees its connection end
                    log(logp, "close")
                    return 0
                view = memoryview(b)
                while view:
                    n = os.write(guest_out, view)
                    view = view[n:]
    log(logp, "close")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, ConnectionError):
        sys.exit(0)
