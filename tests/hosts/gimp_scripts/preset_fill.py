"""Run inside gimp-console-3.0 (python-fu-eval): the installed plug-in's own preset code on
a real procedure config of plug-in-deepdream.  The dialog's handler (``follow_preset``, the
one show_dialog connects to notify::preset) fills the fields from a preset; what they then
show is what is sent; a script's (non-interactive) call takes the preset's value for what
it left at the default.  ``FACT`` lines by ``step``.

Environment: DD_PLUGIN_DIR (the installed plug-in's folder).
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from pdb_call import fact  # noqa: E402

sys.path.insert(0, os.environ["DD_PLUGIN_DIR"])
import deepdream  # noqa: E402  (the installed plug-in, importable: it runs Gimp.main only as a script)
from deepdream_protocol.settings import wire_settings  # noqa: E402

WATCHED = ("preset", "octaves", "layer", "iterations", "transform", "strength", "seed",
           "octave-scale")


def new_config():
    return Gimp.get_pdb().lookup_procedure(deepdream.PROCEDURE).create_config()


def shown(config):
    return {name: config.get_property(name) for name in WATCHED}


def sent(config, mode):
    values = wire_settings(deepdream.config_values(config, mode))
    return {k: values[k] for k in ("octaves", "layer", "iterations", "strength", "seed")}


config = new_config()
config.set_property("seed", 9)
handler = deepdream.follow_preset(config)
config.set_property("preset", "deep-objects")
fact(step="chosen", shown=shown(config))
config.set_property("octaves", 4)  # back to the default after choosing the preset
fact(step="set_back", shown=shown(config), sent=sent(config, Gimp.RunMode.INTERACTIVE),
     repeat=sent(config, Gimp.RunMode.WITH_LAST_VALS))
config.set_property("preset", "deep-objects")  # the same one again keeps the change
fact(step="again", shown=shown(config))
config.set_property("preset", "subtle")
fact(step="other", shown=shown(config))
# Reset › Reset to Initial Values: GIMP's gimp_config_sync (what the dialog's copy of its
# initial values runs) sets what differs with the notifications held; the values come
# back as they were, not as the preset's look
config.set_property("octaves", 2)  # subtle's look, changed: what the dialog opened with
initial = new_config()
Gimp.config_sync(config, initial, 0)
config.set_property("preset", "painterly")
config.set_property("octaves", 6)
Gimp.config_sync(initial, config, 0)
fact(step="reset", shown=shown(config))
# the same by hand, in both orders: GLib gives no order for held notifications
for step, pairs in (("held", (("preset", "deep-objects"), ("octaves", 4))),
                    ("held_reversed", (("iterations", 7), ("preset", "classic")))):
    config.freeze_notify()
    for name, value in pairs:
        config.set_property(name, value)
    config.thaw_notify()
    fact(step=step, shown=shown(config))
config.set_property("preset", "painterly")  # and then a preset chosen fills again
fact(step="chosen_after", shown=shown(config))
config.set_property("preset", "none")
config.set_property("preset", "subtle")  # chosen anew: filled anew
config.disconnect(handler)
config.set_property("preset", "classic")  # not followed any more
fact(step="after", shown=shown(config))

script = new_config()  # a script's call: preset and one setting, the rest at defaults
script.set_property("preset", "subtle")
script.set_property("iterations", 20)
fact(step="script", sent=sent(script, Gimp.RunMode.NONINTERACTIVE),
     kept=shown(script))
