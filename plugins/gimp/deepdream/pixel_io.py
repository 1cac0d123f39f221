"""Layer bytes in and out of GIMP, in the drawable's own precision and channel layout.

Nothing here converts pixel values: babl hands over the samples the layer already stores and
takes the daemon's answer back in the same format (conversion is the daemon's job).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import gi

gi.require_version("Babl", "0.1")
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from deepdream_protocol.pixels import PixelFormat  # noqa: E402
from gi.repository import Babl, Gegl, Gimp, GObject  # noqa: E402

#: babl sample type -> wire dtype.  The wire has no u32 or f64: those layers travel as
#: float (babl converts), which holds every value a dream can produce.
_SAMPLES = {"u8": "u8", "u16": "u16", "half": "f16", "float": "f32"}
_AS_FLOAT = ("u32", "double")


class PixelError(Exception):
    """A one-line reason the active drawable cannot be read."""


@dataclass(frozen=True)
class HostFormat:
    """How a drawable's bytes are asked of babl and described to the daemon."""

    babl: str  # e.g. "R'G'B'A u16", with "-SPACE" for a layer in another colour space
    wire: PixelFormat
    mask_babl: str  # the selection read as one sample per pixel
    mask_dtype: str


@dataclass(frozen=True)
class Region:
    """The part of the drawable that is dreamed, in drawable coordinates."""

    x: int
    y: int
    width: int
    height: int
    masked: bool  # True when the selection shapes the dream


def host_format(drawable: Gimp.Drawable) -> HostFormat:
    """The drawable's own babl format (its colour space included, so the bytes read are
    the bytes stored and the ones written back land unconverted)."""
    own = drawable.get_format()
    components, _, sample = Babl.format_get_encoding(own).partition(" ")  # "R'G'B'A u16"
    if sample in _AS_FLOAT:
        own, sample = Babl.format_with_space(f"{components} float",
                                             Babl.format_get_space(own)), "float"
    if sample not in _SAMPLES or not (drawable.is_rgb() or drawable.is_gray()):
        raise PixelError(f"cannot read a layer stored as {Babl.get_name(own)!r}")
    # ' and ~ mark perceptual (sRGB-like) samples; none means linear light.
    linear = "'" not in components and "~" not in components
    layout = components.replace("'", "").replace("~", "").replace("Y", "G")
    dtype = _SAMPLES[sample]
    mask_dtype = "u8" if dtype == "u8" else "f32"
    return HostFormat(
        babl=Babl.get_name(own),
        wire=PixelFormat(layout, dtype, "linear" if linear else "srgb"),
        mask_babl="Y u8" if mask_dtype == "u8" else "Y float",
        mask_dtype=mask_dtype,
    )


def dream_region(image: Gimp.Image, drawable: Gimp.Drawable, use_selection: bool) -> Region:
    """The whole drawable, or only the selection's bounding box within it."""
    if use_selection and not Gimp.Selection.is_empty(image):
        ok, x, y, width, height = drawable.mask_intersect()
        if not ok or width <= 0 or height <= 0:
            raise PixelError("the selection does not overlap the active layer")
        return Region(x, y, width, height, masked=True)
    return Region(0, 0, drawable.get_width(), drawable.get_height(), masked=False)


def _rect(region: Region, dx: int = 0, dy: int = 0) -> Gegl.Rectangle:
    return Gegl.Rectangle.new(region.x + dx, region.y + dy, region.width, region.height)


def _get(drawable: Gimp.Drawable, rect: Gegl.Rectangle, babl: str) -> bytes:
    return _get_from(drawable.get_buffer(), rect, babl)


def _get_from(buffer: Gegl.Buffer, rect: Gegl.Rectangle, babl: str) -> bytes:
    return bytes(buffer.get(rect, 1.0, babl, Gegl.AbyssPolicy.NONE))


def _set(drawable: Gimp.Drawable, rect: Gegl.Rectangle, babl: str, data: bytes) -> None:
    buffer = drawable.get_buffer()
    buffer.set(rect, babl, data)
    buffer.flush()


def read_pixels(drawable: Gimp.Drawable, region: Region, fmt: HostFormat) -> bytes:
    return _get(drawable, _rect(region), fmt.babl)


def reader(drawable: Gimp.Drawable, fmt: HostFormat) -> Callable[[int, int, int, int], bytes]:
    """Reads of the drawable's pixels at (x, y, width, height), one buffer for them all: a
    buffer keeps the tiles it fetched from GIMP, and the search for moved pixels reads the
    same ones row by row."""
    buffer = drawable.get_buffer()

    def read(x: int, y: int, width: int, height: int) -> bytes:
        return _get_from(buffer, Gegl.Rectangle.new(x, y, width, height), fmt.babl)
    return read


def read_mask(image: Gimp.Image, drawable: Gimp.Drawable, region: Region,
              fmt: HostFormat) -> bytes:
    """The (feathered) selection over the region: the selection lives in image coordinates."""
    _, off_x, off_y = drawable.get_offsets()
    mask = _get(image.get_selection(), _rect(region, off_x, off_y), fmt.mask_babl)
    if mask.count(0) == len(mask):
        # The selection's bounding box reaches the layer but no selected pixel does (two
        # areas either side of it, a round selection past its corner): a dream would
        # change nothing.
        raise PixelError("the selection does not overlap the active layer")
    return mask


def selected(mask: bytes, fmt: HostFormat) -> bytes:
    """``read_mask``'s mask as one byte a pixel, 0 where nothing is selected."""
    if fmt.mask_dtype == "u8":
        return mask
    return bytes(map(bool, array("f", mask)))


def write_pixels(drawable: Gimp.Drawable, region: Region, fmt: HostFormat, data: bytes) -> None:
    _set(drawable, _rect(region), fmt.babl, data)
    drawable.update(region.x, region.y, region.width, region.height)


#: Parasites that hold a text layer's text: XCF loading turns any layer carrying one back into
#: a text layer.  GIMP attaches the first while it saves a text layer, and it stays on.
_TEXT_PARASITES = ("gimp-text-layer", "plug_in_gdyntext/data")


def plain_copy(image: Gimp.Image, layer: Gimp.Layer) -> Gimp.Layer:
    """A plain pixel layer like ``layer``, not yet in the image: what ``Layer.copy()`` carries
    (pixels, offsets, opacity, mode, visibility, compositing, mask, colour tag, position and
    visibility locks, parasites) without the text and without the layer effects, which
    ``copy_filters`` adds once the layer is in the image.  ``Layer.copy()`` of a text layer,
    and even ``Layer.new_from_drawable``, give a text layer again, and GIMP 3.0's "Discard
    Text Information" has no PDB procedure.

    Why the effects wait: GIMP 3.0.4 never frees a layer that got an effect while outside an
    image (``delete()`` leaves it, its pixels and the effect alive until GIMP quits), so a
    layer thrown away after a failure would leak.  One removed from the image goes with the
    image's undo history like any other."""
    copy = Gimp.Layer.new(image, layer.get_name(), layer.get_width(), layer.get_height(),
                          layer.type(), layer.get_opacity(), layer.get_mode())
    try:
        _, x, y = layer.get_offsets()
        copy.set_offsets(x, y)
        copy.set_visible(layer.get_visible())
        copy.set_blend_space(layer.get_blend_space())
        copy.set_composite_space(layer.get_composite_space())
        copy.set_composite_mode(layer.get_composite_mode())
        copy.set_color_tag(layer.get_color_tag())
        copy.set_lock_position(layer.get_lock_position())
        copy.set_lock_visibility(layer.get_lock_visibility())
        _copy_buffer(layer, copy)
        mask = layer.get_mask()
        if mask is not None:
            new_mask = copy.create_mask(Gimp.AddMaskType.WHITE)
            _copy_buffer(mask, new_mask)
            copy.add_mask(new_mask)
            copy.set_apply_mask(layer.get_apply_mask())
        for name in layer.get_parasite_list():
            if name not in _TEXT_PARASITES:
                copy.attach_parasite(layer.get_parasite(name))
    except Exception:
        copy.delete()
        raise
    return copy


def _copy_buffer(source: Gimp.Drawable, target: Gimp.Drawable) -> None:
    """Every pixel of ``source`` into ``target`` (same size), in the source's own format."""
    babl = Babl.get_name(source.get_format())
    rect = Gegl.Rectangle.new(0, 0, source.get_width(), source.get_height())
    _set(target, rect, babl, _get(source, rect, babl))


def copy_filters(source: Gimp.Drawable, target: Gimp.Drawable) -> list[str]:
    """``source``'s non-destructive effects, in order, onto ``target``, which must be in an
    image already (see ``plain_copy``).  GIMP 3.0 can read neither an effect's auxiliary
    inputs nor its clipping or compositing options, so those are the operation's defaults on
    the copy.  An effect GIMP will not copy is skipped whole, so the dream it decorates is
    not lost; returns the names of those skipped."""
    skipped = []
    # get_filters() lists the top effect first; append_filter() puts each new one on top.
    for effect in reversed(source.get_filters()):
        twin = None
        try:
            twin = Gimp.DrawableFilter.new(target, effect.get_operation_name(),
                                           effect.get_name())
            settings, twin_settings = effect.get_config(), twin.get_config()
            for spec in settings.list_properties():
                if spec.flags & GObject.ParamFlags.WRITABLE and not (
                        spec.flags & GObject.ParamFlags.CONSTRUCT_ONLY):
                    twin_settings.set_property(spec.name, settings.get_property(spec.name))
            twin.set_opacity(effect.get_opacity())
            twin.set_blend_mode(effect.get_blend_mode())
            twin.set_visible(effect.get_visible())
            target.append_filter(twin)
            if twin.get_id() not in [f.get_id() for f in target.get_filters()]:
                raise RuntimeError("not appended")  # a refused append raises nothing
        except Exception:
            if twin is not None:
                # Never appended, it would keep its layer alive (GIMP 3.0.4); appended,
                # deleting takes it off again: no half-copied effect stays.
                twin.delete()
            skipped.append(effect.get_name())
    return skipped
