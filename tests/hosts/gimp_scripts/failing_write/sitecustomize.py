"""On PYTHONPATH, Python imports this at start-up: the plug-in's ``pixel_io.write_pixels``
then raises, a failure while the result layer is being made (tests/hosts/test_gimp.py)."""

import builtins

_import = builtins.__import__


def _failing_import(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    if name == "pixel_io" and hasattr(module, "write_pixels"):
        def write_pixels(*_args, **_kwargs):
            raise RuntimeError("injected write failure")
        module.write_pixels = write_pixels
    return module


builtins.__import__ = _failing_import
