"""Run inside gimp-console-3.0 (python-fu-eval): for every GIMP precision, RGB and gray,
with and without alpha, print the plug-in's host format for a layer and how many bytes a
read of it really returns (``FACT {json}`` lines for tests/hosts/test_gimp.py).

Environment: DD_PLUGIN_DIR (the installed plug-in folder).
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

sys.path[:0] = [os.environ["DD_PLUGIN_DIR"], os.path.join(os.environ["DD_PLUGIN_DIR"], "vendor")]
import pixel_io  # noqa: E402
from pdb_call import fact  # noqa: E402

W, H = 5, 3
KINDS = {("rgb", False): Gimp.ImageType.RGB_IMAGE, ("rgb", True): Gimp.ImageType.RGBA_IMAGE,
         ("gray", False): Gimp.ImageType.GRAY_IMAGE, ("gray", True): Gimp.ImageType.GRAYA_IMAGE}
BASES = {"rgb": Gimp.ImageBaseType.RGB, "gray": Gimp.ImageBaseType.GRAY}

for precision in Gimp.Precision.__enum_values__.values():
    for (base, alpha), kind in KINDS.items():
        img = Gimp.Image.new_with_precision(W, H, BASES[base], precision)
        layer = Gimp.Layer.new(img, "l", W, H, kind, 100, Gimp.LayerMode.NORMAL)
        img.insert_layer(layer, None, 0)
        fmt = pixel_io.host_format(layer)
        region = pixel_io.dream_region(img, layer, True)
        data = pixel_io.read_pixels(layer, region, fmt)
        fact(case=f"{precision.value_nick} {base} {'alpha' if alpha else 'opaque'}",
             babl=fmt.babl, layout=fmt.wire.layout, dtype=fmt.wire.dtype,
             transfer=fmt.wire.transfer, mask_dtype=fmt.mask_dtype,
             read_bytes=len(data), frame_size=fmt.wire.frame_size(W, H))
        img.delete()
