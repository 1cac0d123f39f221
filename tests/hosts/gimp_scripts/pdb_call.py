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


def layers_left(img, first_id, count=50):
    """The ids from ``first_id`` on of ``img``'s layers and layer masks that still exist, in
    the image or outside it: what a plug-in call made and left.  Removed layers (kept only by
    the undo history) do not count, nor do a layer effect's own mask channels (they live as
    long as their layer), a floating selection or another image's items (a paste's)."""
    left = []
    for item_id in range(first_id, first_id + count):
        if not Gimp.Item.id_is_valid(item_id):
            continue
        item = Gimp.Item.get_by_id(item_id)
        if (isinstance(item, (Gimp.Layer, Gimp.LayerMask))
                and item.get_image().get_id() == img.get_id()
                and not (isinstance(item, Gimp.Layer) and item.is_floating_sel())):
            left.append(item_id)
    return left
