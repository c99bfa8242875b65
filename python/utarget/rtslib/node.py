"""CFSNode: what every rtslib object shares (attributes, parameters, auth,
existence, delete, dump), implemented over utargetd's control API.

rtslib objects wrap configfs directories and cache nothing; these wrap
objects of the daemon's live configuration and cache nothing either: every
property read asks the daemon (get_config or a get_* method), every write is
one request the daemon validates and applies at once.
"""

import ipaddress

from .client import RPCError, RPCExists, RPCNotFound, default_client
from .utils import RTSLibError, RTSLibNotInCFSError, check_mode


def attr_value(value):
    """An attribute value as rtslib shows it: the configfs text ("1", "512")."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    return str(value)


def attr_to_api(value):
    """rtslib callers pass "0", 0 or False alike; attribute tables are numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        try:
            return int(v, 0) if v[:2].lower() in ("0x", "0o", "0b") else int(v)
        except ValueError:
            return value
    return value


def param_to_api(value):
    """iSCSI keys are text: True -> "Yes", 8192 -> "8192"."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def same_ip(a, b):
    """'::' == '[::0]', '0.0.0.0' == '0.0.0.0'; otherwise plain comparison."""
    def norm(x):
        x = str(x).strip()
        if x.startswith("[") and x.endswith("]"):
            x = x[1:-1]
        try:
            return str(ipaddress.ip_address(x))
        except ValueError:
            return x
    return norm(a) == norm(b)


class CFSNode:
    """Base of every object. Subclasses define:
    _kind        word used in messages ("TPG", "NodeACL" ...)
    _find(cfg)   its dict in get_config's answer, or None
    _ident()     the params naming it in the control API
    _create()    the request that creates it
    _delete()    the request that deletes it
    and optionally the method prefixes for attributes / parameters / auth."""

    _kind = "object"
    _attr_methods = None    # e.g. ("tpg.get_attributes", "tpg.set_attributes", "tpg")
    _param_methods = None   # e.g. ("tpg.get_parameters", "tpg.set_parameters", "tpg_parameter")
    _auth_methods = None    # e.g. ("tpg.get_auth", "tpg.set_auth")

    def __init__(self, client=None):
        self._client = client or default_client()

    # ---------------------------------------------------------------- plumbing
    def _call(self, method, **params):
        return self._client.call(method, params)

    def _config(self):
        return self._client.call("get_config") or {}

    def _find(self, cfg):
        raise NotImplementedError

    def _ident(self):
        raise NotImplementedError

    def _entry(self):
        """Our dict in the live configuration; RTSLibNotInCFSError when gone."""
        e = self._find(self._config())
        if e is None:
            raise RTSLibNotInCFSError("No such %s: %s" % (self._kind, self.path))
        return e

    def _check_self(self):
        self._entry()

    def _create_in_cfs_ine(self, mode):
        """Create when mode allows and the object is absent; rtslib's rules:
        'lookup' needs it to exist, 'create' needs it absent, 'any' either."""
        check_mode(mode)
        exists = self.exists
        if exists and mode == "create":
            raise RTSLibError("This %s already exists: %s" % (self._kind, self.path))
        if not exists and mode == "lookup":
            raise RTSLibNotInCFSError("No such %s: %s" % (self._kind, self.path))
        if not exists:
            try:
                self._create()
            except RPCExists as e:
                # Created by someone else between our look and our request.
                if mode == "create":
                    raise RTSLibError("This %s already exists: %s (%s)"
                                      % (self._kind, self.path, e)) from None
            except RPCNotFound as e:
                raise RTSLibNotInCFSError(str(e)) from None

    def _create(self):
        raise NotImplementedError

    def _delete(self):
        raise NotImplementedError

    # ------------------------------------------------------------ common API
    @property
    def exists(self):
        return self._find(self._config()) is not None

    @property
    def path(self):
        """The object's place in the utargetcli tree (rtslib: its configfs path)."""
        return self._path()

    def _path(self):
        raise NotImplementedError

    def delete(self):
        """Delete the object (and, as rtslib does, what hangs below it)."""
        try:
            self._delete()
        except RPCNotFound:
            raise RTSLibNotInCFSError("No such %s: %s" % (self._kind, self.path)) from None

    def dump(self):
        """The object as in saveconfig.json (a copy of the daemon's answer)."""
        return dict(self._entry())

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.path)

    def __str__(self):
        return self.path

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__,) + self._key())

    def _key(self):
        return (self.path,)

    def __bool__(self):
        return True

    # ------------------------------------------------------------ attributes
    def _need(self, which, what):
        if which is None:
            raise RTSLibError("%s has no %s" % (self._kind, what))
        return which

    def list_attributes(self, writable=None):
        get, _set, kind = self._need(self._attr_methods, "attributes")
        names = sorted(self._call(get, **self._ident()) or {})
        return self._filter_writable(names, kind, writable)

    def _filter_writable(self, names, kind, writable):
        if writable is None or kind is None:
            return names
        try:
            desc = {d["name"]: d for d in self._call("describe", kind=kind) or []}
        except RPCError:
            return names
        return [n for n in names if bool(desc.get(n, {}).get("ro")) != bool(writable)]

    def get_attribute(self, attribute):
        get, _set, _kind = self._need(self._attr_methods, "attributes")
        attrs = self._call(get, **self._ident()) or {}
        if attribute not in attrs:
            raise RTSLibError("Cannot find attribute: %s" % attribute)
        return attr_value(attrs[attribute])

    def set_attribute(self, attribute, value):
        _get, set_, _kind = self._need(self._attr_methods, "attributes")
        self._call(set_, attributes={attribute: attr_to_api(value)}, **self._ident())

    def set_attributes(self, attributes):
        """Several at once; all or none applied (the daemon validates them whole)."""
        _get, set_, _kind = self._need(self._attr_methods, "attributes")
        self._call(set_, attributes={k: attr_to_api(v) for k, v in attributes.items()},
                   **self._ident())

    # ------------------------------------------------------------ parameters
    def list_parameters(self, writable=None):
        get, _set, kind = self._need(self._param_methods, "parameters")
        names = sorted(self._call(get, **self._ident()) or {})
        return self._filter_writable(names, kind, writable)

    def get_parameter(self, parameter):
        get, _set, _kind = self._need(self._param_methods, "parameters")
        params = self._call(get, **self._ident()) or {}
        if parameter not in params:
            raise RTSLibError("Cannot find parameter: %s" % parameter)
        return str(params[parameter])

    def set_parameter(self, parameter, value):
        _get, set_, _kind = self._need(self._param_methods, "parameters")
        self._call(set_, parameters={parameter: param_to_api(value)}, **self._ident())

    # ------------------------------------------------------------ auth
    _AUTH_KEYS = ("userid", "password", "mutual_userid", "mutual_password")
    # LIO's configfs names of the mutual pair (rtslib-fb's get_auth_attr / set_auth_attr
    # take them: auth/userid_mutual, auth/password_mutual)
    _AUTH_ALIASES = {"userid_mutual": "mutual_userid", "password_mutual": "mutual_password"}

    def list_auth_attrs(self, writable=None):
        self._need(self._auth_methods, "auth attributes")
        return list(self._AUTH_KEYS)

    def get_auth_attr(self, auth_attr):
        get, _set = self._need(self._auth_methods, "auth attributes")
        auth = self._call(get, **self._ident()) or {}
        auth_attr = self._AUTH_ALIASES.get(auth_attr, auth_attr)
        if auth_attr not in self._AUTH_KEYS:
            raise RTSLibError("Cannot find auth attribute: %s" % auth_attr)
        v = auth.get(auth_attr)
        return "" if v is None else str(v)

    def set_auth_attr(self, auth_attr, value):
        _get, set_ = self._need(self._auth_methods, "auth attributes")
        auth_attr = self._AUTH_ALIASES.get(auth_attr, auth_attr)
        if auth_attr not in self._AUTH_KEYS:
            raise RTSLibError("Cannot find auth attribute: %s" % auth_attr)
        self._call(set_, **dict(self._ident(), **{auth_attr: "" if value is None else str(value)}))

    def _chap(key):
        def get(self):
            return self.get_auth_attr(key)

        def set_(self, value):
            self.set_auth_attr(key, value)
        return property(get, set_, doc="CHAP %s (auth group)" % key)

    chap_userid = _chap("userid")
    chap_password = _chap("password")
    chap_mutual_userid = _chap("mutual_userid")
    chap_mutual_password = _chap("mutual_password")
    del _chap
