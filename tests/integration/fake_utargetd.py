"""An in-memory stand-in for utargetd's control socket (docs/control-api.md),
for testing clients (utarget.rtslib) without the daemon. It keeps the
configuration as saveconfig.json and answers the documented methods with the
documented error codes; it does no I/O and has no sessions unless a test
puts some in `sessions`. Stdlib only.

    with FakeUtargetd(tmp_path / "ctl.sock") as fake:
        ... fake.config, fake.calls (every request seen) ...
"""

import copy
import json
import os
import socket
import threading
import uuid

NOT_FOUND, EXISTS, REFUSED, INVALID_PARAMS, NO_METHOD = -32001, -32002, -32000, -32602, -32601


class RpcFail(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _need(p, *names):
    for n in names:
        if n not in p:
            raise RpcFail(INVALID_PARAMS, "missing parameter: %s" % n)


# The daemon's own tables (describe output, kept equal to it by
# test_schema.py::test_fake_daemon_tables_are_the_daemons).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                       "describe.json")) as _f:
    DESCRIBE = json.load(_f)
ATTR_DEFAULTS = {kind: {r["name"]: r["default"] for r in DESCRIBE[kind]}
                 for kind in ("backstore", "tpg", "acl")}
RO = {r["name"] for kind in ("backstore", "tpg", "acl") for r in DESCRIBE[kind] if r["ro"]}
PARAM_DEFAULTS = {r["name"]: r["default"] for r in DESCRIBE["tpg_parameter"]}
AUTH_KEYS = ("userid", "password", "mutual_userid", "mutual_password")


class FakeUtargetd:
    def __init__(self, path):
        self.path = str(path)
        self.config = {"fabric_modules": [], "storage_objects": [], "targets": []}
        self.discovery = {"enable": False, "userid": "", "password": "",
                          "mutual_userid": "", "mutual_password": ""}
        self.sessions = []
        self.calls = []
        self.saved = {}
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.conns = []

    # ------------------------------------------------------------ server
    def __enter__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def drop_connections(self):
        """Close every client connection, as a restarted daemon would."""
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []

    def _serve(self, conn):
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    resp = self.handle_line(line)
                    if resp is not None:
                        conn.sendall((json.dumps(resp) + "\n").encode())

    def handle_line(self, line):
        try:
            req = json.loads(line)
        except ValueError:
            return {"jsonrpc": "2.0", "id": None,
                    "error": {"code": -32700, "message": "parse error"}}
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or {}
        with self.lock:
            self.calls.append((method, copy.deepcopy(params)))
            fn = getattr(self, "m_" + str(method).replace(".", "_"), None)
            try:
                if fn is None:
                    raise RpcFail(NO_METHOD, "method not found: %s" % method)
                # Validate whole, then apply: work on a copy.
                saved = copy.deepcopy((self.config, self.discovery))
                try:
                    result = fn(params)
                except Exception:
                    self.config, self.discovery = saved
                    raise
                out = {"jsonrpc": "2.0", "id": rid, "result": result}
            except RpcFail as e:
                out = {"jsonrpc": "2.0", "id": rid,
                       "error": {"code": e.code, "message": str(e)}}
        return out if "id" in req else None

    # ------------------------------------------------------------ lookups
    def _so(self, plugin, name, must=True):
        for so in self.config["storage_objects"]:
            if so["plugin"] == plugin and so["name"] == name:
                return so
        if must:
            raise RpcFail(NOT_FOUND, "No storage object named %s in %s" % (name, plugin))
        return None

    def _target(self, p, must=True):
        _need(p, "wwn")
        for t in self.config["targets"]:
            if t["wwn"] == p["wwn"]:
                return t
        if must:
            raise RpcFail(NOT_FOUND, "No such Target %s" % p["wwn"])
        return None

    def _tpg(self, p, must=True):
        _need(p, "tag")
        for tp in self._target(p)["tpgs"]:
            if tp["tag"] == p["tag"]:
                return tp
        if must:
            raise RpcFail(NOT_FOUND, "No such TPG %s" % p["tag"])
        return None

    def _acl(self, p, must=True):
        _need(p, "node_wwn")
        for a in self._tpg(p)["node_acls"]:
            if a["node_wwn"] == p["node_wwn"]:
                return a
        if must:
            raise RpcFail(NOT_FOUND, "No such NodeACL %s" % p["node_wwn"])
        return None

    # ------------------------------------------------------------ methods
    def m_version(self, p):
        return {"version": "0.1.0-fake"}

    def m_get_config(self, p):
        return copy.deepcopy(self.config)

    def m_save_config(self, p):
        f = p.get("file", "/fake/saveconfig.json")
        self.saved[f] = copy.deepcopy(self.config)
        with open(f, "w") if p.get("file") else open(os.devnull, "w") as out:
            json.dump(self.config, out, indent=2, sort_keys=True)
        return {"file": f, "backup_dir": os.path.join(os.path.dirname(f), "backup"),
                "backups_kept": 0}

    def m_restore_config(self, p):
        if "file" not in p:
            raise RpcFail(REFUSED, "no default file in the fake")
        with open(p["file"]) as f:
            cfg = json.load(f)
        if not p.get("clear_existing") and (self.config["storage_objects"]
                                            or self.config["targets"]):
            raise RpcFail(REFUSED, "Configuration exists; use clear_existing=true")
        if p.get("clear_existing"):
            self.config = {"fabric_modules": [], "storage_objects": [], "targets": []}
        errors = []
        for so in cfg.get("storage_objects", []):
            if self._so(so["plugin"], so["name"], must=False):
                errors.append("Storage object %s/%s exists, skipped" % (so["plugin"], so["name"]))
            else:
                self.config["storage_objects"].append(copy.deepcopy(so))
        for t in cfg.get("targets", []):
            self.config["targets"].append(copy.deepcopy(t))
        return {"errors": errors}

    def m_clear_config(self, p):
        if p.get("confirm") is not True:
            raise RpcFail(REFUSED, "clear_config needs confirm=true")
        self.config = {"fabric_modules": [], "storage_objects": [], "targets": []}
        return {}

    def m_sessions(self, p):
        return copy.deepcopy(self.sessions)

    def m_describe(self, p):
        _need(p, "kind")
        if p["kind"] not in DESCRIBE:
            raise RpcFail(INVALID_PARAMS, "invalid kind")
        return copy.deepcopy(DESCRIBE[p["kind"]])

    def m_backstore_create(self, p):
        _need(p, "plugin", "name")
        if p["plugin"] not in ("fileio", "block", "ramdisk", "pscsi"):
            raise RpcFail(INVALID_PARAMS, "plugin")
        if self._so(p["plugin"], p["name"], must=False):
            raise RpcFail(EXISTS, "Storage object %s/%s exists" % (p["plugin"], p["name"]))
        so = {"plugin": p["plugin"], "name": p["name"],
              "attributes": dict(ATTR_DEFAULTS["backstore"]), "alua_tpgs": []}
        if p["plugin"] in ("fileio", "block", "pscsi"):
            _need(p, "dev")
            so["dev"] = p["dev"]
        if p["plugin"] == "fileio":
            if not os.path.exists(p["dev"]):
                if "size" not in p:
                    raise RpcFail(REFUSED, "Attempting to create file for new fileio "
                                  "backstore, need a size")
                with open(p["dev"], "wb") as f:
                    f.truncate(p["size"])
            so["size"] = p.get("size") or os.path.getsize(p["dev"])
            so["write_back"] = p.get("write_back", True)
        if p["plugin"] == "block":
            so["readonly"] = p.get("readonly", False)
            so["write_back"] = False
        if p["plugin"] == "ramdisk":
            _need(p, "size")
            so["size"] = p["size"]
            if p.get("nullio"):
                so["nullio"] = True
        if p["plugin"] != "pscsi":
            so["wwn"] = p.get("wwn") or str(uuid.uuid4())
        self.config["storage_objects"].append(so)
        return copy.deepcopy(so)

    def _so_path_used(self, path):
        return any(lun["storage_object"] == path for t in self.config["targets"]
                   for tp in t["tpgs"] for lun in tp["luns"])

    def m_backstore_delete(self, p):
        so = self._so(p["plugin"], p["name"])
        if self._so_path_used("/backstores/%s/%s" % (p["plugin"], p["name"])):
            raise RpcFail(REFUSED, "Storage object is in use by a LUN")
        self.config["storage_objects"].remove(so)
        return {}

    def _set_attrs(self, obj, attrs, kind):
        for k, v in attrs.items():
            if k not in ATTR_DEFAULTS[kind] or k in RO:
                raise RpcFail(REFUSED, "Cannot set attribute %s" % k)
            if not isinstance(v, int):
                raise RpcFail(INVALID_PARAMS, "attribute %s wants a number" % k)
        obj.setdefault("attributes", {}).update(attrs)
        return {}

    def m_backstore_set_attributes(self, p):
        return self._set_attrs(self._so(p["plugin"], p["name"]), p.get("attributes", {}),
                               "backstore")

    def m_backstore_get_attributes(self, p):
        return dict(self._so(p["plugin"], p["name"])["attributes"])

    def m_target_create(self, p):
        wwn = p.get("wwn") or "iqn.2003-01.org.linux-iscsi.fake.x8664:sn.%s" % uuid.uuid4().hex[:12]
        if self._target({"wwn": wwn}, must=False):
            raise RpcFail(EXISTS, "Target %s exists" % wwn)
        self.config["targets"].append({"fabric": "iscsi", "wwn": wwn, "tpgs": []})
        return {"wwn": wwn}

    def m_target_delete(self, p):
        self.config["targets"].remove(self._target(p))
        return {}

    def m_tpg_create(self, p):
        t = self._target(p)
        tags = {tp["tag"] for tp in t["tpgs"]}
        tag = p.get("tag") or next(i for i in range(1, 65536) if i not in tags)
        if tag in tags:
            raise RpcFail(EXISTS, "TPG %d exists" % tag)
        t["tpgs"].append({"tag": tag, "enable": False, "attributes": dict(ATTR_DEFAULTS["tpg"]),
                          "parameters": dict(PARAM_DEFAULTS), "luns": [], "portals": [],
                          "node_acls": []})
        return {"tag": tag}

    def m_tpg_delete(self, p):
        self._target(p)["tpgs"].remove(self._tpg(p))
        return {}

    def m_tpg_enable(self, p):
        _need(p, "enable")
        self._tpg(p)["enable"] = bool(p["enable"])
        return {}

    def m_tpg_set_attributes(self, p):
        return self._set_attrs(self._tpg(p), p.get("attributes", {}), "tpg")

    def m_tpg_get_attributes(self, p):
        return dict(self._tpg(p)["attributes"])

    def m_tpg_set_parameters(self, p):
        tp = self._tpg(p)
        for k, v in p.get("parameters", {}).items():
            if k not in PARAM_DEFAULTS or not isinstance(v, str):
                raise RpcFail(REFUSED, "Cannot set parameter %s" % k)
        tp["parameters"].update(p.get("parameters", {}))
        return {}

    def m_tpg_get_parameters(self, p):
        return dict(self._tpg(p)["parameters"])

    def _set_auth(self, obj, p):
        for k in AUTH_KEYS:
            if k in p:
                obj["chap_" + k] = p[k]
        return {}

    def _get_auth(self, obj):
        return {k: obj.get("chap_" + k, "") for k in AUTH_KEYS}

    def m_tpg_set_auth(self, p):
        return self._set_auth(self._tpg(p), p)

    def m_tpg_get_auth(self, p):
        return self._get_auth(self._tpg(p))

    def m_discovery_auth_set(self, p):
        for k in ("enable",) + AUTH_KEYS:
            if k in p:
                self.discovery[k] = p[k]
        return {}

    def m_discovery_auth_get(self, p):
        return dict(self.discovery)

    def m_lun_create(self, p):
        _need(p, "storage_object")
        tp = self._tpg(p)
        parts = p["storage_object"].split("/")
        if len(parts) != 4 or not self._so(parts[2], parts[3], must=False):
            raise RpcFail(NOT_FOUND, "No storage object %s" % p["storage_object"])
        used = {lun["index"] for lun in tp["luns"]}
        idx = p.get("lun")
        if idx is None:
            idx = next(i for i in range(65536) if i not in used)
        if idx in used:
            raise RpcFail(EXISTS, "LUN %d exists" % idx)
        tp["luns"].append({"index": idx, "storage_object": p["storage_object"],
                           "alias": None, "alua_tg_pt_gp_name": "default_tg_pt_gp"})
        mapped = []
        if p.get("add_mapped_luns", True):
            for a in tp["node_acls"]:
                have = {m["index"] for m in a["mapped_luns"]}
                mi = idx if idx not in have else next(i for i in range(65536) if i not in have)
                a["mapped_luns"].append({"index": mi, "tpg_lun": idx, "write_protect": False})
                mapped.append({"node_wwn": a["node_wwn"], "mapped_lun": mi})
        return {"lun": idx, "mapped": mapped}

    def m_lun_delete(self, p):
        _need(p, "lun")
        tp = self._tpg(p)
        for lun in tp["luns"]:
            if lun["index"] == p["lun"]:
                tp["luns"].remove(lun)
                for a in tp["node_acls"]:
                    a["mapped_luns"] = [m for m in a["mapped_luns"] if m["tpg_lun"] != p["lun"]]
                return {}
        raise RpcFail(NOT_FOUND, "No LUN %s" % p["lun"])

    def m_portal_create(self, p):
        tp = self._tpg(p)
        ip, port = p.get("ip_address", "0.0.0.0"), p.get("port", 3260)
        if any(x["ip_address"] == ip and x["port"] == port for x in tp["portals"]):
            raise RpcFail(EXISTS, "Portal %s:%d exists" % (ip, port))
        tp["portals"].append({"ip_address": ip, "port": port, "iser": False, "offload": False})
        return {"ip_address": ip, "port": port}

    def m_portal_delete(self, p):
        _need(p, "ip_address", "port")
        tp = self._tpg(p)
        for x in tp["portals"]:
            if x["ip_address"] == p["ip_address"] and x["port"] == p["port"]:
                tp["portals"].remove(x)
                return {}
        raise RpcFail(NOT_FOUND, "No portal")

    def m_acl_create(self, p):
        _need(p, "node_wwn")
        tp = self._tpg(p)
        if self._acl(p, must=False):
            raise RpcFail(EXISTS, "ACL %s exists" % p["node_wwn"])
        a = {"node_wwn": p["node_wwn"], "attributes": dict(ATTR_DEFAULTS["acl"]),
             "mapped_luns": []}
        if p.get("add_mapped_luns", True):
            a["mapped_luns"] = [{"index": lun["index"], "tpg_lun": lun["index"],
                                 "write_protect": False} for lun in tp["luns"]]
        tp["node_acls"].append(a)
        return {"node_wwn": p["node_wwn"], "mapped": [m["index"] for m in a["mapped_luns"]]}

    def m_acl_delete(self, p):
        self._tpg(p)["node_acls"].remove(self._acl(p))
        return {}

    def m_acl_set_attributes(self, p):
        return self._set_attrs(self._acl(p), p.get("attributes", {}), "acl")

    def m_acl_get_attributes(self, p):
        return dict(self._acl(p)["attributes"])

    def m_acl_set_auth(self, p):
        return self._set_auth(self._acl(p), p)

    def m_acl_get_auth(self, p):
        return self._get_auth(self._acl(p))

    def m_acl_set_tag(self, p):
        _need(p, "acl_tag")
        a = self._acl(p)
        if p["acl_tag"] is None:
            a.pop("tag", None)
        else:
            a["tag"] = p["acl_tag"]
        return {}

    def m_mapped_lun_create(self, p):
        _need(p, "mapped_lun", "tpg_lun")
        a = self._acl(p)
        if not any(lun["index"] == p["tpg_lun"] for lun in self._tpg(p)["luns"]):
            raise RpcFail(NOT_FOUND, "No TPG LUN %s" % p["tpg_lun"])
        if any(m["index"] == p["mapped_lun"] for m in a["mapped_luns"]):
            raise RpcFail(EXISTS, "Mapped LUN %s exists" % p["mapped_lun"])
        a["mapped_luns"].append({"index": p["mapped_lun"], "tpg_lun": p["tpg_lun"],
                                 "write_protect": bool(p.get("write_protect", False))})
        return {}

    def _mlun(self, p):
        _need(p, "mapped_lun")
        for m in self._acl(p)["mapped_luns"]:
            if m["index"] == p["mapped_lun"]:
                return m
        raise RpcFail(NOT_FOUND, "No mapped LUN %s" % p["mapped_lun"])

    def m_mapped_lun_delete(self, p):
        self._acl(p)["mapped_luns"].remove(self._mlun(p))
        return {}

    def m_mapped_lun_set_write_protect(self, p):
        _need(p, "write_protect")
        self._mlun(p)["write_protect"] = bool(p["write_protect"])
        return {}
