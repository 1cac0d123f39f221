"""On PYTHONPATH, Python imports this at start-up: in the plug-in's process GIMP then refuses
to copy one layer effect, the operation named by DD_REFUSED_EFFECT (tests/hosts/test_gimp.py).
DD_REFUSED_HOW says how: ``append`` ignores the append, as GIMP 3.0.4 ignores it, raising
nothing, for an effect with an auxiliary input (a bump map, a displace); ``settings`` makes
setting the copy's opacity raise, once the copy exists.  The batch script's own Python,
which reads this too, makes its effects as usual."""

import builtins
import os
import sys

_import = builtins.__import__
_OPERATION = os.environ["DD_REFUSED_EFFECT"]


def _refuse(Gimp):
    if os.environ["DD_REFUSED_HOW"] == "append":
        append = Gimp.Drawable.append_filter

        def append_filter(drawable, effect):
            if effect.get_operation_name() != _OPERATION:
                append(drawable, effect)
        Gimp.Drawable.append_filter = append_filter
    else:
        set_opacity = Gimp.DrawableFilter.set_opacity

        def refused_opacity(effect, opacity):
            if effect.get_operation_name() == _OPERATION:
                raise RuntimeError(f"injected: GIMP refused {_OPERATION}'s settings")
            set_opacity(effect, opacity)
        Gimp.DrawableFilter.set_opacity = refused_opacity


def _hooked_import(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    plug_in = "daemon_link" in sys.modules  # the plug-in imports it first; a script never
    if name == "pixel_io" and plug_in and not getattr(module, "refusing", False):
        module.refusing = True
        _refuse(module.Gimp)
    return module


builtins.__import__ = _hooked_import
