"""ALUA target port groups: rtslib-fb's ALUATargetPortGroup over utargetd's alua.* methods.

    so = FileIOStorageObject("disk1")
    gp = ALUATargetPortGroup(so, "passive", tag=2)     # create; without tag: look it up
    gp.alua_access_state = 1                           # live: initiators are told
    lun.alua_tg_pt_gp_name = "passive"                 # the LUN's target port joins it
"""

from .node import CFSNode
from .utils import RTSLibError

# rtslib-fb's attribute names, read and written as integers
ATTRIBUTES = (
    "alua_access_state", "alua_access_status", "alua_access_type",
    "alua_support_active_nonoptimized", "alua_support_active_optimized",
    "alua_support_lba_dependent", "alua_support_offline", "alua_support_standby",
    "alua_support_transitioning", "alua_support_unavailable", "alua_write_metadata",
    "implicit_trans_secs", "nonop_delay_msecs", "preferred", "tg_pt_gp_id",
    "trans_delay_msecs",
)


class ALUATargetPortGroup(CFSNode):
    """ALUATargetPortGroup(storage_object, name, tag=None): with a tag it is created,
    without one looked up (rtslib-fb's rule)."""

    _kind = "ALUATargetPortGroup"

    def __init__(self, storage_object, name, tag=None):
        super().__init__(storage_object._client)
        if not isinstance(name, str) or not name:
            raise RTSLibError("An ALUA group needs a name")
        self._so, self._name = storage_object, name
        self._tag = tag
        self._create_in_cfs_ine("lookup" if tag is None else "create")

    def _ident(self):
        return dict(self._so._ident(), group=self._name)

    def _find(self, cfg):
        so = self._so._find(cfg)
        for g in (so or {}).get("alua_tpgs") or []:
            if g.get("name") == self._name:
                return g
        return None

    def _create(self):
        self._call("alua.create", tag=int(self._tag), **self._ident())

    def _delete(self):
        self._call("alua.delete", **self._ident())

    def _path(self):
        return "%s/alua/%s" % (self._so.path, self._name)

    def _key(self):
        return (self._so._key(), self._name)

    @property
    def name(self):
        return self._name

    @property
    def storage_object(self):
        return self._so

    @property
    def members(self):
        """The LUNs in the group, as "TARGET/tpgt_N/lun_M" (rtslib-fb's form)."""
        return list(self._call("alua.get_attributes", **self._ident())["members"])

    def dump(self):
        return dict(self._entry())

    @classmethod
    def setup(cls, storage_obj, alua_tpg, err_func):
        """rtslib-fb's restore hook: make (or find) the group and set what it saved."""
        name = alua_tpg.get("name")
        try:
            if name == "default_tg_pt_gp":
                gp = cls(storage_obj, name)
            else:
                gp = cls(storage_obj, name, alua_tpg["tg_pt_gp_id"])
            gp._call("alua.set_attributes", attributes={
                k: v for k, v in alua_tpg.items() if k in ATTRIBUTES}, **gp._ident())
        except (RTSLibError, KeyError) as e:
            err_func("Could not create ALUATargetPortGroup %s: %s" % (name, e))


def _attr(name):
    def get(self):
        return self._call("alua.get_attributes", **self._ident())[name]

    def put(self, value):
        self._call("alua.set_attributes", attributes={name: int(value)}, **self._ident())

    return property(get, put, doc="LIO's %s attribute of the group." % name)


for _n in ATTRIBUTES:
    setattr(ALUATargetPortGroup, _n, _attr(_n))
del _n
