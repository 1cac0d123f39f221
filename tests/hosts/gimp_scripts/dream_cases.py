"""Run inside gimp-console-3.0 (python-fu-eval): build test images, call plug-in-deepdream
through the PDB and print one ``FACT {json}`` line per case for tests/hosts/test_gimp.py.

Environment: DD_CASES (comma-separated case names), DD_PLUGIN_DIR (the installed plug-in
folder: its pixel_io module reads layers in their own format), DD_SETTINGS (JSON PDB values).
"""

import hashlib
import json
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import numpy as np  # noqa: E402
from gi.repository import Gegl, Gimp, Gio  # noqa: E402
from images import add_layer, image_with_layer, new_image  # noqa: E402

sys.path[:0] = [os.environ["DD_PLUGIN_DIR"], os.path.join(os.environ["DD_PLUGIN_DIR"], "vendor")]
import pixel_io  # noqa: E402
from pdb_call import fact as emit  # noqa: E402
from pdb_call import layers_left, run_deepdream  # noqa: E402

IT = Gimp.ImageType


def pixels(layer, babl):
    """The layer's bytes in babl format, one row of bytes per pixel."""
    w, h = layer.get_width(), layer.get_height()
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, babl,
                                  Gegl.AbyssPolicy.NONE)
    return np.frombuffer(bytes(data), np.uint8).reshape(h * w, -1)


def selection_over(img, layer):
    """The selection (0..1) under each pixel of the layer; 1 everywhere without selection."""
    w, h = layer.get_width(), layer.get_height()
    if Gimp.Selection.is_empty(img):
        return np.ones(h * w, np.float32)
    _, ox, oy = layer.get_offsets()
    data = img.get_selection().get_buffer().get(Gegl.Rectangle.new(ox, oy, w, h), 1.0,
                                                "Y float", Gegl.AbyssPolicy.NONE)
    return np.frombuffer(bytes(data), np.float32)


def stack(img):
    def walk(layers):
        out = []
        for layer in layers:
            out.append(layer.get_id())
            if layer.is_group():
                out.append(walk(layer.get_children()))
        return out
    return walk(img.get_layers())


def next_item_id(img):
    """The id GIMP gives the next item it makes (ids count up), found by making one."""
    probe = Gimp.Layer.new(img, "probe", 1, 1, IT.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL)
    try:
        return probe.get_id() + 1
    finally:
        probe.delete()


def siblings_of(img, parent):
    return parent.get_children() if parent else img.get_layers()


def locks(layer):
    return {"pixels": layer.get_lock_content(), "alpha": layer.get_lock_alpha(),
            "position": layer.get_lock_position()}


def looks(layer):
    """How the layer shows in the image, besides its pixels: its mask and effects included."""
    mask = layer.get_mask()
    return {"opacity": layer.get_opacity(), "mode": layer.get_mode().value_nick,
            "visible": layer.get_visible(), "color_tag": layer.get_color_tag().value_nick,
            "blend_space": layer.get_blend_space().value_nick,
            "composite_mode": layer.get_composite_mode().value_nick,
            "mask": None if mask is None else
            [layer.get_apply_mask(), pixels(mask, "Y u8").tobytes().hex()],
            "effects": [effect_facts(f) for f in layer.get_filters()]}


def effect_facts(effect):
    config = effect.get_config()
    settings = {}
    for spec in config.list_properties():
        value = config.get_property(spec.name)
        settings[spec.name] = (list(value.get_rgba()) if hasattr(value, "get_rgba")
                               else value if isinstance(value, (bool, int, float, str))
                               else type(value).__name__)
    return {"operation": effect.get_operation_name(), "opacity": effect.get_opacity(),
            "mode": effect.get_blend_mode().value_nick, "visible": effect.get_visible(),
            "settings": settings}


def parasites(layer):
    return {name: bytes(layer.get_parasite(name).get_data()).decode("utf-8", "replace")
            for name in layer.get_parasite_list()}


def save_xcf(img, name):
    path = os.path.join(os.environ["HOME"], name)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(path), None)
    return path


def reloaded_is_text(img, position):
    """Whether the top-level layer at position is a text layer once saved and opened again."""
    path = save_xcf(img, "reloaded.xcf")
    loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    try:
        return loaded.get_layers()[position].is_text_layer()
    finally:
        loaded.delete()


def observe(case, img, layer, values):
    """Run the plug-in on layer (or a layer's mask) and report what a user would check."""
    drawable = layer
    if isinstance(layer, Gimp.LayerMask):
        layer = Gimp.Layer.from_mask(layer)
    # indexed layers have no host format of their own; babl reads them as RGBA
    babl = "R'G'B'A u8" if layer.is_indexed() else pixel_io.host_format(layer).babl
    before = pixels(layer, babl)
    stack_before = stack(img)
    precision = img.get_precision().value_nick
    parent, position = layer.get_parent(), img.get_item_position(layer)
    count_before = len(siblings_of(img, parent))
    locks_before = locks(layer)
    looks_before = looks(layer)
    first_new_id = next_item_id(img)
    status, error = run_deepdream(img, drawable, values)
    fact = {"case": case, "status": status, "error": error, "babl": babl,
            "stack_unchanged": stack(img) == stack_before,
            "original_identical": bool(np.array_equal(pixels(layer, babl), before)),
            "original_looks_kept": looks(layer) == looks_before,
            "new_items": layers_left(img, first_new_id),
            "precision_before": precision, "precision_after": img.get_precision().value_nick}
    fact["original_locks"] = [locks(layer), locks_before]
    if status == "success":
        siblings = siblings_of(img, parent)
        new = siblings[position]
        inside = (selection_over(img, layer) if values.get("use-selection", True)
                  else np.ones(layer.get_width() * layer.get_height(), np.float32))
        changed = np.any(pixels(new, babl) != before, axis=1)
        full = inside >= 0.999
        fact.update({
            "new_name": new.get_name(),
            "new_above_original": siblings[position + 1].get_id() == layer.get_id(),
            "same_parent": (new.get_parent().get_id() if new.get_parent() else None)
            == (parent.get_id() if parent else None),
            "layers_added": len(siblings) - count_before,
            "offsets": list(new.get_offsets()[1:]), "original_offsets":
            list(layer.get_offsets()[1:]),
            "size": [new.get_width(), new.get_height()],
            "original_size": [layer.get_width(), layer.get_height()],
            "bpp": new.get_bpp(), "original_bpp": layer.get_bpp(),
            "changed_where_selected": float(changed[full].mean()) if full.any() else None,
            "changed_where_unselected": int(changed[inside == 0].sum()),
            "unselected_pixels": int((inside == 0).sum()),
            "is_text": new.is_text_layer() or isinstance(new, Gimp.TextLayer),
            "locks": locks(new),
            "looks": looks(new), "original_looks": looks(layer),
            "parasites": parasites(new), "original_parasites": parasites(layer),
        })
        fact["result_digest"] = hashlib.sha256(pixels(new, babl).tobytes()).hexdigest()[:16]
        if case == "text":
            fact["reloaded_is_text"] = reloaded_is_text(img, position)
        if case == "from_noise_clear":
            fact["opaque"] = float((pixels(new, "R'G'B'A u8")[:, 3] == 255).mean())
    emit(**fact)


def case_rgb_u8(values):
    return image_with_layer("rgb", IT.RGB_IMAGE)


def case_rgba_u16(values):
    return image_with_layer("rgba16", IT.RGBA_IMAGE, Gimp.Precision.U16_NON_LINEAR)


def case_linear_float(values):
    return image_with_layer("linear", IT.RGBA_IMAGE, Gimp.Precision.FLOAT_LINEAR)


def case_gray(values):
    return image_with_layer("gray", IT.GRAYA_IMAGE, base=Gimp.ImageBaseType.GRAY)


def case_group_offsets(values):
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR, 96, 72)
    add_layer(img, "background", IT.RGB_IMAGE, 96, 72)
    group = Gimp.GroupLayer.new(img, "group")
    img.insert_layer(group, None, 0)
    layer = add_layer(img, "inner", IT.RGBA_IMAGE, 40, 30, parent=group, offsets=(23, 17))
    add_layer(img, "inner top", IT.RGBA_IMAGE, 20, 20, parent=group, position=0)
    return img, layer


def case_feathered_selection(values):
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR, 96, 72)
    layer = add_layer(img, "selected", IT.RGBA_IMAGE, 64, 48, offsets=(16, 12))
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 30, 24, 36, 28)
    Gimp.Selection.feather(img, 8)
    return img, layer


def case_profiled_selection(values):
    """16-bit in a colour space other than GIMP's built-in sRGB, dreamed inside a selection."""
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U16_NON_LINEAR)
    img.set_color_profile(Gimp.ColorProfile.new_rgb_srgb_linear())
    layer = add_layer(img, "profiled", IT.RGBA_IMAGE)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 40, 30)
    Gimp.Selection.feather(img, 6)
    return img, layer


def case_double(values):
    return image_with_layer("double", IT.RGBA_IMAGE, Gimp.Precision.DOUBLE_NON_LINEAR)


def case_selection_ignored(values):
    """use-selection off: the whole layer is dreamed although a selection exists."""
    values["use-selection"] = False
    img, layer = image_with_layer("ignored", IT.RGB_IMAGE)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 20, 20)
    return img, layer


def case_small_selection(values):
    """A selection narrower than the dreamed layer needs (the plug-in sends only its
    bounding box) on a bigger layer: dreamed, its box's unselected corners kept."""
    img, layer = image_with_layer("small", IT.RGBA_IMAGE)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 30, 6, 5, 34)
    return img, layer


def locked(lock):
    img, layer = image_with_layer(f"locked {lock}", IT.RGBA_IMAGE)
    getattr(layer, f"set_lock_{lock}")(True)
    return img, layer


def case_locked_pixels(values):
    return locked("content")


def case_locked_alpha(values):
    return locked("alpha")


def case_locked_position(values):
    return locked("position")


def case_locked_group(values):
    """The layer's group has "Lock pixels" on, which locks every layer inside it."""
    img, layer = case_group_offsets(values)
    layer.get_parent().set_lock_content(True)
    return img, layer


def case_text(values):
    """A text layer, half transparent, multiplying, hidden, off the image's corner, with a
    colour tag, a position lock, a note of its own and two layer effects, in an image saved
    once (saving leaves GIMP's text parasite on it)."""
    img, _ = image_with_layer("under text", IT.RGB_IMAGE)
    text = Gimp.TextLayer.new(img, "Dream", Gimp.context_get_font(), 24.0, Gimp.Unit.pixel())
    img.insert_layer(text, None, 0)
    text.set_offsets(5, 9)
    text.set_opacity(70.0)
    text.set_mode(Gimp.LayerMode.MULTIPLY)
    text.set_visible(False)
    text.set_color_tag(Gimp.ColorTag.ORANGE)
    text.set_lock_position(True)
    text.attach_parasite(Gimp.Parasite.new("deepdream-test-note", Gimp.PARASITE_PERSISTENT,
                                           b"keep me"))
    add_effects(text)
    save_xcf(img, "text.xcf")
    return img, text


def add_effects(layer):
    """Two layer effects: a blur at 80 %, and a hidden red drop shadow above it."""
    blur = Gimp.DrawableFilter.new(layer, "gegl:gaussian-blur", None)
    blur.get_config().set_property("std-dev-x", 3.0)
    blur.get_config().set_property("std-dev-y", 1.5)
    blur.set_opacity(0.8)
    layer.append_filter(blur)
    shadow = Gimp.DrawableFilter.new(layer, "gegl:dropshadow", None)
    shadow.get_config().set_property("x", 4.0)
    shadow.get_config().set_property("color", Gegl.Color.new("red"))
    shadow.set_blend_mode(Gimp.LayerMode.NORMAL)
    shadow.set_visible(False)
    layer.append_filter(shadow)


def case_effects(values):
    """A pixel layer with layer effects, a layer mask (made from its alpha), a blend mode,
    part opacity and hidden, inside a group."""
    img, _ = case_group_offsets(values)
    layer = img.get_layers()[0].get_children()[1]
    layer.set_opacity(60.0)
    layer.set_mode(Gimp.LayerMode.SCREEN)
    layer.set_visible(False)
    layer.add_mask(layer.create_mask(Gimp.AddMaskType.ALPHA))
    layer.set_apply_mask(False)
    add_effects(layer)
    return img, layer


def case_floating(values):
    """A floating selection must be anchored first: refused, nothing changed."""
    img, layer = image_with_layer("under floating", IT.RGB_IMAGE)
    Gimp.edit_copy([layer])
    Gimp.edit_paste(layer, False)
    return img, layer


def case_unknown_model(values):
    values["model"] = "no-such-model"
    return case_rgb_u8(values)


def case_unknown_layer(values):
    values["layer"] = "no_such_layer"
    return case_rgb_u8(values)


def case_selection_beside(values):
    """Two selected squares in opposite corners: their bounding box covers the layer between
    them, but no selected pixel lies on it."""
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR, 96, 72)
    layer = add_layer(img, "between", IT.RGBA_IMAGE, 40, 30, offsets=(28, 21))
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 20, 20)
    img.select_rectangle(Gimp.ChannelOps.ADD, 76, 52, 20, 20)
    return img, layer


def case_foreign_layer(values):
    """A script passes a layer of another image (left for GIMP to free at exit)."""
    img, _ = image_with_layer("target", IT.RGB_IMAGE)
    _, other = image_with_layer("elsewhere", IT.RGBA_IMAGE)
    return img, other


def case_interactive_group(values):
    """Run from the menu on a layer group: refused before the dialog opens (gimp-console has
    no display, so a dialog could not open here at all)."""
    values["run-mode"] = Gimp.RunMode.INTERACTIVE
    img, _ = case_group_offsets(values)
    return img, img.get_layers()[0]


def case_mask_selected(values):
    """The layer's mask is the selected drawable, as GIMP leaves it after Add Layer Mask."""
    img, layer = image_with_layer("masked", IT.RGBA_IMAGE)
    layer.add_mask(layer.create_mask(Gimp.AddMaskType.WHITE))
    return img, layer.get_mask()


def case_from_noise_clear(values):
    """A new, transparent layer dreamed from noise: a picture of its own, which shows."""
    values["from-noise"] = True
    img = new_image(Gimp.ImageBaseType.RGB, Gimp.Precision.U8_NON_LINEAR)
    layer = Gimp.Layer.new(img, "clear", img.get_width(), img.get_height(), IT.RGBA_IMAGE,
                           100, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    layer.fill(Gimp.FillType.TRANSPARENT)
    return img, layer


def case_guided(values):
    """A guide image given as a file (a file argument: the dialog offers a file chooser)."""
    values["guide"] = Gio.File.new_for_path(os.environ["DD_GUIDE"])
    return image_with_layer("guided", IT.RGB_IMAGE)


def case_guided_off(values):
    """A guide still chosen (GIMP remembers it, and its chooser cannot be emptied) with
    "Use the guide image" off: the dream goes unguided."""
    values["guide"] = Gio.File.new_for_path(os.environ["DD_GUIDE"])
    values["use-guide"] = False
    return image_with_layer("guided", IT.RGB_IMAGE)


def case_unguided(values):
    return image_with_layer("guided", IT.RGB_IMAGE)


def case_guide_missing(values):
    values["guide"] = Gio.File.new_for_path(os.environ["DD_GUIDE"] + ".gone")
    return image_with_layer("guided", IT.RGB_IMAGE)


def case_indexed(values):
    img, layer = image_with_layer("indexed", IT.RGB_IMAGE)
    img.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16,
                        False, False, "")
    return img, layer


CASES = {name[len("case_"):]: fn for name, fn in list(globals().items())
         if name.startswith("case_")}

for case in os.environ["DD_CASES"].split(","):
    values = json.loads(os.environ.get("DD_SETTINGS", "{}"))  # a case may change its own
    img, layer = CASES[case](values)
    observe(case, img, layer, values)
    img.delete()
