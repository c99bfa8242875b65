"""JSON-RPC 2.0 client of utargetd's control socket (docs/control-api.md).

One request object per line, one response per line, in order, over a UNIX
stream socket. Every rtslib object of this package goes through one Client;
`default_client()` is the one objects use when they are given none.

Socket, first found: the `socket` argument of RTSRoot / Client, else
$UTARGET_SOCKET, else utargetd's default (as root /run/utarget/utargetd.sock,
otherwise $XDG_RUNTIME_DIR/utarget/utargetd.sock, /tmp/utarget-UID/utargetd.sock
when that is unset).
"""

import itertools
import json
import os
import socket
import threading

from .utils import RTSLibError, RTSLibNotInCFSError

# JSON-RPC error codes of the control API.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
REFUSED = -32000
NOT_FOUND = -32001
EXISTS = -32002

MAX_LINE = 64 << 20  # largest response we accept (a big get_config is a few MiB)


class RPCError(RTSLibError):
    """An error answer of the daemon. `code`, `data` as in the response."""

    def __init__(self, method, code, message, data=None):
        super().__init__(message)
        self.method = method
        self.code = code
        self.data = data


class RPCNotFound(RPCError, RTSLibNotInCFSError):
    """-32001: the object does not exist."""


class RPCExists(RPCError):
    """-32002: the object already exists."""


class MethodNotFound(RPCError):
    """-32601: this daemon does not implement the method."""


def default_socket_path():
    env = os.environ.get("UTARGET_SOCKET")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/utarget/utargetd.sock"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "utarget", "utargetd.sock")
    return "/tmp/utarget-%d/utargetd.sock" % os.geteuid()


class Client:
    """A connection to utargetd; reconnects once if the daemon closed it."""

    def __init__(self, path=None, timeout=60.0):
        self.path = path or default_socket_path()
        self.timeout = timeout
        self._sock = None
        self._buf = b""
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def __repr__(self):
        return "Client(%r)" % self.path

    # ------------------------------------------------------------ transport
    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise RTSLibError("Cannot connect to utargetd's control socket %s: %s "
                              "(is utargetd running? set UTARGET_SOCKET or pass the "
                              "socket path to RTSRoot)" % (self.path, e.strerror or e)) from None
        self._sock = s
        self._buf = b""

    def close(self):
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                finally:
                    self._sock = None
                    self._buf = b""

    def _readline(self):
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise RTSLibError("utargetd's answer is larger than %d bytes" % MAX_LINE)
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("utargetd closed the control connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def _receive(self, rid):
        while True:
            line = self._readline()
            if not line.strip():
                continue
            try:
                resp = json.loads(line.decode("utf-8"))
            except ValueError:
                raise RTSLibError("utargetd sent a line that is not JSON: %r"
                                  % line[:200]) from None
            if isinstance(resp, dict) and resp.get("id") == rid:
                return resp
            # An answer to someone else's id cannot happen on our own
            # connection; skip it rather than mis-attribute it.

    def call(self, method, params=None, **kw):
        """Send one request; return its result or raise RTSLibError (RPCError)."""
        if params is None:
            params = {}
        params = dict(params, **kw)
        with self._lock:
            rid = next(self._ids)
            req = {"jsonrpc": "2.0", "id": rid, "method": method}
            if params:
                req["params"] = params
            payload = (json.dumps(req, separators=(",", ":")) + "\n").encode("utf-8")
            for attempt in (0, 1):
                fresh = self._sock is None
                if fresh:
                    self._connect()
                try:
                    self._sock.sendall(payload)
                    break
                except OSError as e:
                    self.close()
                    # A kept-open connection the daemon has closed (restart,
                    # idle timeout) fails the write with EPIPE before the
                    # request reached it: resend once on a new connection.
                    # Never retried after the request went out, so nothing
                    # is applied twice.
                    if fresh or attempt:
                        raise RTSLibError("Cannot send %s to utargetd (%s): %s"
                                          % (method, self.path, e)) from None
            try:
                resp = self._receive(rid)
            except socket.timeout:
                self.close()
                raise RTSLibError("utargetd did not answer %s within %.0f s"
                                  % (method, self.timeout)) from None
            except OSError as e:
                self.close()
                raise RTSLibError("Lost the connection to utargetd (%s) during %s: %s"
                                  % (self.path, method, e)) from None
        if "error" in resp:
            err = resp["error"] or {}
            code = err.get("code")
            msg = err.get("message") or "utargetd refused %s" % method
            cls = {NOT_FOUND: RPCNotFound, EXISTS: RPCExists,
                   METHOD_NOT_FOUND: MethodNotFound}.get(code, RPCError)
            raise cls(method, code, msg, err.get("data"))
        return resp.get("result")


_default = None
_default_lock = threading.Lock()


def default_client():
    """The process-wide client (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def set_default_socket(path):
    """Point the process-wide client at `path` (None: back to the defaults)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = Client(path)
        return _default
