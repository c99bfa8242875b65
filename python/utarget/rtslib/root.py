"""RTSRoot: the whole configuration, save / restore, sessions."""

import json
import os
import tempfile

from .client import Client, default_client, set_default_socket
from .node import CFSNode
from .target import BOUND, FabricModule, NodeACL, TPG, Target, session_dict
from .tcm import so_from_entry
from .utils import RTSLibError


class RTSRoot(CFSNode):
    """RTSRoot(socket_path=None): the root of utargetd's configuration.

    socket_path picks the daemon for this process: every object created after
    (and not given another client) uses it. Without it, $UTARGET_SOCKET or
    utargetd's default socket is used."""

    _kind = "RTSRoot"

    def __init__(self, socket_path=None):
        if socket_path is not None and os.fspath(socket_path) != default_client().path:
            client = set_default_socket(os.fspath(socket_path))
        else:
            client = default_client()
        super().__init__(client)

    @classmethod
    def with_client(cls, client):
        self = cls.__new__(cls)
        CFSNode.__init__(self, client)
        return self

    def _find(self, cfg):
        return cfg

    def _path(self):
        return "/"

    def _key(self):
        return (self._client.path,)

    @property
    def exists(self):
        return True

    @property
    def socket_path(self):
        return self._client.path

    @property
    def version(self):
        return (self._call("version") or {}).get("version")

    def invalidate_caches(self):
        """Nothing is cached (kept for rtslib compatibility)."""

    # ------------------------------------------------------------ listings
    @property
    def fabric_modules(self):
        yield FabricModule("iscsi", self._client)

    @property
    def backstores(self):
        """rtslib 2.x's HBAs do not exist in utargetd: always empty."""
        return iter(())

    @property
    def storage_objects(self):
        for so in self._config().get("storage_objects") or []:
            yield so_from_entry(so, self._client)

    @property
    def targets(self):
        fm = FabricModule("iscsi", self._client)
        for t in self._config().get("targets") or []:
            yield Target(fm, t["wwn"], mode=BOUND)

    @property
    def tpgs(self):
        for t in self.targets:
            for tpg in t.tpgs:
                yield tpg

    @property
    def luns(self):
        for tpg in self.tpgs:
            for lun in tpg.luns:
                yield lun

    @property
    def network_portals(self):
        for tpg in self.tpgs:
            for p in tpg.network_portals:
                yield p

    @property
    def node_acls(self):
        for tpg in self.tpgs:
            for a in tpg.node_acls:
                yield a

    @property
    def mapped_luns(self):
        for a in self.node_acls:
            for m in a.mapped_luns:
                yield m

    @property
    def alua_tpgs(self):
        for so in self.storage_objects:
            yield from so.alua_tpgs

    @property
    def sessions(self):
        """Every open session, as rtslib-fb's session dicts (id, alias, type,
        state, parent_nodeacl, connections) with the API's keys besides."""
        fm = FabricModule("iscsi", self._client)
        for s in self._call("sessions") or []:
            acl = None
            if s.get("target") and s.get("tpg") is not None and s.get("initiator"):
                tpg = TPG(Target(fm, s["target"], mode=BOUND), s["tpg"], mode=BOUND)
                cand = NodeACL(tpg, s["initiator"], mode=BOUND)
                if cand.exists:
                    acl = cand
            yield session_dict(s, acl)

    # ------------------------------------------------------------ whole config
    def dump(self):
        """The live configuration as saveconfig.json (a dict)."""
        return self._config()

    def clear_existing(self, target=None, storage_object=None, confirm=False):
        """Delete everything (or only the named target / storage object)."""
        if not confirm:
            raise RTSLibError("As a precaution, confirm=True needs to be set")
        if target is None and storage_object is None:
            self._call("clear_config", confirm=True)
            return
        if target is not None:
            for t in self.targets:
                if t.wwn == target:
                    t.delete()
        if storage_object is not None:
            for so in self.storage_objects:
                if so.name == storage_object:
                    so.delete()

    @staticmethod
    def _select(config, target=None, storage_object=None):
        if target is None and storage_object is None:
            return config
        out = {"fabric_modules": [], "storage_objects": [], "targets": []}
        if target is not None:
            out["targets"] = [t for t in config.get("targets") or [] if t.get("wwn") == target]
            if not out["targets"]:
                raise RTSLibError("Target %s is not in the configuration" % target)
        if storage_object is not None:
            out["storage_objects"] = [so for so in config.get("storage_objects") or []
                                      if so.get("name") == storage_object]
            if not out["storage_objects"]:
                raise RTSLibError("Storage object %s is not in the configuration"
                                  % storage_object)
        return out

    def restore(self, config, target=None, storage_object=None, clear_existing=False,
                abort_on_error=False):
        """Apply a saveconfig dict; returns the list of recoverable errors
        (each ends with ', skipped'). target / storage_object restore only
        that object (its storage objects must already exist)."""
        if not isinstance(config, dict):
            raise RTSLibError("restore() needs the configuration as a dict")
        selective = target is not None or storage_object is not None
        config = self._select(config, target, storage_object)
        if selective and clear_existing:
            self.clear_existing(target, storage_object, confirm=True)
            clear_existing = False
        fd, path = tempfile.mkstemp(prefix="utarget-restore-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(config, f)
            # The daemon may run as root with another umask: it reads the
            # file; the file stays ours (0600 from mkstemp).
            res = self._call("restore_config", file=path, clear_existing=bool(clear_existing),
                             abort_on_error=bool(abort_on_error)) or {}
        finally:
            os.unlink(path)
        return list(res.get("errors") or [])

    def save_to_file(self, save_file=None, so_path=None):
        """Ask the daemon to write saveconfig.json (default: its -c file).
        Returns the daemon's answer ({file, backup_dir, backups_kept})."""
        params = {}
        if save_file:
            params["file"] = os.path.abspath(os.fspath(save_file))
        return self._call("save_config", **params)

    def restore_from_file(self, restore_file=None, clear_existing=True, target=None,
                          storage_object=None, abort_on_error=False):
        """Restore a saveconfig.json (default: the daemon's -c file)."""
        if target is not None or storage_object is not None:
            if not restore_file:
                raise RTSLibError("A selective restore needs the file name")
            with open(restore_file) as f:
                try:
                    config = json.load(f)
                except ValueError as e:
                    raise RTSLibError("%s is not JSON: %s" % (restore_file, e)) from None
            return self.restore(config, target, storage_object, clear_existing,
                                abort_on_error)
        params = {"clear_existing": bool(clear_existing),
                  "abort_on_error": bool(abort_on_error)}
        if restore_file:
            params["file"] = os.path.abspath(os.fspath(restore_file))
        res = self._call("restore_config", **params) or {}
        return list(res.get("errors") or [])


__all__ = ["RTSRoot", "Client"]
