"""Test images for the GIMP batch scripts: new images and layers filled with seeded noise."""

import random

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

W, H = 64, 48


def new_image(base, precision, width=W, height=H):
    return Gimp.Image.new_with_precision(width, height, base, precision)


def add_layer(img, name, kind, width=W, height=H, parent=None, position=0, offsets=(0, 0)):
    layer = Gimp.Layer.new(img, name, width, height, kind, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, parent, position)
    layer.set_offsets(*offsets)
    fill_noise(layer)
    return layer


def image_with_layer(name, kind, precision=Gimp.Precision.U8_NON_LINEAR,
                     base=Gimp.ImageBaseType.RGB, width=W, height=H):
    """A new image holding one layer of noise: (image, layer)."""
    img = new_image(base, precision, width, height)
    return img, add_layer(img, name, kind, width, height)


def fill_noise(layer):
    """Seeded noise, written as u8 and converted by babl into the layer's precision."""
    rng = random.Random(layer.get_name())
    fmt = "Y'A u8" if layer.is_gray() else "R'G'B'A u8"
    n = layer.get_width() * layer.get_height() * (2 if layer.is_gray() else 4)
    data = bytes(rng.getrandbits(8) for _ in range(n))
    layer.get_buffer().set(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()),
                           fmt, data)
