"""Storage objects (/backstores): rtslib-fb's classes, and the older
Backstore + StorageObject classes of rtslib 2.x that the LIO wiki uses.

utargetd names a storage object by plugin and name (fileio, block, ramdisk,
pscsi). rtslib-fb's plugin names map as: fileio -> fileio, block/iblock ->
block, rd_mcp/ramdisk -> ramdisk, pscsi -> pscsi.
"""

import os
import stat

from .client import default_client
from .node import CFSNode
from .utils import RTSLibError, convert_human_to_bytes, check_mode

# rtslib plugin names (configfs "core/<plugin>_<index>") -> utargetd plugin.
PLUGIN_ALIASES = {"fileio": "fileio", "block": "block", "iblock": "block",
                  "ramdisk": "ramdisk", "rd_mcp": "ramdisk", "rd_dr": "ramdisk",
                  "memory": "ramdisk", "pscsi": "pscsi", "user": "user",
                  "user:rbd": "user"}


class StorageObject(CFSNode):
    """A storage object. Use a subclass; `StorageObject.all()` lists them."""

    _kind = "StorageObject"
    plugin = None           # utargetd's plugin name
    _attr_methods = ("backstore.get_attributes", "backstore.set_attributes", "backstore")

    def __init__(self, name, client=None):
        super().__init__(client)
        if not isinstance(name, str) or not name:
            raise RTSLibError("A storage object needs a name")
        self._name = name

    # CFSNode plumbing
    def _ident(self):
        return {"plugin": self.plugin, "name": self._name}

    def _find(self, cfg):
        for so in cfg.get("storage_objects") or []:
            if so.get("plugin") == self.plugin and so.get("name") == self._name:
                return so
        return None

    def _path(self):
        return "/backstores/%s/%s" % (self.plugin, self._name)

    def _delete(self):
        self._call("backstore.delete", **self._ident())

    def _create_params(self):
        raise NotImplementedError

    def _create(self):
        self._call("backstore.create", **dict(self._ident(), **self._create_params()))

    def _setup(self, creating, mode="any"):
        """Creation when the constructor got creation arguments, else lookup —
        rtslib-fb's rule (there is no mode argument for storage objects)."""
        self._create_in_cfs_ine("create" if creating else "lookup")

    # rtslib-fb API
    @property
    def name(self):
        return self._name

    @property
    def wwn(self):
        """T10 unit serial number."""
        return self._entry().get("wwn")

    @property
    def status(self):
        return "activated" if list(self.attached_luns) else "deactivated"

    @property
    def udev_path(self):
        return self._entry().get("dev") or ""

    @property
    def config_string(self):
        return self.udev_path

    @property
    def version(self):
        return "utarget"

    @property
    def is_configured(self):
        return self.exists

    @property
    def alua_tpgs(self):
        """The storage object's ALUA target port groups."""
        from .alua import ALUATargetPortGroup
        for g in self._entry().get("alua_tpgs") or []:
            yield ALUATargetPortGroup(self, g["name"])

    @property
    def attached_luns(self):
        """Every LUN (of any TPG) using this storage object."""
        from .target import FabricModule, LUN, TPG, Target
        cfg = self._config()
        me = self.path
        fm = FabricModule("iscsi", client=self._client)
        for t in cfg.get("targets") or []:
            for tp in t.get("tpgs") or []:
                for lun in tp.get("luns") or []:
                    if lun.get("storage_object") == me:
                        target = Target(fm, t["wwn"], mode="_bound")
                        tpg = TPG(target, tp["tag"], mode="_bound")
                        yield LUN(tpg, lun["index"], _bound=True)

    def delete(self, save=False):
        """Delete the object; refused while a LUN uses it (rtslib-fb deletes
        those LUNs first — so do we, the way rtslib does)."""
        for lun in list(self.attached_luns):
            lun.delete()
        super().delete()

    def resize(self, size=None, force=False):
        """Resize the object live (utarget only: rtslib-fb has no resize). `size` in bytes
        or as "10G"; None takes the medium's current size (a grown block device). Shrinking
        needs force=True. Initiators get CAPACITY DATA HAS CHANGED. Returns the new size."""
        params = dict(self._ident(), force=bool(force))
        if size is not None:
            params["size"] = convert_human_to_bytes(size)
        return self._call("backstore.resize", **params)["size"]

    def _key(self):
        return (self.plugin, self._name)

    @classmethod
    def all(cls, client=None):
        client = client or default_client()
        for so in (client.call("get_config") or {}).get("storage_objects") or []:
            yield so_from_entry(so, client)

    @staticmethod
    def so_from_path(path, client=None):
        """'/backstores/fileio/disk1' -> (class, name), as rtslib-fb."""
        parts = [p for p in str(path).split("/") if p]
        if len(parts) != 3 or parts[0] != "backstores":
            raise RTSLibError("Not a storage object path: %s" % path)
        plugin = PLUGIN_ALIASES.get(parts[1])
        if plugin is None:
            raise RTSLibError("Unknown backstore plugin: %s" % parts[1])
        return so_mapping[plugin], parts[2]

    def dump(self):
        return dict(self._entry())


class FileIOStorageObject(StorageObject):
    """fileio: a file (or block device through the page cache).

    rtslib-fb:  FileIOStorageObject(name, dev=None, size=None, wwn=None,
                                    write_back=False, aio=False, index=None)
    rtslib 2.x: FileIOStorageObject(backstore, name, dev=None, size=None,
                                    gen_wwn=True, buffered_mode=False)
    With dev it creates (the file too, sparse, when size is given and the file
    does not exist); without dev it looks the object up."""

    plugin = "fileio"

    def __init__(self, *args, **kwargs):
        a, backstore = _bind(args, kwargs, _fileio_new, _fileio_old)
        if backstore is not None:
            a.setdefault("wwn", a.pop("gen_wwn") if isinstance(a.get("gen_wwn"), str) else None)
            a["write_back"] = bool(a.pop("buffered_mode", False))
        super().__init__(a["name"], a.get("client") or (backstore._client if backstore else None))
        self._dev, self._size = a.get("dev"), a.get("size")
        self._wwn, self._wb = a.get("wwn"), a.get("write_back", False)
        self._setup(self._dev is not None)
        if backstore is not None:
            backstore._adopt(self)

    def _create_params(self):
        p = {"dev": self._dev, "write_back": bool(self._wb)}
        if self._size is not None:
            p["size"] = convert_human_to_bytes(self._size)
        if self._wwn:
            p["wwn"] = self._wwn
        return p

    @property
    def size(self):
        return int(self._entry().get("size") or 0)

    @property
    def write_back(self):
        return bool(self._entry().get("write_back"))

    @property
    def wb_enabled(self):
        return self.write_back

    @property
    def aio(self):
        return bool(self._entry().get("aio", False))


def _fileio_new(name, dev=None, size=None, wwn=None, write_back=False, aio=False,
                index=None, client=None):
    pass


def _fileio_old(backstore, name, dev=None, size=None, gen_wwn=True, buffered_mode=False,
                client=None):
    pass


def _bind(args, kwargs, new_sig, old_sig):
    """Bind a constructor call to rtslib-fb's signature, or to rtslib 2.x's
    when the first argument is a Backstore. Returns (arguments, backstore)."""
    import inspect
    first = args[0] if args else kwargs.get("backstore")
    sig = old_sig if isinstance(first, Backstore) else new_sig
    try:
        bound = inspect.signature(sig).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError("%s: %s" % (sig.__name__.lstrip("_"), e)) from None
    a = dict(bound.arguments)
    return a, a.pop("backstore", None)


class BlockStorageObject(StorageObject):
    """block (LIO's iblock): a whole block device with O_DIRECT.

    BlockStorageObject(name, dev=None, wwn=None, readonly=False,
                       write_back=False, index=None)"""

    plugin = "block"

    def __init__(self, name, dev=None, wwn=None, readonly=False, write_back=False,
                 index=None, client=None):
        super().__init__(name, client)
        self._dev, self._wwn, self._ro = dev, wwn, readonly
        self._setup(dev is not None)

    def _create_params(self):
        p = {"dev": self._dev, "readonly": bool(self._ro)}
        if self._wwn:
            p["wwn"] = self._wwn
        return p

    @property
    def size(self):
        return int(self._entry().get("size") or 0)

    @property
    def readonly(self):
        return bool(self._entry().get("readonly"))

    @property
    def write_back(self):
        return bool(self._entry().get("write_back"))

    def _stat(self):
        try:
            return os.stat(self.udev_path)
        except OSError:
            return None

    @property
    def major(self):
        st = self._stat()
        return os.major(st.st_rdev) if st else None

    @property
    def minor(self):
        st = self._stat()
        return os.minor(st.st_rdev) if st else None


class RDMCPStorageObject(StorageObject):
    """ramdisk (LIO's rd_mcp).

    rtslib-fb:  RDMCPStorageObject(name, size=None, wwn=None, nullio=False, index=None)
    rtslib 2.x: RDMCPStorageObject(backstore, name, size=None, gen_wwn=True)"""

    plugin = "ramdisk"

    def __init__(self, *args, **kwargs):
        a, backstore = _bind(args, kwargs, _rdmcp_new, _rdmcp_old)
        if backstore is not None:
            a["wwn"] = a.pop("gen_wwn") if isinstance(a.get("gen_wwn"), str) else None
        super().__init__(a["name"], a.get("client") or (backstore._client if backstore else None))
        self._size, self._wwn, self._nullio = a.get("size"), a.get("wwn"), a.get("nullio", False)
        self._setup(self._size is not None)
        if backstore is not None:
            backstore._adopt(self)

    def _create_params(self):
        p = {"size": convert_human_to_bytes(self._size)}
        if self._nullio:
            p["nullio"] = True
        if self._wwn:
            p["wwn"] = self._wwn
        return p

    @property
    def size(self):
        return int(self._entry().get("size") or 0)

    @property
    def nullio(self):
        return bool(self._entry().get("nullio", False))

    @property
    def page_size(self):
        return 4096


def _rdmcp_new(name, size=None, wwn=None, nullio=False, index=None, client=None):
    pass


def _rdmcp_old(backstore, name, size=None, gen_wwn=True, client=None):
    pass


class PSCSIStorageObject(StorageObject):
    """pscsi: SCSI pass-through to an sg / SCSI device.

    rtslib-fb:  PSCSIStorageObject(name, dev=None, index=None)
    rtslib 2.x: PSCSIStorageObject(backstore, name, dev=None)"""

    plugin = "pscsi"

    def __init__(self, *args, **kwargs):
        a, backstore = _bind(args, kwargs, _pscsi_new, _pscsi_old)
        super().__init__(a["name"], a.get("client") or (backstore._client if backstore else None))
        self._dev = a.get("dev")
        self._setup(self._dev is not None)
        if backstore is not None:
            backstore._adopt(self)

    def _create_params(self):
        return {"dev": self._dev}


def _pscsi_new(name, dev=None, index=None, client=None):
    pass


def _pscsi_old(backstore, name, dev=None, client=None):
    pass


class UserBackedStorageObject(StorageObject):
    """A tcmu-style user-backed object; utargetd serves the rbd handler itself
    (librbd), so config must be "rbd/POOL/IMAGE[;conf=PATH][;id=USER]
    [;osd_op_timeout=N][;ha=1]".

    rtslib-fb: UserBackedStorageObject(name, config=None, size=None, wwn=None,
    hw_max_sectors=None, control=None, index=None). size may be left out: the
    image's size is used. create_image=True (ours) creates a missing image."""

    plugin = "user"

    def __init__(self, name, config=None, size=None, wwn=None, hw_max_sectors=None,
                 control=None, index=None, create_image=False, client=None):
        super().__init__(name, client)
        if config is not None and not str(config).startswith("rbd/"):
            raise RTSLibError("Only the rbd handler is supported: config must be "
                              "rbd/POOL/IMAGE...")
        self._cfg, self._size, self._wwn = config, size, wwn
        self._hw_max_sectors, self._create_image = hw_max_sectors, create_image
        self._setup(config is not None)

    def _create_params(self):
        p = {"config": self._cfg}
        if self._size is not None:
            p["size"] = convert_human_to_bytes(self._size)
        if self._wwn:
            p["wwn"] = self._wwn
        if self._create_image:
            p["create_image"] = True
        if self._hw_max_sectors is not None:
            p["attributes"] = {"hw_max_sectors": int(self._hw_max_sectors)}
        return p

    @property
    def config(self):
        return self._entry().get("config")

    @property
    def config_string(self):
        return self.config

    @property
    def size(self):
        return int(self._entry().get("size") or 0)

    @property
    def hw_max_sectors(self):
        return int(self.get_attribute("hw_max_sectors"))


# ---------------------------------------------------------------- rtslib 2.x

class Backstore:
    """rtslib 2.x's HBA ("core/<plugin>_<index>"). utargetd has no HBAs: a
    Backstore is a client-side group of the storage objects made or looked up
    through it; `delete()` deletes those (rtslib deleted the HBA and all it
    held). `index` is kept for display only."""

    _plugin = None           # rtslib's name: "iblock", "fileio", "rd_mcp", "pscsi"
    _so_class = None

    def __init__(self, index, mode="any", client=None):
        check_mode(mode)
        self._index = int(index)
        self._client = client or default_client()
        self._objects = []

    def _adopt(self, so):
        if so not in self._objects:
            self._objects.append(so)

    @property
    def index(self):
        return self._index

    @property
    def plugin(self):
        return self._plugin

    @property
    def name(self):
        return "%s_%d" % (self._plugin, self._index)

    @property
    def exists(self):
        return True

    @property
    def storage_objects(self):
        return iter([so for so in self._objects if so.exists])

    def delete(self):
        for so in list(self._objects):
            if so.exists:
                so.delete()
        self._objects = []

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.name)


class IBlockStorageObject(BlockStorageObject):
    """rtslib 2.x: IBlockStorageObject(backstore, name, dev=None, gen_wwn=True).

    With a regular file as dev (no block device at hand) the object is made
    with the fileio plugin — what targetcli does when handed a file — because
    utargetd's block plugin, like LIO's iblock, takes block devices only; the
    returned object is then a FileIOStorageObject."""

    def __new__(cls, backstore, name, dev=None, gen_wwn=True, client=None):
        if dev is not None and _is_regular_file(dev):
            so = FileIOStorageObject(name, dev=dev, client=client or backstore._client,
                                     wwn=gen_wwn if isinstance(gen_wwn, str) else None)
            backstore._adopt(so)
            return so
        return super().__new__(cls)

    def __init__(self, backstore, name, dev=None, gen_wwn=True, client=None):
        BlockStorageObject.__init__(self, name, dev=dev, client=client or backstore._client,
                                    wwn=gen_wwn if isinstance(gen_wwn, str) else None)
        backstore._adopt(self)


def _is_regular_file(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class IBlockBackstore(Backstore):
    _plugin = "iblock"

    def storage_object(self, name, dev=None, gen_wwn=True):
        return IBlockStorageObject(self, name, dev=dev, gen_wwn=gen_wwn)


class FileIOBackstore(Backstore):
    _plugin = "fileio"

    def storage_object(self, name, dev=None, size=None, gen_wwn=True, buffered_mode=False):
        return FileIOStorageObject(self, name, dev=dev, size=size, gen_wwn=gen_wwn,
                                   buffered_mode=buffered_mode)


class RDMCPBackstore(Backstore):
    _plugin = "rd_mcp"

    def storage_object(self, name, size=None, gen_wwn=True):
        return RDMCPStorageObject(self, name, size, gen_wwn=gen_wwn)


RDDRBackstore = RDMCPBackstore


class PSCSIBackstore(Backstore):
    _plugin = "pscsi"

    def storage_object(self, name, dev=None):
        return PSCSIStorageObject(self, name, dev)


so_mapping = {"fileio": FileIOStorageObject, "block": BlockStorageObject,
              "ramdisk": RDMCPStorageObject, "pscsi": PSCSIStorageObject,
              "user": UserBackedStorageObject}


def so_from_entry(entry, client):
    """A lookup-mode object for a get_config storage_objects entry."""
    cls = so_mapping.get(entry.get("plugin"))
    if cls is None:
        raise RTSLibError("Unknown storage object plugin %r" % entry.get("plugin"))
    return cls(entry["name"], client=client)


def so_from_path(path, client=None):
    cls, name = StorageObject.so_from_path(path)
    return cls(name, client=client)
