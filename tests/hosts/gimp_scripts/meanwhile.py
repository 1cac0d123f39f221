"""Run inside gimp-console-3.0 (python-fu-eval) with gimp_scripts/meanwhile on the plug-in's
PYTHONPATH: for each action in DD_ACTIONS, dream a new image's layer "target" while the
plug-in's own process changes the image before the dream is added, as a user may while
the daemon dreams, and print a ``FACT {json}`` line of what became of the image.

Environment: DD_ACTIONS (comma-separated), DD_SETTINGS (JSON PDB values).
"""

import json
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402
from images import add_layer, new_image  # noqa: E402
from pdb_call import fact, layers_left, run_deepdream  # noqa: E402

sys.path.insert(0, os.path.join(os.environ["DD_PLUGIN_DIR"], "vendor"))
from deepdream_protocol.layer_changes import TURNS, turn_pixels  # noqa: E402

IT = Gimp.ImageType
#: the round selection of "paint_unselected" (x, y, width, height), and where it paints
SELECTED = (8, 8, 40, 32)
PAINTED = {"paint_unselected": (8, 8, 3, 3), "rotate_90_paint_unselected": (37, 8, 3, 3)}
RED = b"\xff\x00\x00\xff"
#: how each action turns the layer's pixels
TURNED = {"flip": "mirror_x", "rotate": "rotate_180", "image_flip": "mirror_y",
          "rotate_90": "rotate_90"}


def pixels(layer, area):
    x, y, width, height = area
    return bytes(layer.get_buffer().get(Gegl.Rectangle.new(x, y, width, height), 1.0,
                                        "R'G'B'A u8", Gegl.AbyssPolicy.NONE))


def unlike_the_dream(img, action):
    """How many pixels of the new layer differ from the daemon's answer, turned the way the
    action turned the layer (the dream should land on the pixels it was dreamed from)."""
    new = img.get_layers()[0]
    width, height = new.get_width(), new.get_height()
    got = pixels(new, (0, 0, width, height))
    with open(os.path.join(os.environ["HOME"], "dreamed"), "rb") as f:
        dreamed = f.read()
    turn = next(t for t in TURNS if t.name == TURNED.get(action, "identity"))
    wanted = turn_pixels(dreamed, *turn.size(width, height), turn)  # (as it was dreamed)
    return sum(got[i:i + 4] != wanted[i:i + 4] for i in range(0, len(got), 4))


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
    round_selection = action.endswith("paint_unselected")
    if round_selection:
        img.select_ellipse(Gimp.ChannelOps.REPLACE, *SELECTED)
    status, error = run_deepdream(img, layer, json.loads(os.environ["DD_SETTINGS"]))
    done = status == "success"
    fact(case=action, status=status, error=error, layers=layers(img),
         new_items=layers_left(img, first_new),
         unlike_the_dream=unlike_the_dream(img, action) if done and not round_selection
         else None,
         stroke_in_result=pixels(img.get_layers()[0], PAINTED[action]) == RED * 9
         if done and round_selection else None)
    img.delete()
