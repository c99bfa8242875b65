"""The iSCSI fabric objects: FabricModule, Target, TPG, LUN, NetworkPortal,
NodeACL, MappedLUN — rtslib-fb's classes and signatures over utargetd.

Differences from rtslib-fb worth knowing:
- Only the 'iscsi' fabric exists (FabricModule of any other name raises).
- LUN and NodeACL creation never adds mapped LUNs by itself (rtslib's
  behaviour; utargetcli's add_mapped_luns is a shell convenience).
- `path` is the object's place in the utargetcli tree, not a configfs path.
"""

from .client import RPCNotFound
from .node import CFSNode, same_ip
from .tcm import StorageObject, so_from_path
from .utils import RTSLibError, RTSLibNotInCFSError, check_mode, to_int

BOUND = "_bound"   # internal mode: the object is known to exist (from a listing)


def _mode(mode):
    return mode if mode == BOUND else check_mode(mode)


def _allowed_networks(prefix):
    """utarget's initiator address ACL (issue 21; not in LIO): a list of CIDR strings,
    [] = every address. Set with a list (or a comma-separated string)."""
    def get(self):
        return list(self._call(prefix + ".get_allowed_networks",
                               **self._ident())["allowed_networks"])

    def set_(self, value):
        if isinstance(value, str):
            value = [v for v in value.replace(" ", ",").split(",") if v]
        self._call(prefix + ".set_allowed_networks",
                   allowed_networks=[str(v) for v in (value or [])], **self._ident())
    return property(get, set_, doc=_allowed_networks.__doc__)



class FabricModule(CFSNode):
    """FabricModule('iscsi'). utargetd serves iSCSI only."""

    _kind = "FabricModule"

    def __init__(self, name="iscsi", client=None):
        super().__init__(client)
        if name != "iscsi":
            raise RTSLibError("No such fabric module: %s (utargetd serves iscsi only)"
                              % name)
        self.name = name

    def _find(self, cfg):
        return {"name": "iscsi"}

    def _path(self):
        return "/iscsi"

    def _ident(self):
        return {}

    def _key(self):
        return (self.name,)

    @property
    def exists(self):
        return True

    @property
    def features(self):
        return ("discovery_auth", "acls", "auth", "nps", "tpgts")

    def has_feature(self, feature):
        return feature in self.features

    @property
    def wwn_types(self):
        return ("iqn", "naa", "eui")

    @property
    def spec_file(self):
        return None

    @property
    def version(self):
        return "utarget"

    @property
    def is_valid(self):
        return True

    def load(self, yield_steps=False):
        """rtslib 2.x loaded the kernel module here; nothing to load."""
        return iter(())

    @property
    def targets(self):
        for t in self._config().get("targets") or []:
            if t.get("fabric", "iscsi") == "iscsi":
                yield Target(self, t["wwn"], mode=BOUND)

    def target(self, wwn=None, mode="any"):
        return Target(self, wwn, mode)

    # discovery_auth group
    def _disc(self, key):
        d = self._call("discovery_auth.get") or {}
        return d.get(key)

    def _disc_prop(key, api_key, boolean=False):
        def get(self):
            v = self._disc(api_key)
            if boolean:
                return bool(v)
            return "" if v is None else str(v)

        def set_(self, value):
            self._call("discovery_auth.set",
                       **{api_key: bool(int(value)) if boolean and isinstance(value, str)
                          else bool(value) if boolean else str(value)})
        return property(get, set_)

    discovery_enable_auth = _disc_prop("discovery_enable_auth", "enable", True)
    discovery_userid = _disc_prop("discovery_userid", "userid")
    discovery_password = _disc_prop("discovery_password", "password")
    discovery_mutual_userid = _disc_prop("discovery_mutual_userid", "mutual_userid")
    discovery_mutual_password = _disc_prop("discovery_mutual_password", "mutual_password")
    del _disc_prop

    @property
    def discovery_authenticate_target(self):
        return bool(self.discovery_mutual_userid)

    def dump(self):
        d = self._call("discovery_auth.get") or {}
        out = {"name": "iscsi", "discovery_enable_auth": bool(d.get("enable"))}
        for k in ("userid", "password", "mutual_userid", "mutual_password"):
            if d.get(k):
                out["discovery_" + k] = d[k]
        return out

    def delete(self):
        raise RTSLibError("The iscsi fabric module cannot be deleted")

    @classmethod
    def all(cls, client=None):
        yield cls("iscsi", client)

    @classmethod
    def list_registered_drivers(cls):
        return ["iscsi"]


class Target(CFSNode):
    """Target(fabric_module, wwn=None, mode='any'). Without wwn the daemon
    makes one (iqn.2003-01.org.linux-iscsi.<host>.<arch>:sn.<12 hex>)."""

    _kind = "Target"

    def __init__(self, fabric_module, wwn=None, mode="any"):
        if isinstance(fabric_module, str):
            fabric_module = FabricModule(fabric_module)
        super().__init__(fabric_module._client)
        mode = _mode(mode)
        self.fabric_module = fabric_module
        self._wwn = wwn
        if mode == BOUND:
            return
        if wwn is None:
            if mode == "lookup":
                raise RTSLibError("Need a WWN to look up a target")
            res = self._call("target.create") or {}
            self._wwn = res.get("wwn")
            if not self._wwn:
                raise RTSLibError("utargetd created a target but did not name it")
        else:
            self._create_in_cfs_ine(mode)

    def _ident(self):
        return {"wwn": self._wwn}

    def _find(self, cfg):
        for t in cfg.get("targets") or []:
            if t.get("wwn") == self._wwn and t.get("fabric", "iscsi") == "iscsi":
                return t
        return None

    def _create(self):
        self._call("target.create", wwn=self._wwn)

    def _delete(self):
        self._call("target.delete", wwn=self._wwn)

    def _path(self):
        return "/iscsi/%s" % self._wwn

    def _key(self):
        return (self._wwn,)

    @property
    def wwn(self):
        return self._wwn

    @property
    def tpgs(self):
        for tp in self._entry().get("tpgs") or []:
            yield TPG(self, tp["tag"], mode=BOUND)

    def tpg(self, tag=None, mode="any"):
        return TPG(self, tag, mode)

    def has_feature(self, feature):
        return self.fabric_module.has_feature(feature)

    @classmethod
    def setup(cls, fm_obj, t, err_func):
        raise RTSLibError("Use RTSRoot.restore(): utargetd restores whole configurations")


class TPG(CFSNode):
    """TPG(parent_target, tag=None, mode='any'). Without a tag the daemon
    takes the lowest free one from 1."""

    _kind = "TPG"
    _attr_methods = ("tpg.get_attributes", "tpg.set_attributes", "tpg")
    _param_methods = ("tpg.get_parameters", "tpg.set_parameters", "tpg_parameter")
    _auth_methods = ("tpg.get_auth", "tpg.set_auth")

    def __init__(self, parent_target, tag=None, mode="any"):
        super().__init__(parent_target._client)
        mode = _mode(mode)
        self.parent_target = parent_target
        self._tag = None if tag is None else to_int(tag, "TPG tag")
        if mode == BOUND:
            return
        if self._tag is None:
            if mode == "lookup":
                raise RTSLibError("Need a tag to look up a TPG")
            parent_target._check_self()
            res = self._call("tpg.create", wwn=parent_target.wwn) or {}
            self._tag = res.get("tag")
            if self._tag is None:
                raise RTSLibError("utargetd created a TPG but did not give its tag")
        else:
            if self._tag < 1 or self._tag > 65535:
                raise RTSLibError("Invalid TPG tag %d (1-65535)" % self._tag)
            self._create_in_cfs_ine(mode)

    def _ident(self):
        return {"wwn": self.parent_target.wwn, "tag": self._tag}

    def _find(self, cfg):
        t = self.parent_target._find(cfg)
        for tp in (t or {}).get("tpgs") or []:
            if tp.get("tag") == self._tag:
                return tp
        return None

    def _create(self):
        if not self.parent_target.exists:
            raise RTSLibNotInCFSError("No such Target: %s" % self.parent_target.path)
        self._call("tpg.create", **self._ident())

    def _delete(self):
        self._call("tpg.delete", **self._ident())

    def _path(self):
        return "%s/tpg%d" % (self.parent_target.path, self._tag)

    def _key(self):
        return (self.parent_target.wwn, self._tag)

    @property
    def tag(self):
        return self._tag

    def _get_enable(self):
        return bool(self._entry().get("enable"))

    def _set_enable(self, boolean):
        if isinstance(boolean, str):
            boolean = boolean.strip() not in ("0", "", "false", "False", "no")
        self._call("tpg.enable", enable=bool(boolean), **self._ident())

    enable = property(_get_enable, _set_enable, doc="True when the TPG is enabled")

    allowed_networks = _allowed_networks("tpg")

    def has_enable(self):
        return True

    def has_feature(self, feature):
        return self.parent_target.has_feature(feature)

    @property
    def nexus(self):
        return None

    @property
    def authenticate_target(self):
        return bool(self.chap_mutual_userid)

    @property
    def network_portals(self):
        for p in self._entry().get("portals") or []:
            yield NetworkPortal(self, p["ip_address"], p["port"], mode=BOUND)

    @property
    def luns(self):
        for lun in self._entry().get("luns") or []:
            yield LUN(self, lun["index"], _bound=True)

    @property
    def node_acls(self):
        for a in self._entry().get("node_acls") or []:
            yield NodeACL(self, a["node_wwn"], mode=BOUND)

    def node_acl(self, node_wwn, mode="any"):
        return NodeACL(self, node_wwn, mode)

    def network_portal(self, ip_address, port, mode="any"):
        return NetworkPortal(self, ip_address, port, mode)

    def lun(self, lun, storage_object=None, alias=None):
        return LUN(self, lun, storage_object, alias)


class LUN(CFSNode):
    """LUN(parent_tpg, lun=None, storage_object=None, alias=None).

    With a storage object it creates the LUN (lun=None: lowest free index)
    and a LUN already at that index raises; without one it looks it up."""

    _kind = "LUN"

    def __init__(self, parent_tpg, lun=None, storage_object=None, alias=None, _bound=False):
        super().__init__(parent_tpg._client)
        self.parent_tpg = parent_tpg
        self._lun = None if lun is None else to_int(lun, "LUN index")
        if _bound:
            return
        if self._lun is not None and not 0 <= self._lun <= 65535:
            raise RTSLibError("Invalid LUN index %d (0-65535)" % self._lun)
        if storage_object is None:
            if self._lun is None:
                raise RTSLibError("A LUN index or a storage object is needed")
            self._create_in_cfs_ine("lookup")
            return
        if isinstance(storage_object, StorageObject):
            so_path = storage_object.path
        elif isinstance(storage_object, str) and storage_object.startswith("/backstores/"):
            so_path = storage_object
        else:
            raise RTSLibError("storage_object must be a StorageObject, not %r"
                              % (storage_object,))
        self._so_path, self._alias = so_path, alias
        if self._lun is None:
            parent_tpg._check_self()
            res = self._lun_create()
            self._lun = res.get("lun")
        else:
            self._create_in_cfs_ine("create")

    def _lun_create(self):
        params = dict(self.parent_tpg._ident(), storage_object=self._so_path,
                      add_mapped_luns=False)
        if self._lun is not None:
            params["lun"] = self._lun
        try:
            return self._call("lun.create", **params) or {}
        except RPCNotFound as e:
            raise RTSLibNotInCFSError(str(e)) from None

    def _create(self):
        if not self.parent_tpg.exists:
            raise RTSLibNotInCFSError("No such TPG: %s" % self.parent_tpg.path)
        self._lun_create()

    def _ident(self):
        return dict(self.parent_tpg._ident(), lun=self._lun)

    def _find(self, cfg):
        tp = self.parent_tpg._find(cfg)
        for lun in (tp or {}).get("luns") or []:
            if lun.get("index") == self._lun:
                return lun
        return None

    def _delete(self):
        self._call("lun.delete", **self._ident())

    def _path(self):
        return "%s/luns/lun%s" % (self.parent_tpg.path, self._lun)

    def _key(self):
        return self.parent_tpg._key() + (self._lun,)

    @property
    def lun(self):
        return self._lun

    @property
    def alias(self):
        return self._entry().get("alias")

    @property
    def storage_object(self):
        return so_from_path(self._entry()["storage_object"], self._client)

    @property
    def alua_tg_pt_gp_name(self):
        return self._entry().get("alua_tg_pt_gp_name") or "default_tg_pt_gp"

    @alua_tg_pt_gp_name.setter
    def alua_tg_pt_gp_name(self, name):
        """The ALUA group (of the storage object) this LUN's target port is in."""
        self._call("lun.set_alua", alua_tg_pt_gp_name=str(name), **self._ident())

    # rtslib-fb's LUN secondary ALUA state (configfs alua_tg_pt_offline,
    # alua_tg_pt_status, alua_tg_pt_write_md); like rtslib-fb, not in dump()
    ALUA_STATUS_NONE = 0
    ALUA_STATUS_ALTERED_BY_EXPLICIT_STPG = 1
    ALUA_STATUS_ALTERED_BY_IMPLICIT_ALUA = 2

    def _alua(self, key):
        return self._call("lun.get_alua", **self._ident())[key]

    @property
    def alua_tg_pt_offline(self):
        """The LUN's ALUA secondary access state: True, its port is offline."""
        return bool(self._alua("alua_tg_pt_offline"))

    @alua_tg_pt_offline.setter
    def alua_tg_pt_offline(self, boolean):
        self._call("lun.set_alua", alua_tg_pt_offline=int(bool(boolean)), **self._ident())

    @property
    def alua_tg_pt_status(self):
        """The LUN's ALUA secondary access status: 0 none, 1 by STPG, 2 implicit."""
        return int(self._alua("alua_tg_pt_status"))

    @alua_tg_pt_status.setter
    def alua_tg_pt_status(self, integer):
        self._call("lun.set_alua", alua_tg_pt_status=int(integer), **self._ident())

    @property
    def alua_tg_pt_write_md(self):
        """The LUN's ALUA secondary write metadata flag (stored only)."""
        return bool(self._alua("alua_tg_pt_write_md"))

    @alua_tg_pt_write_md.setter
    def alua_tg_pt_write_md(self, boolean):
        self._call("lun.set_alua", alua_tg_pt_write_md=int(bool(boolean)), **self._ident())

    @property
    def mapped_luns(self):
        for acl in self.parent_tpg.node_acls:
            for m in acl.mapped_luns:
                if m._tpg_lun_index() == self._lun:
                    yield m


class NetworkPortal(CFSNode):
    """NetworkPortal(parent_tpg, ip_address, port=3260, mode='any')."""

    _kind = "NetworkPortal"

    def __init__(self, parent_tpg, ip_address, port=3260, mode="any"):
        super().__init__(parent_tpg._client)
        mode = _mode(mode)
        self.parent_tpg = parent_tpg
        ip = str(ip_address).strip()
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        self._ip = ip
        self._port = to_int(port, "port")
        if not 0 < self._port < 65536:
            raise RTSLibError("Invalid port %d" % self._port)
        if mode != BOUND:
            self._create_in_cfs_ine(mode)

    def _ident(self):
        return dict(self.parent_tpg._ident(), ip_address=self._ip, port=self._port)

    def _find(self, cfg):
        tp = self.parent_tpg._find(cfg)
        for p in (tp or {}).get("portals") or []:
            if p.get("port") == self._port and same_ip(p.get("ip_address"), self._ip):
                return p
        return None

    def _create(self):
        if not self.parent_tpg.exists:
            raise RTSLibNotInCFSError("No such TPG: %s" % self.parent_tpg.path)
        self._call("portal.create", **self._ident())

    def _delete(self):
        self._call("portal.delete", **self._ident())

    def _path(self):
        ip = "[%s]" % self._ip if ":" in self._ip else self._ip
        return "%s/portals/%s:%d" % (self.parent_tpg.path, ip, self._port)

    def _key(self):
        return self.parent_tpg._key() + (self._ip, self._port)

    @property
    def ip_address(self):
        return self._ip

    @property
    def port(self):
        return self._port

    @property
    def iser(self):
        return bool(self._entry().get("iser", False))

    @property
    def offload(self):
        return bool(self._entry().get("offload", False))


class NodeACL(CFSNode):
    """NodeACL(parent_tpg, node_wwn, mode='any'): an initiator allowed in."""

    _kind = "NodeACL"
    _attr_methods = ("acl.get_attributes", "acl.set_attributes", "acl")
    _auth_methods = ("acl.get_auth", "acl.set_auth")

    def __init__(self, parent_tpg, node_wwn, mode="any"):
        super().__init__(parent_tpg._client)
        mode = _mode(mode)
        self.parent_tpg = parent_tpg
        if not isinstance(node_wwn, str) or not node_wwn.strip():
            raise RTSLibError("A NodeACL needs the initiator's WWN")
        self._node_wwn = node_wwn.strip()
        if mode != BOUND:
            self._create_in_cfs_ine(mode)

    def _ident(self):
        return dict(self.parent_tpg._ident(), node_wwn=self._node_wwn)

    def _find(self, cfg):
        tp = self.parent_tpg._find(cfg)
        for a in (tp or {}).get("node_acls") or []:
            if a.get("node_wwn") == self._node_wwn:
                return a
        return None

    def _create(self):
        if not self.parent_tpg.exists:
            raise RTSLibNotInCFSError("No such TPG: %s" % self.parent_tpg.path)
        self._call("acl.create", add_mapped_luns=False, **self._ident())

    def _delete(self):
        self._call("acl.delete", **self._ident())

    def _path(self):
        return "%s/acls/%s" % (self.parent_tpg.path, self._node_wwn)

    def _key(self):
        return self.parent_tpg._key() + (self._node_wwn,)

    @property
    def node_wwn(self):
        return self._node_wwn

    def _get_tag(self):
        return self._entry().get("tag")

    def _set_tag(self, tag):
        self._call("acl.set_tag", acl_tag=tag, **self._ident())

    tag = property(_get_tag, _set_tag, doc="The ACL's tag (None: untagged)")

    allowed_networks = _allowed_networks("acl")

    @property
    def authenticate_target(self):
        return bool(self.chap_mutual_userid)

    @property
    def tcq_depth(self):
        """The TPG's default_cmdsn_depth (utargetd has no per-ACL depth yet)."""
        try:
            return self.parent_tpg.get_attribute("default_cmdsn_depth")
        except RTSLibError:
            return None

    @property
    def mapped_luns(self):
        for m in self._entry().get("mapped_luns") or []:
            yield MappedLUN(self, m["index"], _bound=True)

    def mapped_lun(self, mapped_lun, tpg_lun=None, write_protect=None):
        return MappedLUN(self, mapped_lun, tpg_lun, write_protect)

    # The ACL's parameter group is read-only: the negotiated session values.
    def _session_raw(self):
        tgt, tag = self.parent_tpg.parent_target.wwn, self.parent_tpg.tag
        for s in self._call("sessions") or []:
            if (s.get("initiator") == self._node_wwn and s.get("target") == tgt
                    and s.get("tpg", tag) == tag and s.get("type", "Normal") == "Normal"):
                return s
        return None

    def list_parameters(self, writable=None):
        if writable:
            return []
        s = self._session_raw()
        return sorted((s or {}).get("parameters") or {})

    def get_parameter(self, parameter):
        s = self._session_raw()
        params = (s or {}).get("parameters") or {}
        if parameter not in params:
            raise RTSLibError("Cannot find parameter: %s" % parameter)
        return str(params[parameter])

    def set_parameter(self, parameter, value):
        raise RTSLibError("A NodeACL's parameters are read-only (negotiated values)")

    @property
    def session(self):
        s = self._session_raw()
        return session_dict(s, self) if s else None

    @property
    def sessions(self):
        s = self.session
        return [s] if s else []


class MappedLUN(CFSNode):
    """MappedLUN(parent_nodeacl, mapped_lun, tpg_lun=None, write_protect=None).

    With tpg_lun (an index or a LUN) it creates the mapping and an existing
    one raises; without it looks the mapping up."""

    _kind = "MappedLUN"

    def __init__(self, parent_nodeacl, mapped_lun, tpg_lun=None, write_protect=None,
                 alias=None, _bound=False):
        super().__init__(parent_nodeacl._client)
        self.parent_nodeacl = parent_nodeacl
        self._mapped_lun = to_int(mapped_lun, "mapped LUN index")
        if _bound:
            return
        if not 0 <= self._mapped_lun <= 65535:
            raise RTSLibError("Invalid mapped LUN index %d (0-65535)" % self._mapped_lun)
        if tpg_lun is None:
            self._create_in_cfs_ine("lookup")
            return
        if isinstance(tpg_lun, LUN):
            tpg_lun = tpg_lun.lun
        self._new_tpg_lun = to_int(tpg_lun, "TPG LUN index")
        self._new_wp = bool(write_protect) if write_protect is not None else False
        self._create_in_cfs_ine("create")

    def _ident(self):
        return dict(self.parent_nodeacl._ident(), mapped_lun=self._mapped_lun)

    def _find(self, cfg):
        a = self.parent_nodeacl._find(cfg)
        for m in (a or {}).get("mapped_luns") or []:
            if m.get("index") == self._mapped_lun:
                return m
        return None

    def _create(self):
        if not self.parent_nodeacl.exists:
            raise RTSLibNotInCFSError("No such NodeACL: %s" % self.parent_nodeacl.path)
        self._call("mapped_lun.create", tpg_lun=self._new_tpg_lun,
                   write_protect=self._new_wp, **self._ident())

    def _delete(self):
        self._call("mapped_lun.delete", **self._ident())

    def _path(self):
        return "%s/mapped_lun%d" % (self.parent_nodeacl.path, self._mapped_lun)

    def _key(self):
        return self.parent_nodeacl._key() + (self._mapped_lun,)

    @property
    def mapped_lun(self):
        return self._mapped_lun

    @property
    def node_wwn(self):
        return self.parent_nodeacl.node_wwn

    @property
    def alias(self):
        return self._entry().get("alias")

    def _tpg_lun_index(self):
        return self._entry().get("tpg_lun")

    @property
    def tpg_lun(self):
        return LUN(self.parent_nodeacl.parent_tpg, self._tpg_lun_index(), _bound=True)

    def _get_write_protect(self):
        return bool(self._entry().get("write_protect"))

    def _set_write_protect(self, write_protect):
        self._call("mapped_lun.set_write_protect", write_protect=bool(write_protect),
                   **self._ident())

    write_protect = property(_get_write_protect, _set_write_protect)


def session_dict(s, node_acl=None):
    """An API session as rtslib-fb's NodeACL.session shows it (plus the API's
    own keys, kept as they are)."""
    out = dict(s)
    out.update({
        "alias": s.get("alias") or "",
        "id": s.get("sid"),
        "type": s.get("type", "Normal"),
        "state": s.get("state"),
        "parent_nodeacl": node_acl,
        "connections": [dict(c, cid=c.get("cid"), cstate=c.get("state"),
                             address=c.get("address"), transport="TCP")
                        for c in s.get("connections") or []],
    })
    return out
