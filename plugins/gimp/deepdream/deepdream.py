#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters › Artistic › DeepDream…

Sends the active layer (or the selection's part of it) to the local DeepDream daemon and
adds the dream as a new layer directly above, in one undo step.  The user's layer is never
touched: on any error or cancel the image stays exactly as it was.
"""

from __future__ import annotations

import os
import sys
import traceback

# The installer puts the protocol package (and, where needed, pyzmq/msgpack) in vendor/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
import daemon_link  # noqa: E402
import pixel_io  # noqa: E402
from deepdream_protocol import layer_changes  # noqa: E402
from deepdream_protocol.presets import (  # noqa: E402
    PRESETS,
    find_preset,
    preset_fill,
    unset_from_preset,
)
from deepdream_protocol.settings import SETTINGS, wire_settings  # noqa: E402
from gi.repository import Gimp, GimpUi, Gio, GLib, GObject  # noqa: E402

PROCEDURE = "plug-in-deepdream"
USE_SELECTION = "use-selection"
#: a switch beside the guide's file chooser: GTK's chooser button cannot be emptied once a
#: file is chosen, and GIMP remembers it, so this is how a later dream goes unguided
USE_GUIDE = "use-guide"
#: the preset choice that names no preset (the settings table's empty name)
NO_PRESET = "none"
_RW = GObject.ParamFlags.READWRITE
#: shown at once in the dialog; any other setting goes under "More settings".
EVERYDAY = ("preset", "model", "layer", "iterations", "octaves", "octave-scale", "step",
            "jitter", "seed", "strength", "keep-colors", "seamless")


class DreamFailed(Exception):
    """A one-line message for the user; the image has not been changed."""


def argument(setting: str) -> str:
    """The PDB argument (and config property) of a shared setting: GIMP names them with
    dashes where the settings table has underscores."""
    return setting.replace("_", "-")


def preset_choice() -> Gimp.Choice:
    """The presets' drop-down: "none", then each preset under the name a script gives."""
    choice = Gimp.Choice.new()
    choice.add(NO_PRESET, 0, "None", "the settings as they are")
    for number, preset in enumerate(PRESETS.values(), 1):
        choice.add(preset.name, number, preset.name.replace("-", " ").capitalize(),
                   preset.description)
    return choice


#: settings that name a file: file arguments, which the dialog offers a file chooser for
FILE_SETTINGS = ("guide",)


def setting_value(config: Gimp.ProcedureConfig, name: str) -> object:
    """A setting as the shared table has it: a file argument as its path ("" for none)."""
    value = config.get_property(argument(name))
    if name in FILE_SETTINGS:
        return (value.get_path() or value.get_uri()) if value is not None else ""
    return value


def set_setting(config: Gimp.ProcedureConfig, name: str, value: object) -> None:
    if name in FILE_SETTINGS:
        value = Gio.File.new_for_commandline_arg(value) if value else None
    config.set_property(argument(name), value)


def add_arguments(procedure: Gimp.Procedure) -> None:
    """PDB arguments generated from the shared settings table (``argument`` names them)."""
    for s in SETTINGS:
        name, label = argument(s.name), "_" + s.label  # "_": the dialog's mnemonic
        blurb = s.help
        if s.name == "preset":
            # GIMP's ProcedureConfig cannot say which arguments a script set, hence the
            # rule for defaults (``config_values``) and its way round.
            procedure.add_choice_argument(
                name, label,
                "a named look; in the dialog it fills in the settings below, which then "
                "run as shown; in a script a setting left at its default takes the preset's "
                f"value (to keep one at its default, give {NO_PRESET} and every setting of "
                "the look)",
                preset_choice(), NO_PRESET, _RW)
        elif s.name in FILE_SETTINGS:
            procedure.add_file_argument(name, label, blurb, Gimp.FileChooserAction.OPEN,
                                        True, None, _RW)
        elif s.kind is bool:
            procedure.add_boolean_argument(name, label, blurb, s.default, _RW)
        elif s.kind is int:
            procedure.add_int_argument(name, label, blurb, int(s.minimum), int(s.maximum),
                                       s.default, _RW)
        elif s.kind is float:
            procedure.add_double_argument(name, label, blurb, s.minimum, s.maximum,
                                          s.default, _RW)
        else:
            procedure.add_string_argument(name, label, blurb, s.default, _RW)
    procedure.add_boolean_argument(USE_SELECTION, "_Use selection",
                                   "dream only inside the selection (feathering respected)",
                                   True, _RW)
    # (last, so that no argument a script gives by position moves; the dialog shows it
    # under the guide's chooser)
    procedure.add_boolean_argument(USE_GUIDE, "Use the guide image",
                                   "dream towards the guide image chosen above (off: "
                                   "unguided, the file stays chosen for later)", True, _RW)


def layer_name(values: dict) -> str:
    """Names the result after what made it, so several dreams can be told apart."""
    model = " ".join(filter(None, (values["model"], values["layer"])))  # (no layer: default)
    look = (f"preset {values['preset']}" if values["preset"]
            else f"{model}, {values['iterations']}×{values['octaves']}")
    return f"DeepDream ({look}, seed {values['seed']})"


def dreamable_layer(image: Gimp.Image, drawables: list) -> Gimp.Layer:
    """The one layer to dream, or DreamFailed saying what to change first."""
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise DreamFailed("this image is indexed; convert it with Image › Mode › RGB first "
                          "(dreams need RGB or grayscale)")
    if image.get_floating_sel() is not None:
        raise DreamFailed("anchor the floating selection or make it a layer first")
    if len(drawables) == 1 and isinstance(drawables[0], Gimp.LayerMask):
        # Adding a layer mask selects it for editing: a filter then gets the mask.
        owner = Gimp.Layer.from_mask(drawables[0])
        raise DreamFailed(f"the layer mask of {owner.get_name()!r} is selected; click the "
                          "layer's own thumbnail in the Layers dialog to dream the layer")
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        raise DreamFailed("select exactly one layer to dream (not a mask or channel)")
    if drawables[0].get_image().get_id() != image.get_id():  # only a script can do this
        raise DreamFailed("the layer belongs to another image than the one given")
    if drawables[0].is_group():
        raise DreamFailed("a layer group cannot be dreamed; select one of its layers")
    return drawables[0]


#: said when the layer's size changed while the daemon dreamed it
RESIZED = ("the layer was scaled, cropped or resized while dreaming, so the dream no longer "
           "fits it; nothing was added")
#: a layer of swapped sides whose dreamed pixels are not there as read: turned a quarter and
#: painted on can look like scaled, so the dream is not guessed onto it
SWAPPED_AND_CHANGED = ("the layer's sides were swapped and its selected pixels changed "
                       "while dreaming (turned a quarter and painted on, or scaled), so the "
                       "dream no longer fits it; nothing was added")
#: said when the dreamed pixels changed while the daemon dreamed them
CHANGED = ("The dream was added, but the layer changed while it was dreamed: the dream shows "
           "it as it was and covers the changes, which stay on the layer.")


def dream_into_new_layer(image: Gimp.Image, drawables: list, values: dict,
                         use_selection: bool) -> list[str]:
    """Adds the dream as a new layer above the active one; returns what to tell the user
    besides: the layer's effects GIMP could not copy onto it (the dream keeps the others),
    and whether the dreamed pixels changed meanwhile."""
    active = dreamable_layer(image, drawables)
    size = (active.get_width(), active.get_height())
    try:
        fmt = pixel_io.host_format(active)
        region = pixel_io.dream_region(image, active, use_selection)
        pixels = pixel_io.read_pixels(active, region, fmt)
        mask = pixel_io.read_mask(image, active, region, fmt) if region.masked else None
    except pixel_io.PixelError as e:
        raise DreamFailed(str(e)) from None

    Gimp.progress_init("DeepDream")
    try:
        dreamed = daemon_link.dream(wire_settings(values), pixels, region.width,
                                    region.height, fmt.wire, mask, fmt.mask_dtype,
                                    on_progress=Gimp.progress_update,
                                    on_text=Gimp.progress_set_text)
    except daemon_link.LinkError as e:
        raise DreamFailed(str(e)) from None
    finally:
        Gimp.progress_end()

    # Only now, with the dream in hand, is the image changed (one undo group, below).
    still_dreamable(image, active, size)
    region, dreamed, changed = place_dream(active, size, region, fmt, pixels, mask, dreamed)
    try:
        layer = result_layer(image, active, layer_name(values))
    except Exception as e:
        raise DreamFailed(f"could not make the result layer: {one_line(e)}") from None
    try:
        # Written before it joins the image: a layer in a group with "Lock pixels" on is
        # locked too, and GIMP kills a plug-in that writes to a locked drawable.
        pixel_io.write_pixels(layer, region, fmt, dreamed)
    except Exception as e:
        layer.delete()
        raise DreamFailed(f"could not write the result layer: {one_line(e)}") from None
    image.undo_group_start()
    inserted, skipped = False, []
    try:
        inserted = image.insert_layer(layer, active.get_parent(),
                                      image.get_item_position(active))
        if not inserted:
            raise RuntimeError("GIMP refused to insert it")
        if not layer.get_filters():  # a plain copy: its effects join it in the image
            skipped = pixel_io.copy_filters(active, layer)
    except Exception as e:  # whatever failed, the image ends as it was
        if inserted:
            image.remove_layer(layer)
        else:
            layer.delete()
        raise DreamFailed(f"could not add the result layer: {one_line(e)}") from None
    finally:
        image.undo_group_end()
    notes = [CHANGED] if changed else []
    if skipped:
        notes.append("The dream was added, but GIMP could not copy these layer effects onto "
                     f"it: {', '.join(skipped)}")
    return notes


def place_dream(active: Gimp.Layer, size: tuple[int, int], region: pixel_io.Region,
                fmt: pixel_io.HostFormat, read: bytes, mask: bytes | None,
                dreamed: bytes) -> tuple[pixel_io.Region, bytes, bool]:
    """Where the dream goes on ``active`` (``size`` when it was read) as it is now, and the
    dream to write there.  GIMP stays usable while the daemon dreams: a layer (or the
    image) flipped or rotated meanwhile gets the dream turned with it, on the pixels it was
    dreamed from; what the selection left out is taken as the layer has it now; and the
    flag says whether the selected pixels changed besides (painted on, filtered): the
    dream covers them."""
    rect = layer_changes.Rect(region.x, region.y, region.width, region.height)
    width, height = region.width, region.height

    read_now = pixel_io.reader(active, fmt)

    def now(place: layer_changes.Rect) -> bytes:
        return read_now(*place.args())

    size_now = (active.get_width(), active.get_height())
    found = layer_changes.find(now, read, rect, None,
                               layer_changes.turned_in_place(rect, size, size_now))
    dreamed = layer_changes.turn_pixels(dreamed, width, height, found.turn)
    place = pixel_io.Region(*found.rect.args(), region.masked)
    if found.current is None:  # the pixels as they were read (the common case: one read)
        return place, dreamed, False
    selected = changed = None
    if mask is None:
        changed = found.changed
    else:  # (the mask, one byte a pixel, only now: a float one takes a while to convert)
        selected = layer_changes.turn_pixels(pixel_io.selected(mask, fmt), width, height,
                                             found.turn)
        expected = layer_changes.turn_pixels(read, width, height, found.turn)
        changed = layer_changes.changed_where_selected(expected, found.current, selected)
    if changed and size_now != size:
        # sides swapped and the selected pixels not found as read: scaled, as likely
        raise DreamFailed(SWAPPED_AND_CHANGED)
    if selected is not None:
        dreamed = layer_changes.splice_unmasked(found.current, dreamed, selected,
                                                len(dreamed) // (width * height))
    return place, dreamed, changed


def still_dreamable(image: Gimp.Image, active: Gimp.Layer, size: tuple[int, int]) -> None:
    """GIMP stays usable while the daemon dreams: refuse, with the image as it is, when the
    dream no longer fits the layer or the image can no longer take it.  A layer moved,
    restacked or given another precision meanwhile gets its dream where and as it now is
    (the pixels are written in the format they were read in, and babl converts)."""
    if not active.is_valid() or active.get_image().get_id() != image.get_id():
        raise DreamFailed("the layer was deleted while dreaming; nothing was added")
    if (active.get_width(), active.get_height()) not in (size, size[::-1]):
        raise DreamFailed(RESIZED)  # (sides swapped: turned a quarter, see place_dream)
    try:
        dreamable_layer(image, [active])  # e.g. a paste left floating, adding would anchor
    except DreamFailed as e:
        raise DreamFailed(f"the image changed while dreaming, so nothing was added: {e}"
                          ) from None


def one_line(error: Exception) -> str:
    text = error.message if isinstance(error, GLib.Error) else str(error)
    return " ".join(text.split()) or type(error).__name__


def drawn_from_elsewhere(layer: Gimp.Layer) -> bool:
    """Whether GIMP draws ``layer`` from something other than its pixels: its text, or (GIMP
    3.2 and later) a path or a linked file."""
    if isinstance(layer, Gimp.TextLayer):
        return True
    return any(getattr(layer, check, lambda: False)()
               for check in ("is_text_layer", "is_vector_layer", "is_link_layer"))


def result_layer(image: Gimp.Image, active: Gimp.Layer, name: str) -> Gimp.Layer:
    """A copy of ``active`` to dream into, not yet in the image and writable: "Lock pixels"
    and "Lock alpha" stay on the user's layer only.  A text layer's copy would still be a
    text layer, whose next edit with the Text tool renders the text again and throws the
    dream away, so a text layer becomes a plain pixel layer (as do GIMP 3.2's vector and
    link layers, drawn again from their path or file: not run here, where GIMP is 3.0).
    A layer with effects becomes one too, its effects added only once it is in the image
    (``pixel_io.plain_copy`` says why): ``Layer.copy()`` would copy them onto a layer
    outside the image."""
    if drawn_from_elsewhere(active) or active.get_filters():
        layer = pixel_io.plain_copy(image, active)
    else:
        layer = active.copy()
    try:
        layer.set_name(name)
        layer.set_lock_content(False)
        layer.set_lock_alpha(False)
    except Exception:
        layer.delete()
        raise
    return layer


def follow_preset(config: Gimp.ProcedureConfig) -> int:
    """Make naming a preset in ``config`` fill its other settings with the preset's look
    (every one but the seed, as GIMP's own filter presets fill a dialog), so the dialog
    shows what will run.  Only another preset fills: a notification of the same one again
    keeps the changes made since; choosing none and the preset again fills anew.  A preset
    set together with other settings (the dialog's Reset and Load Saved Settings set them
    all, notifications held until the end, in no set order) keeps the values it came with.
    Returns the handler id, for ``config.disconnect``."""
    names = [s.name for s in SETTINGS]

    def now() -> dict:
        return {name: setting_value(config, name) for name in names}

    seen = {"values": now(), "together": False, "filling": False,
            "shown": getattr(find_preset(config.get_property("preset")), "name", "")}

    def notified(config: Gimp.ProcedureConfig, pspec: GObject.ParamSpec) -> None:
        if seen["filling"]:
            return
        values, before = now(), seen["values"]
        if pspec.name != "preset":
            # the preset changed as well, its notification still to come: set together
            seen["together"] |= values["preset"] != before["preset"]
            seen["values"] = {**values, "preset": before["preset"]}
            return
        together = seen["together"] or any(values[n] != before[n] for n in names
                                           if n != "preset")
        name = getattr(find_preset(values["preset"]), "name", "")
        if name != seen["shown"] and not together:
            seen["filling"] = True
            try:
                for setting, value in preset_fill(name).items():  # none: nothing
                    set_setting(config, setting, value)
            finally:
                seen["filling"] = False
        seen.update(values=now(), together=False, shown=name)

    return config.connect("notify", notified)


def config_values(config: Gimp.ProcedureConfig, run_mode: Gimp.RunMode) -> dict:
    """The settings to dream with.  From the dialog (and "Repeat", which reuses what it
    ran) they are sent as they are.  A script's PDB call gives every argument and cannot
    say which it set, so there a setting left at its default takes the named preset's
    value; the settings used are written back into ``config`` (GIMP's last values)."""
    values = {s.name: setting_value(config, s.name) for s in SETTINGS}
    # GIMP hands an empty string argument back as None.
    values.update({s.name: values[s.name] or "" for s in SETTINGS if s.kind is str})
    if values["preset"] == NO_PRESET:
        values["preset"] = ""
    if not config.get_property(USE_GUIDE):
        values["guide"] = ""
    if run_mode == Gimp.RunMode.NONINTERACTIVE:
        resolved = unset_from_preset(values)
        for name, value in resolved.items():
            if value != values[name]:
                set_setting(config, name, value)
        values = resolved
    return values


def show_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig) -> bool:
    """Preset, model and layer first, the everyday settings below, the rest folded away.
    Naming a preset fills in its settings (``follow_preset``)."""
    GimpUi.init(PROCEDURE)
    following = follow_preset(config)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    names = [argument(s.name) for s in SETTINGS]
    names.insert(names.index(argument("guide")) + 1, USE_GUIDE)  # under the guide's chooser
    shown = [n for n in names if n in EVERYDAY]
    more = [n for n in names if n not in EVERYDAY]
    if more:
        dialog.get_label("more-label", "More settings", False, False)
        dialog.fill_box("more-box", more)
        dialog.fill_expander("more", "more-label", False, "more-box")
        shown.append("more")
    dialog.fill([*shown, USE_SELECTION])
    accepted = dialog.run()
    dialog.destroy()
    config.disconnect(following)
    return accepted


def run(procedure: Gimp.Procedure, run_mode: Gimp.RunMode, image: Gimp.Image,
        drawables: list, config: Gimp.ProcedureConfig, data: object) -> Gimp.ValueArray:
    try:
        # What cannot be dreamed is refused before the dialog asks for settings.
        dreamable_layer(image, drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        values = config_values(config, run_mode)
        notes = dream_into_new_layer(image, drawables, values,
                                     config.get_property(USE_SELECTION))
    except DreamFailed as e:
        return failed(procedure, str(e))
    except Exception as e:  # a bug or a broken setup: still one line, not a crashed plug-in
        traceback.print_exc()  # the details, for a bug report, on GIMP's terminal
        return failed(procedure, f"unexpected error: {type(e).__name__}: {one_line(e)}")
    Gimp.displays_flush()
    if notes:  # GIMP drops a message returned with a success; its domain names us
        Gimp.message(" ".join(notes))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def failed(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error(f"DeepDream: {message}"))


class DeepDream(Gimp.PlugIn):
    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_query_procedures(self) -> list[str]:
        return [PROCEDURE]

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("_DeepDream…")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Dream the active layer with a neural network",
            "Sends the active layer (only the selection's part when there is a selection) to "
            "the local DeepDream daemon and adds the result as a new layer above it.",
            name)
        procedure.set_attribution("DeepDream Studio", "DeepDream Studio", "2026")
        add_arguments(procedure)
        return procedure


if __name__ == "__main__":
    Gimp.main(DeepDream.__gtype__, sys.argv)
