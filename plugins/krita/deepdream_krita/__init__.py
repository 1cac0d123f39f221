"""DeepDream for Krita: a docker and a Tools › Scripts action that dream the active layer
into a new layer above it, through the local DeepDream daemon.

Scripting (Scripter, kritarunner)::

    import deepdream_krita
    doc = Krita.instance().activeDocument()
    layer = deepdream_krita.dream_layer(doc, doc.activeNode(), {"iterations": 5})
"""

from __future__ import annotations

import os
import sys

# The installer copies the protocol package (and, where the host's Python lacks them, pyzmq
# and msgpack wheels) into vendor/; it must win over anything else on sys.path.
_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)

from .api import dream_layer  # noqa: E402
from .pixels import DreamError  # noqa: E402

__all__ = ["DreamError", "dream_layer"]

try:
    import krita  # noqa: F401
except ImportError:  # imported outside Krita (unit tests): nothing to register
    pass
else:
    from .extension import register

    register()
