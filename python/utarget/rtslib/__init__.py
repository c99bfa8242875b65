"""utarget.rtslib: rtslib-fb's API over utargetd's control socket.

    from utarget.rtslib import RTSRoot, FileIOStorageObject, FabricModule, Target, TPG
    root = RTSRoot()                      # or RTSRoot("/path/to/utargetd.sock")
    so = FileIOStorageObject("disk1", "/srv/disk1.img", size="1G")
    tpg = TPG(Target(FabricModule("iscsi"), "iqn.2003-01.org.example:t1"), 1)
    ...

Stdlib only, Python >= 3.9. See docs/scripting.md.
"""

from .alua import ALUATargetPortGroup
from .client import Client, RPCError, default_client, default_socket_path, set_default_socket
from .node import CFSNode
from .root import RTSRoot
from .target import (LUN, TPG, FabricModule, MappedLUN, NetworkPortal, NodeACL, Target)
from .tcm import (Backstore, BlockStorageObject, FileIOBackstore, FileIOStorageObject,
                  IBlockBackstore, IBlockStorageObject, PSCSIBackstore, PSCSIStorageObject,
                  RDDRBackstore, RDMCPBackstore, RDMCPStorageObject, StorageObject,
                  UserBackedStorageObject)
from .utils import (RTSLibALUANotSupported, RTSLibError, RTSLibNotInCFSError,
                    convert_human_to_bytes)

from utarget import __version__

__all__ = [
    "RTSRoot", "ALUATargetPortGroup", "FabricModule", "Target", "TPG", "LUN", "NetworkPortal", "NodeACL",
    "MappedLUN", "StorageObject", "UserBackedStorageObject", "FileIOStorageObject", "BlockStorageObject",
    "RDMCPStorageObject", "PSCSIStorageObject", "Backstore", "IBlockBackstore",
    "IBlockStorageObject", "FileIOBackstore", "RDMCPBackstore", "RDDRBackstore",
    "PSCSIBackstore", "RTSLibError", "RTSLibNotInCFSError", "RTSLibALUANotSupported",
    "Client", "RPCError", "CFSNode", "default_client", "default_socket_path",
    "set_default_socket", "convert_human_to_bytes",
]
