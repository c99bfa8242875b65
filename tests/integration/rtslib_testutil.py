"""Shared bits of the utarget.rtslib tests: where the module and the wiki
example live, and running the example with its three allowed substitutions."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYDIR = REPO / "python"
WIKI_EXAMPLE = Path(__file__).resolve().parent / "data" / "rtslib_wiki_example.py"

WIKI_TARGET = "iqn.2003-01.org.linux-iscsi.x.x8664:sn.d3d8b0500fde"
WIKI_INITIATOR = "iqn.1994-05.com.redhat:4321576890"

if str(PYDIR) not in sys.path:
    sys.path.insert(0, str(PYDIR))


def _replace_once(text, old, new):
    n = text.count(old)
    assert n == 1, "the wiki example should contain %r exactly once (found %d)" % (old, n)
    return text.replace(old, new)


def adapted_wiki_example(image, ip, port):
    """The example with only the import line, /dev/sdb and the portal changed.
    Returns (source, the changed lines) so a test can show the diff is that."""
    src = WIKI_EXAMPLE.read_text()
    out = _replace_once(src, "from rtslib import *", "from utarget.rtslib import *")
    out = _replace_once(out, '"/dev/sdb"', repr(str(image)).replace("'", '"'))
    out = _replace_once(out, 'NetworkPortal(tpg, "10.10.0.48", "3260")',
                        'NetworkPortal(tpg, "%s", "%d")' % (ip, port))
    changed = [(a, b) for a, b in zip(src.splitlines(), out.splitlines()) if a != b]
    return out, changed


def python_env(sock):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYDIR), env.get("PYTHONPATH")]))
    env["UTARGET_SOCKET"] = str(sock)
    return env
