#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<h>/):
real PDUs, key texts and JSON documents, in each harness's input format
(see the comment at the top of tests/fuzz/fuzz_<h>.c). Run it again after
changing a format; the files are committed."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = "iqn.2003-01.org.utarget.fuzz:t1"


def out(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def text(*kv):
    return b"".join(k.encode() + b"\0" for k in kv)


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def bhs(op, flags=0, data=b"", lun=0, itt=1, f20=0, f24=0, f28=0, f32=0,
        rest=b"", ahs=b""):
    h = bytearray(48)
    h[0] = op
    h[1] = flags
    h[4] = len(ahs) // 4
    h[5:8] = len(data).to_bytes(3, "big")
    h[8:16] = struct.pack(">Q", lun)
    struct.pack_into(">IIIII", h, 16, itt, f20, f24, f28, f32)
    h[36:36 + len(rest)] = rest
    return bytes(h) + ahs + pad(data)


def login(csg, nsg, t, kv, itt=0x1000, cmdsn=1, isid=b"\x40\0\0\0\0\1",
          tsih=0, cont=False):
    data = text(*kv)
    h = bytearray(bhs(0x43, (0x80 if t else 0) | (0x40 if cont else 0) |
                      (csg << 2) | nsg, data, itt=itt, f24=cmdsn))
    h[8:14] = isid
    h[14:16] = struct.pack(">H", tsih)
    return bytes(h)


def scsi(cdb, edtl, itt, cmdsn, r=False, w=False, final=True, data=b"",
         lun=0, imm=False):
    flags = (0x80 if final else 0) | (0x40 if r else 0) | (0x20 if w else 0) | 1
    h = bytearray(bhs(0x01 | (0x40 if imm else 0), flags, data,
                      lun=lun << 48, itt=itt, f20=edtl, f24=cmdsn, f28=1))
    h[32:32 + len(cdb)] = cdb
    return bytes(h[:48]) + pad(data)


def data_out(itt, ttt, datasn, off, data, final=True, lun=0):
    return bhs(0x05, 0x80 if final else 0, data, lun=lun << 48, itt=itt,
               f20=ttt, f28=1, f32=0, rest=struct.pack(">II", datasn, off))


def cdb_rw(op, lba, nblk):
    if op in (0x28, 0x2a, 0x2f, 0x35):
        return struct.pack(">BBIBHB", op, 0, lba, 0, nblk, 0)
    return struct.pack(">BBQIBB", op, 0, lba, nblk, 0, 0)


INQ = bytes([0x12, 0, 0, 0, 96, 0])
TUR = bytes(6)
RC10 = bytes([0x25]) + bytes(9)
REPORT_LUNS = bytes([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])

# ---- text: flags, TPG params, 0xff, the initiator's keys ------------------
neg = text("HeaderDigest=CRC32C,None", "DataDigest=None",
           "MaxRecvDataSegmentLength=262144", "MaxBurstLength=1048576",
           "FirstBurstLength=262144", "InitialR2T=No", "ImmediateData=Yes",
           "MaxOutstandingR2T=1", "MaxConnections=1", "DataPDUInOrder=Yes",
           "DataSequenceInOrder=Yes", "ErrorRecoveryLevel=0",
           "DefaultTime2Wait=2", "DefaultTime2Retain=0", "IFMarker=No",
           "OFMarker=No", "X-com.example.foo=bar", "TaskReporting=RFC3720",
           "iSCSIProtocolLevel=1")
out("text", "linux_login", b"\x01\xff" + neg)
out("text", "discovery", b"\x03\xff" + text("HeaderDigest=None",
                                            "MaxRecvDataSegmentLength=0x2000"))
out("text", "ffp_text", b"\x05\xff" + text("MaxRecvDataSegmentLength=131072",
                                           "HeaderDigest=CRC32C"))
out("text", "tpg_params", b"\x01" + text("MaxBurstLength=4096",
                                         "FirstBurstLength=65536",
                                         "HeaderDigest=CRC32C",
                                         "MaxXmitDataSegmentLength=512") +
    b"\xff" + text("FirstBurstLength=262144", "MaxBurstLength=8192",
                   "IFMarkInt=1~65535", "HeaderDigest=None,CRC32C"))
out("text", "dup_key", b"\x01\xff" + text("MaxBurstLength=512",
                                          "MaxBurstLength=512"))

# ---- pdu: mode byte + stream -----------------------------------------------
normal = ["InitiatorName=iqn.1994-05.com.example:fuzz",
          "TargetName=" + TARGET, "SessionType=Normal"]
sec = login(0, 1, True, normal + ["AuthMethod=None"])
op = login(1, 3, True, ["HeaderDigest=None", "DataDigest=None",
                        "MaxRecvDataSegmentLength=65536",
                        "ImmediateData=Yes", "InitialR2T=No"])
out("pdu", "login_two_stages", b"\x00" + sec + op)
out("pdu", "login_discovery_sendtargets", b"\x00" + login(
    1, 3, True, ["InitiatorName=iqn.1994-05.com.example:fuzz",
                 "SessionType=Discovery"]) +
    bhs(0x04 | 0x40, 0x80, text("SendTargets=All"), itt=2, f20=0xffffffff,
        f24=1))
out("pdu", "login_continue", b"\x00" + login(0, 1, False, normal[:1],
                                            cont=True) +
    login(0, 1, True, normal[1:] + ["AuthMethod=CHAP"]))
out("pdu", "login_chap", b"\x00" + login(0, 0, False, normal +
                                        ["AuthMethod=CHAP"]) +
    login(0, 0, False, ["CHAP_A=5"]) +
    login(0, 1, True, ["CHAP_N=user", "CHAP_R=0x" + "00" * 16]))
# The first command of a new nexus gets the POWER ON unit attention: a TEST
# UNIT READY (CmdSN 1) takes it, the seeds' commands count from CmdSN 2.
UA = scsi(TUR, 0, 0xff, 1)
ffp = [
    ("inquiry_tur_rc", scsi(INQ, 96, 1, 2, r=True) + scsi(TUR, 0, 2, 3) +
     scsi(RC10, 8, 3, 4, r=True) + scsi(REPORT_LUNS, 256, 4, 5, r=True)),
    ("write_immediate", scsi(cdb_rw(0x2a, 0, 1), 512, 1, 2, w=True,
                             data=b"\xa5" * 512) +
     scsi(cdb_rw(0x28, 0, 1), 512, 2, 3, r=True)),
    ("write_unsolicited", scsi(cdb_rw(0x2a, 8, 4), 2048, 1, 2, w=True,
                               final=False, data=b"\1" * 512) +
     data_out(1, 0xffffffff, 0, 512, b"\2" * 1024, final=False) +
     data_out(1, 0xffffffff, 1, 1536, b"\3" * 512)),
    ("write16_read16", scsi(cdb_rw(0x8a, 100, 2), 1024, 1, 2, w=True,
                            data=b"\x5a" * 1024) +
     scsi(cdb_rw(0x88, 100, 2), 1024, 2, 3, r=True)),
    ("nop_text_logout", bhs(0x00 | 0x40, 0x80, b"ping", itt=5,
                            f20=0xffffffff, f24=2) +
     bhs(0x04, 0x80, text("MaxRecvDataSegmentLength=16384"), itt=6,
         f20=0xffffffff, f24=2) +
     bhs(0x06 | 0x40, 0x80, itt=7, f24=3)),
    ("tmf_abort", scsi(cdb_rw(0x2a, 0, 8), 4096, 1, 2, w=True, final=False) +
     bhs(0x02 | 0x40, 0x80 | 1, itt=9, f20=1, f24=3) +
     bhs(0x02 | 0x40, 0x80 | 5, itt=10, f20=0xffffffff, f24=3)),
    ("bad_opcode_snack", bhs(0x1c, 0x80, itt=3, f24=2) +
     bhs(0x10, 0x80, itt=4, f24=2) + bhs(0x43, 0x87, itt=5, f24=2)),
    ("ahs_cdb32", scsi(INQ, 96, 1, 2, r=True)[:4] + b"\x05" +
     scsi(INQ, 96, 1, 2, r=True)[5:48] +
     struct.pack(">HB", 17, 1) + bytes(17)),
]
for name, s in ffp:
    out("pdu", name, b"\x01" + UA + s)
out("pdu", "r2t_write", b"\x03" + UA + scsi(cdb_rw(0x2a, 0, 32), 16384, 1,
                                             2, w=True) +
    data_out(1, 2, 0, 0, b"\7" * 8192, final=False) +
    data_out(1, 2, 1, 8192, b"\7" * 8192))
out("pdu", "discovery_text", b"\x02" + bhs(
    0x04 | 0x40, 0x80, text("SendTargets=All"), itt=2, f20=0xffffffff,
    f24=1) + bhs(0x04 | 0x40, 0x80, text("SendTargets=" + TARGET), itt=3,
                 f20=0xffffffff, f24=1))
out("pdu", "trickle_login", b"\x05" + scsi(INQ, 96, 1, 1, r=True))

# ---- cdb: flags, EDTL (be32), CDB (16 bytes), data -----------------------
def cdbseed(name, cdb, edtl, data=b"", flags=0):
    flags |= 4 | 8  # TEST UNIT READY first (takes the UA), two LUs
    out("cdb", name, bytes([flags]) + struct.pack(">I", edtl) +
        cdb.ljust(16, b"\0") + data)


cdbseed("inquiry", INQ, 96)
cdbseed("inquiry_vpd83", bytes([0x12, 1, 0x83, 0, 255, 0]), 255)
cdbseed("inquiry_vpd_b0", bytes([0x12, 1, 0xb0, 0, 64, 0]), 64)
cdbseed("mode_sense10", bytes([0x5a, 0, 0x3f, 0, 0, 0, 0, 1, 0, 0]), 256)
cdbseed("mode_select6", bytes([0x15, 0x10, 0, 0, 24, 0]), 24,
        bytes([0, 0, 0, 8]) + bytes(8) + bytes([0x08, 0x0a, 4]) + bytes(9))
cdbseed("read16", cdb_rw(0x88, 0, 8), 4096)
cdbseed("write10", cdb_rw(0x2a, 2, 1), 512, b"\x11" * 512)
cdbseed("write_same16_unmap", bytes([0x93, 8]) + struct.pack(">QI", 0, 16) +
        bytes(2), 512, bytes(512))
cdbseed("unmap", bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), 24,
        struct.pack(">HH4xQI4x", 22, 16, 4, 8))
cdbseed("caw", bytes([0x89, 0]) + struct.pack(">Q", 1) + bytes([0, 0, 0, 1,
                                                               0, 0]),
        1024, bytes(1024))
cdbseed("report_luns", REPORT_LUNS, 256)
cdbseed("rsoc", bytes([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0]), 4096)
cdbseed("pr_in", bytes([0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), 4096)
cdbseed("pr_out_register", bytes([0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0]), 24,
        bytes(8) + struct.pack(">Q", 0x1234) + bytes(8))
cdbseed("sync_cache", bytes([0x35]) + bytes(9), 0)
cdbseed("get_lba_status", bytes([0x9e, 0x12]) + bytes(8) +
        struct.pack(">I", 64) + bytes(2), 64)
cdbseed("xcopy", bytes([0x83, 0]) + bytes(8) + struct.pack(">I", 64) +
        bytes(2), 64, bytes(64))
cdbseed("write_protected", cdb_rw(0x2a, 0, 1), 512, bytes(512), flags=1)
cdbseed("unmapped_lun", INQ, 96, flags=2)

# ---- rpc / config: JSON -----------------------------------------------------
so = [{"plugin": "ramdisk", "name": "rd1", "size": 1048576,
       "attributes": {"block_size": 512, "emulate_tpu": 1}},
      {"plugin": "fileio", "name": "f1", "dev": "f1.img", "size": 1048576,
       "write_back": False}]
cfg = {
    "fabric_modules": [{"name": "iscsi", "discovery_enable_auth": True,
                        "discovery_userid": "u", "discovery_password": "p"}],
    "storage_objects": so,
    "targets": [{"fabric": "iscsi", "wwn": "iqn.2003-01.org.example:t1",
                 "tpgs": [{"tag": 1, "enable": True,
                           "attributes": {"authentication": 0,
                                          "generate_node_acls": 1,
                                          "login_timeout": 15,
                                          "default_cmdsn_depth": 64},
                           "parameters": {"AuthMethod": "CHAP,None",
                                          "MaxBurstLength": "262144"},
                           "luns": [{"index": 0, "storage_object":
                                     "/backstores/ramdisk/rd1"},
                                    {"index": 1, "storage_object":
                                     "/backstores/fileio/f1"}],
                           "portals": [{"ip_address": "127.0.0.1",
                                        "port": 3261}],
                           "node_acls": [{"node_wwn":
                                          "iqn.1994-05.com.example:i1",
                                          "chap_userid": "a",
                                          "chap_password": "b",
                                          "attributes": {"nopin_timeout": 5},
                                          "mapped_luns": [
                                              {"index": 0, "tpg_lun": 0,
                                               "write_protect": True}]}]}]}]}
# config: byte 0 odd = abort_on_error, then the document
out("config", "full", "0" + json.dumps(cfg, indent=1))
out("config", "full_abort", "1" + json.dumps(cfg, indent=1))
out("config", "empty", "0{}")
out("config", "bad_types", "0" + json.dumps({"storage_objects": [{"plugin": 1}],
                                       "targets": [{"wwn": 5, "tpgs": "x"}]}))

reqs = [
    {"method": "version"},
    {"method": "backstore.create", "params": {"plugin": "ramdisk",
                                              "name": "r", "size": 65536}},
    {"method": "backstore.create", "params": {"plugin": "fileio",
                                              "name": "f", "dev": "f.img",
                                              "size": 65536}},
    {"method": "target.create", "params": {"wwn":
                                           "iqn.2003-01.org.example:t9"}},
    {"method": "tpg.create", "params": {"wwn": "iqn.2003-01.org.example:t9",
                                        "tag": 1}},
    {"method": "tpg.set_attributes", "params": {
        "wwn": "iqn.2003-01.org.example:t9", "tag": 1,
        "attributes": {"login_timeout": 30}}},
    {"method": "tpg.set_parameters", "params": {
        "wwn": "iqn.2003-01.org.example:t9", "tag": 1,
        "parameters": {"MaxRecvDataSegmentLength": "65536"}}},
    {"method": "portal.create", "params": {
        "wwn": "iqn.2003-01.org.example:t9", "tag": 1,
        "ip_address": "127.0.0.1", "port": 3262}},
    {"method": "lun.create", "params": {
        "wwn": "iqn.2003-01.org.example:t9", "tag": 1, "lun": 0,
        "storage_object": "/backstores/ramdisk/r"}},
    {"method": "acl.create", "params": {
        "wwn": "iqn.2003-01.org.example:t9", "tag": 1,
        "node_wwn": "iqn.1994-05.com.example:i"}},
    {"method": "get_config"},
    {"method": "save_config", "params": {"file": "saved.json"}},
    {"method": "restore_config", "params": {"config": cfg,
                                            "clear_existing": True}},
    {"method": "sessions"},
    {"method": "describe"},
    {"method": "clear_config", "params": {"confirm": True}},
]
batch = []
for i, r in enumerate(reqs):
    r = dict(r, jsonrpc="2.0", id=i)
    batch.append(r)
    out("rpc", "req_%02d_%s" % (i, r["method"].replace(".", "_")),
        json.dumps(r))
# the rpc harness takes an array as a sequence of requests
out("rpc", "sequence", json.dumps(batch))

# ---- chap: flags, then requests separated by 0xff --------------------------
FF = b"\xff"
out("chap", "md5_one_way", b"\x00" + text("CHAP_A=5") + FF +
    text("CHAP_N=iqn.1994-05.com.example:fuzz", "CHAP_R=@"))
out("chap", "sha256_mutual", b"\x01" + text("CHAP_A=7,6,5") + FF +
    text("CHAP_N=iqn.1994-05.com.example:fuzz", "CHAP_R=@", "CHAP_I=7",
         "CHAP_C=0x" + "a5" * 32))
out("chap", "sha3_base64", b"\x03" + text("CHAP_A=8") + FF +
    text("CHAP_N=iqn.1994-05.com.example:fuzz", "CHAP_R=0bAAAAAAAAAAAAAAAAAAAAAA==",
         "CHAP_I=300", "CHAP_C=0B" + "QUJD" * 8))
out("chap", "bad_alg", b"\x00" + text("CHAP_A=1,2,3"))
out("chap", "reflected_challenge", b"\x01" + text("CHAP_A=5") + FF +
    text("CHAP_N=iqn.1994-05.com.example:fuzz", "CHAP_R=@", "CHAP_I=1",
         "CHAP_C=0x00112233445566778899aabbccddeeff"))
