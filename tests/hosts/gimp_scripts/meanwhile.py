"""Run inside gimp-console-3.0 (python-fu-eval) with gimp_scripts/meanwhile on the plug-in's
PYTHONPATH: for each action in DD_ACTIONS, dream a new image's layer "target" while the
plug-in's own process changes the image before the dream is added, as a user may while
the daemon dreams, and print a ``FACT {json}`` line of what became of the image.

Environment: DD_ACTIONS (comma-separated), DD_SETTINGS (JSON PDB values).
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from images import add_layer, new_image  # noqa: E402
from pdb_call import fact, layers_left, run_deepdream  # noqa: E402

IT = Gimp.ImageType


def layers(img):
    return [{"name": layer.get_name(), "size": [layer.get_width(), layer.get_height()],
             "offsets": list(layer.get_offsets()[1:])}
            for layer in img.get_layers()]


for action in os.environ["DD_ACTIONS"].split(","):
    with open(os.path.join(os.environ["HOME"], "meanwhile"), "w") as f:
        f.write(action)
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR)
    add_layer(img, "below", IT.RGB_IMAGE)
    layer = add_layer(img, "target", IT.RGBA_IMAGE)
    first_new = layer.get_id() + 1
    status, error = run_deepdream(img, layer, json.loads(os.environ["DD_SETTINGS"]))
    fact(case=action, status=status, error=error, layers=layers(img),
         new_items=layers_left(img, first_new))
    img.delete()
