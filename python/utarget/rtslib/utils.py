"""Exceptions and small helpers shared by the utarget.rtslib modules."""

import re


class RTSLibError(Exception):
    """Any refused or failed operation (rtslib's generic error)."""


class RTSLibNotInCFSError(RTSLibError):
    """The object does not exist (rtslib: "not in configfs"); raised by
    mode='lookup' on a missing object and by any use of a deleted one."""


class RTSLibALUANotSupported(RTSLibError):
    """Kept for rtslib compatibility: utargetd has no ALUA groups API yet."""


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
          "p": 1 << 50}


def convert_human_to_bytes(hsize, kilo=1024):
    """'100M', '1GB', '4k', 512 -> bytes (1024-based, as rtslib and targetcli)."""
    if isinstance(hsize, bool):
        raise RTSLibError("Cannot interpret size %r" % (hsize,))
    if isinstance(hsize, int):
        return hsize
    m = re.match(r"^\s*(\d+)\s*([kmgtp]?)(i?b)?\s*$", str(hsize), re.IGNORECASE)
    if not m:
        raise RTSLibError("Cannot interpret size %r" % (hsize,))
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def to_int(value, what):
    """rtslib accepts numbers as int or str ("3260"); the API wants ints."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RTSLibError("%s must be a number, not %r" % (what, value)) from None


def check_mode(mode):
    if mode not in ("any", "create", "lookup"):
        raise RTSLibError("Invalid mode %r: use 'any', 'create' or 'lookup'" % (mode,))
    return mode

