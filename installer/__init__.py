"""Standard-library-only installer behind install.py (any Python >= 3.10, any OS)."""

import sys
from pathlib import Path

# the plug-ins' shared package, by path (standard library only): launcher says where the
# config lives and writes files whole, settings which model the daemon preloads, zmtp what
# is loopback
_SHARED = str(Path(__file__).resolve().parents[1] / "shared")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)
