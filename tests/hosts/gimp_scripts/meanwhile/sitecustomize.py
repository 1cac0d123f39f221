"""On PYTHONPATH, Python imports this at start-up: once the daemon's dream is back, and before
the plug-in adds it, the plug-in's process does to the image what a user may do meanwhile
(GIMP stays usable while a plug-in runs).  What it does is read from $HOME/meanwhile, which
meanwhile.py writes before each call (tests/hosts/test_gimp.py); the daemon's answer goes
to $HOME/dreamed."""

import builtins
import os

_import = builtins.__import__


RED = b"\xff\x00\x00\xff"
#: where each painting action paints (x, y, width, height, in the layer as it is then): in
#: the dreamed pixels, and in a corner of the dreamed box that the round selection
#: meanwhile.py makes leaves out (turned a quarter: the 64 x 48 layer's (8, 8) is (37, 8))
PAINTED = {"paint": (10, 8, 6, 4), "paint_unselected": (8, 8, 3, 3),
           "rotate_90_paint": (10, 8, 6, 4), "rotate_90_paint_unselected": (37, 8, 3, 3)}


def _act(image, layer, action):
    from gi.repository import Gimp

    if action == "move":
        layer.set_offsets(7, 5)
    elif action == "scale":
        layer.scale(32, 24, False)
    elif action == "crop":
        image.crop(30, 20, 5, 5)
    elif action == "delete":
        image.remove_layer(layer)
    elif action == "flatten":  # Image › Flatten Image: the layer is merged away
        image.flatten()
    elif action == "precision":
        image.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    elif action == "floating":
        Gimp.edit_copy([layer])
        Gimp.edit_paste(layer, False)
    elif action == "flip":  # Layer › Transform › Flip Horizontally
        layer.transform_flip_simple(Gimp.OrientationType.HORIZONTAL, True, 0.0)
    elif action == "rotate":  # Layer › Transform › Rotate 180°
        layer.transform_rotate_simple(Gimp.RotationType.DEGREES180, True, 0.0, 0.0)
    elif action.startswith("rotate_90"):  # ... Rotate 90° clockwise: its sides swap
        # (with a selection GIMP would turn only the selected pixels, floated: Select › None)
        Gimp.Selection.none(image)
        layer.transform_rotate_simple(Gimp.RotationType.DEGREES90, True, 0.0, 0.0)
        if action in PAINTED:  # and a stroke on it then
            _paint(layer, PAINTED[action])
    elif action == "image_flip":  # Image › Transform › Flip Vertically
        image.flip(Gimp.OrientationType.VERTICAL)
    elif action in PAINTED:
        _paint(layer, PAINTED[action])
    else:
        raise ValueError(f"unknown action {action!r}")


def _paint(layer, area):
    """A stroke: an opaque red block."""
    from gi.repository import Gegl

    x, y, width, height = area
    layer.get_buffer().set(Gegl.Rectangle.new(x, y, width, height), "R'G'B'A u8",
                           RED * (width * height))
    layer.get_buffer().flush()


def _hooked_import(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    real = getattr(module, "dream", None) if name == "daemon_link" else None
    if real is not None and not getattr(real, "hooked", False):
        def dream(*args, **kwargs):
            from gi.repository import Gimp

            result = real(*args, **kwargs)
            with open(os.path.join(os.environ["HOME"], "dreamed"), "wb") as f:
                f.write(result)  # what the daemon sent back, to compare the result with
            with open(os.path.join(os.environ["HOME"], "meanwhile")) as f:
                action = f.read().strip()
            image = Gimp.get_images()[0]
            _act(image, image.get_layer_by_name("target"), action)
            return result
        dream.hooked = True
        module.dream = dream
    return module


builtins.__import__ = _hooked_import
