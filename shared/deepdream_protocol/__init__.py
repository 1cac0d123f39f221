"""DeepDream wire protocol and client, shared by the daemon and the Krita and GIMP plug-ins.

Pure Python (plus pyzmq where it imports, and msgpack): no torch, no numpy.
"""

from .pixels import PixelFormat

__all__ = ["PixelFormat"]
