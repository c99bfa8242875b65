"""A tiny stdlib client of utargetd's control socket (docs/control-api.md), for tests.

    rpc = RpcClient(daemon.sock)          # connects lazily, retries while the daemon starts
    rpc.call("backstore.create", plugin="ramdisk", name="rd0", size=1 << 20)
    with pytest.raises(RpcError) as ei:   # ei.value.code / .message
        rpc.call("target.create", wwn="bogus")

Framing: one JSON object per line each way. `send_raw()` / `recv_line()` let a test speak
bytes that are not valid requests (malformed JSON, oversize lines).

Also: `start_on_file()` starts a utargetd on an existing saveconfig.json through the
conftest `utarget` fixture (so its exit status and sanitizer output are still checked).
"""

import itertools
import json
import os
import socket
import time

import uthelpers as ut


class RpcError(Exception):
    def __init__(self, method, code, message, data=None):
        super().__init__("%s: error %s: %s" % (method, code, message))
        self.method, self.code, self.message, self.data = method, code, message, data


# Error codes (docs/control-api.md)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
REFUSED = -32000
NOT_FOUND = -32001
EXISTS = -32002


class RpcClient:
    def __init__(self, path, timeout=60.0, connect_timeout=20.0):
        self.path = path
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.sock = None
        self.buf = b""
        self._ids = itertools.count(1)

    # -- connection
    def connect(self):
        deadline = time.monotonic() + self.connect_timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.path)
                self.sock, self.buf = s, b""
                return self
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw framing
    def send_raw(self, data):
        if self.sock is None:
            self.connect()
        self.sock.sendall(data)

    def recv_line(self):
        """One response line as bytes; b'' when the daemon closed the connection."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def request(self, obj):
        """Send one request object, return the parsed response object."""
        self.send_raw(json.dumps(obj).encode() + b"\n")
        line = self.recv_line()
        if not line:
            self.close()
            raise ConnectionError("utargetd closed the control connection")
        return json.loads(line)

    # -- JSON-RPC
    def call(self, method, **params):
        rid = next(self._ids)
        resp = self.request({"jsonrpc": "2.0", "id": rid, "method": method,
                             "params": params})
        assert resp.get("jsonrpc") == "2.0" and resp.get("id") == rid, resp
        if "error" in resp:
            e = resp["error"]
            raise RpcError(method, e.get("code"), e.get("message"), e.get("data"))
        return resp["result"]

    def error(self, method, **params):
        """Call a method that must fail; return the RpcError."""
        try:
            res = self.call(method, **params)
        except RpcError as e:
            return e
        raise AssertionError("%s(%r) was accepted (result %r); it must be refused"
                             % (method, params, res))


def start_on_file(utarget, utargetd_bin, workdir, port, cfg_file, name):
    """Start `utargetd -c cfg_file -s workdir/<name>.sock -f` through the `utarget`
    fixture (its exit status and sanitizer output are still checked at teardown).

    `port` must be a portal port the file configures on 127.0.0.1: Daemon.start waits
    for it. Returns the Daemon; `daemon.sock` is its control socket."""
    sock = os.path.join(str(workdir), name + ".sock")
    cfg = ut.Config(port, workdir)
    return utarget(cfg, name=name,
                   argv=[utargetd_bin, "-c", str(cfg_file), "-s", sock, "-f"])
