#!/usr/bin/python
# The "Scripting with RTSlib" example of the LIO wiki
# (http://linux-iscsi.org/wiki/ISCSI#Scripting_with_RTSlib), as written for
# rtslib 2.x and LIO. test_rtslib.py runs it against utargetd after changing
# only: the import line (-> from utarget.rtslib import *), /dev/sdb (-> an
# image file) and the portal address (-> 127.0.0.1 and a free port: tests
# never listen on 3260). Nothing else in this file may need changing.
#
# The wiki page itself could not be fetched here; this text was put together
# from two copies that quote it (a gist and a forensics script, both
# "adapted from" the wiki) and checked against rtslib 2.x's signatures.

from rtslib import *

# Setup an IBLOCK backstore
backstore = IBlockBackstore(3, mode='create')
try:
    so = IBlockStorageObject(backstore, "sdb", "/dev/sdb", gen_wwn=True)
except:
    backstore.delete()
    raise

# Create an iSCSI target endpoint using an iSCSI IQN
fabric = FabricModule('iscsi')
target = Target(fabric, "iqn.2003-01.org.linux-iscsi.x.x8664:sn.d3d8b0500fde")
tpg = TPG(target, 1)

# Setup a network portal
portal = NetworkPortal(tpg, "10.10.0.48", "3260")

# Export LUN 0 via the 'so' StorageObject class
lun0 = tpg.lun(0, so, "my_lun")

# Setup a NodeACL for the initiator and map TPG LUN 0 to its LUN 0
node_acl = tpg.node_acl("iqn.1994-05.com.redhat:4321576890")
mapped_lun = node_acl.mapped_lun(0, 0, False)

# Open the TPG to initiators without CHAP, then enable it
tpg.set_attribute("authentication", "0")
tpg.enable = True
