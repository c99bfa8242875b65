"""utarget: Python client of utargetd's control socket (stdlib only).

The rtslib-compatible API lives in utarget.rtslib.
"""

import os as _os

try:
    # written by `make install` from the top-level VERSION file
    from ._version import __version__
except ImportError:
    # the source tree: VERSION is two levels up from this package
    with open(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)),
                            "..", "..", "VERSION")) as _f:
        __version__ = _f.read().strip()
