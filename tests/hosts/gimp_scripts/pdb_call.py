"""What the GIMP batch scripts share: calling plug-in-deepdream through the PDB as a
script would, and the ``FACT {json}`` lines tests/hosts/test_gimp.py parses."""

import json

from gi.repository import Gimp


def fact(**kw):
    print("FACT " + json.dumps(kw), flush=True)


def run_deepdream(img, layer, values, run_mode=Gimp.RunMode.NONINTERACTIVE):
    """Dream ``layer`` of ``img`` with PDB ``values``; returns (status nick, the PDB's error
    message or "")."""
    proc = Gimp.get_pdb().lookup_procedure("plug-in-deepdream")
    config = proc.create_config()
    config.set_property("run-mode", run_mode)
    config.set_property("image", img)
    config.set_core_object_array("drawables", [layer])
    for name, value in values.items():
        config.set_property(name, value)
    status = proc.run(config).index(0)
    error = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    return status.value_nick, error
