"""On PYTHONPATH, Python imports this at start-up: the plug-in's ``pixel_io.write_pixels``
(or the pixel_io function named by DD_FAIL) then raises, a failure while the result layer is
being made (tests/hosts/test_gimp.py).  Any other function raises after doing its work: a
broken ``copy_filters`` leaves effects on the layer the plug-in must throw away."""

import builtins
import os

_import = builtins.__import__
_BROKEN = os.environ.get("DD_FAIL", "write_pixels")
_MESSAGE = "injected write failure" if _BROKEN == "write_pixels" else f"injected {_BROKEN} failure"


def _failing_import(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    real = getattr(module, _BROKEN, None) if name == "pixel_io" else None
    if real is not None and not getattr(real, "broken", False):
        def broken(*args, **kwargs):
            if _BROKEN != "write_pixels":
                real(*args, **kwargs)
            raise RuntimeError(_MESSAGE)
        broken.broken = True
        setattr(module, _BROKEN, broken)
    return module


builtins.__import__ = _failing_import
