"""utarget: Python client of utargetd's control socket (stdlib only).

The rtslib-compatible API lives in utarget.rtslib.
"""

__version__ = "0.1.0"
