"""The Krita plug-in's pure parts, without Krita: wire formats, masks, settings.

The same code runs inside real Krita in test_krita.py; these pin the decisions that do not
need Krita (which layout and transfer a colour space maps to, how settings are checked).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "krita"))

from deepdream_krita import changes, job, preferences  # noqa: E402
from deepdream_krita.pixels import (  # noqa: E402
    DreamError,
    Rect,
    wire_format,
    working_space,
)
from deepdream_protocol import layer_changes  # noqa: E402
from deepdream_protocol.layer_changes import splice_unmasked  # noqa: E402
from deepdream_protocol.pixels import PixelFormat  # noqa: E402
from deepdream_protocol.presets import preset_fill  # noqa: E402
from deepdream_protocol.settings import wire_settings  # noqa: E402


@pytest.mark.parametrize(("space", "expected"), [
    (("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("BGRA", "u8", "srgb")),
    (("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("BGRA", "u16", "srgb")),
    # Krita's default 16-bit and float RGB profile is linear light
    (("RGBA", "U16", "sRGB-elle-V2-g10.icc"), PixelFormat("BGRA", "u16", "linear")),
    (("RGBA", "F16", "sRGB-elle-V2-g10.icc"), PixelFormat("RGBA", "f16", "linear")),
    (("RGBA", "F32", "scRGB (linear)"), PixelFormat("RGBA", "f32", "linear")),
    (("RGBA", "F32", "sRGB-elle-V2-srgbtrc.icc"), PixelFormat("RGBA", "f32", "srgb")),
    (("GRAYA", "U8", "Gray-D50-elle-V2-srgbtrc.icc"), PixelFormat("GA", "u8", "srgb")),
    (("GRAYA", "F32", "Gray-D50-elle-V2-g10.icc"), PixelFormat("GA", "f32", "linear")),
])
def test_wire_format_follows_krita_layout_and_profile(space, expected):
    assert wire_format(*space) == expected


@pytest.mark.parametrize("model", ["CMYKA", "LABA", "XYZA", "YCbCrA"])
def test_other_models_need_conversion_to_rgba_of_the_same_depth(model):
    assert wire_format(model, "U16", "whatever") is None
    assert working_space("U16")[:2] == ("RGBA", "U16")
    assert wire_format(*working_space("F32")).dtype == "f32"


def test_unknown_depth_is_a_clear_error():
    with pytest.raises(DreamError, match="colour depth"):
        wire_format("RGBA", "U32", "")


def test_rect_intersection():
    assert Rect(10, 5, 64, 48).intersected(Rect(0, 0, 64, 48)) == Rect(10, 5, 54, 43)
    assert Rect(0, 0, 4, 4).intersected(Rect(10, 10, 4, 4)).empty


def test_splice_takes_unselected_pixels_from_the_original():
    original = bytes(range(0, 30))  # five 6-byte pixels
    dreamed = bytes(range(100, 130))
    mask = bytes([0, 255, 0, 0, 7])
    out = splice_unmasked(original, dreamed, mask, 6)
    assert out[0:6] == original[0:6]
    assert out[6:12] == dreamed[6:12]
    assert out[12:24] == original[12:24]
    assert out[24:30] == dreamed[24:30]


def test_settings_defaults_and_checks():
    values = preferences.complete({"iterations": "3", "use_selection": False})
    assert values["iterations"] == 3
    assert values["use_selection"] is False
    assert values["model"] == "googlenet"  # missing -> the shared default
    with pytest.raises(DreamError, match="unknown setting 'iterationz'"):
        preferences.complete({"iterationz": 3})
    with pytest.raises(DreamError, match="between"):
        preferences.complete({"octaves": 0})
    with pytest.raises(DreamError, match="must be a whole number"):
        preferences.complete({"iterations": 2.5})
    with pytest.raises(DreamError, match="must be true or false"):
        preferences.complete({"seamless": "maybe"})
    for bad in ("inf", "nan", float("-inf")):  # typed into a script or a hand-edited kritarc
        with pytest.raises(DreamError, match="must be a whole number"):
            preferences.complete({"iterations": bad})
        with pytest.raises(DreamError, match="must be a number"):
            preferences.complete({"step": bad})


def test_a_scripts_preset_fills_what_it_leaves_out_and_the_docker_sends_what_it_shows():
    # dream_layer(document, node, {...}): what the script leaves out comes from the preset
    values = preferences.complete({"preset": "deep-objects", "octaves": 4, "seed": 2})
    assert values["octaves"] == 4 and values["seed"] == 2  # given: wins
    assert values["iterations"] == 15 and values["layer"] == "inception4e"
    assert values["transform"] is True and values["use_selection"] is True
    # the docker gives every field: the preset's look shown, octaves set back to 4 (the
    # default), and 4 is what is sent (it used to be dropped, so the preset's 5 ran)
    shown = {**preferences.DEFAULTS, **preset_fill("deep-objects"), "preset": "deep-objects",
             "octaves": 4}
    sent = wire_settings(preferences.complete(shown))
    assert sent["octaves"] == 4 and sent["layer"] == "inception4e" and sent["iterations"] == 15
    assert "use_selection" not in sent
    # an unknown preset is the daemon's to refuse; a half-typed one is saved as typed
    assert preferences.complete({"preset": "deep-"})["iterations"] == 10
    store: dict[str, str] = {}
    preferences.save({**shown, "preset": "deep-"}, store.__setitem__)
    assert store["preset"] == "deep-" and store["octaves"] == "4"


def test_docker_order_puts_presets_first_and_selection_before_colour_toggles():
    names = [s.name for s in preferences.PLUGIN_SETTINGS]
    assert names[0] == "preset"
    assert names.index("use_selection") == names.index("keep_colors") - 1


def test_saved_settings_round_trip_and_bad_values_fall_back():
    store: dict[str, str] = {}
    chosen = {"iterations": 7, "step": 0.5, "seamless": True, "layer": "inception4d"}
    preferences.save(chosen, store.__setitem__)
    loaded = preferences.load(store.get)
    assert {k: loaded[k] for k in chosen} == chosen
    store["octaves"] = "lots"  # a hand-edited kritarc
    assert preferences.load(store.get)["octaves"] == preferences.DEFAULTS["octaves"]


class _Node:
    """The little of krita.Node that job.prepare and PreparedDream.finish look at first."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def type(self) -> str:
        return self.kind

    def name(self) -> str:
        return "layer"


class _ClosedDocument:
    def rootNode(self) -> None:  # noqa: N802 - Krita's name
        return None  # what a closed Document answers


@pytest.mark.parametrize(("kind", "message"), [
    ("grouplayer", "group layers cannot be dreamed; select a paint layer"),
    ("filllayer", "fill layers cannot be dreamed; select a paint layer"),
    ("filterlayer", "filter layers cannot be dreamed; select a paint layer"),
    ("filelayer", "file layers cannot be dreamed; select a paint layer"),
    ("somenewlayer", "layers of this kind cannot be dreamed; select a paint layer"),
])
def test_only_paint_layers_are_dreamed(kind, message):
    with pytest.raises(DreamError) as caught:
        job.prepare(object(), _Node(kind))
    assert str(caught.value) == message


def test_a_document_closed_while_dreaming_gets_nothing_and_says_so():
    prepared = job.PreparedDream(_ClosedDocument(), _Node("paintlayer"), Rect(0, 0, 1, 1),
                                 PixelFormat("BGRA", "u8", "srgb"), b"\0" * 4, None)
    with pytest.raises(DreamError, match=r"^the document was closed; nothing was added$"):
        prepared.finish(b"\0" * 4)


# Where each turn sends pixel (x, y) of a W x H image (Krita: rotating by +90 degrees turns
# the image clockwise, as y points down).
_WHERE = {
    "identity": lambda x, y, w, h: (x, y),
    "mirror_x": lambda x, y, w, h: (w - 1 - x, y),
    "mirror_y": lambda x, y, w, h: (x, h - 1 - y),
    "rotate_180": lambda x, y, w, h: (w - 1 - x, h - 1 - y),
    "rotate_90": lambda x, y, w, h: (h - 1 - y, x),
    "rotate_270": lambda x, y, w, h: (y, w - 1 - x),
    "transpose": lambda x, y, w, h: (y, x),
    "anti_transpose": lambda x, y, w, h: (h - 1 - y, w - 1 - x),
}


def _image(width: int, height: int, bpp: int, seed: int = 0) -> bytes:
    """Every pixel different, and the bytes within a pixel too."""
    return bytes((seed + (y * width + x) * 7 + c * 101) % 251
                 for y in range(height) for x in range(width) for c in range(bpp))


def _turned_by_hand(data: bytes, width: int, height: int, bpp: int, name: str) -> bytes:
    tw, th = (height, width) if name in ("rotate_90", "rotate_270", "transpose",
                                         "anti_transpose") else (width, height)
    out = bytearray(len(data))
    for y in range(height):
        for x in range(width):
            nx, ny = _WHERE[name](x, y, width, height)
            i, j = (y * width + x) * bpp, (ny * tw + nx) * bpp
            out[j:j + bpp] = data[i:i + bpp]
    assert len(out) == tw * th * bpp
    return bytes(out)


def _crop(data: bytes, width: int, bpp: int, rect: Rect) -> bytes:
    row = width * bpp
    return b"".join(data[y * row + rect.x * bpp:y * row + (rect.x + rect.width) * bpp]
                    for y in range(rect.y, rect.y + rect.height))


@pytest.mark.parametrize("turn", changes.TURNS, ids=lambda t: t.name)
@pytest.mark.parametrize("bpp", [1, 4, 10])  # a mask, RGBA U8, CMYKA U16
def test_turns_move_whole_pixels_the_way_krita_turns_an_image(turn, bpp):
    data = _image(5, 3, bpp)
    assert changes.turn_pixels(data, 5, 3, turn) == _turned_by_hand(data, 5, 3, bpp, turn.name)


@pytest.mark.parametrize("turn", changes.TURNS, ids=lambda t: t.name)
def test_a_turned_rect_holds_the_turned_pixels(turn):
    # a part of a 9x6 image, turned with the whole image, is that part's pixels turned
    width, height, bpp, part = 9, 6, 2, Rect(2, 1, 4, 3)
    image = _image(width, height, bpp)
    turned = changes.turn_pixels(image, width, height, turn)
    tw, _ = turn.size(width, height)
    where = changes.turn_rect(part, Rect(0, 0, width, height), turn, (0, 0))
    assert _crop(turned, tw, bpp, where) == changes.turn_pixels(
        _crop(image, width, bpp, part), part.width, part.height, turn)


def test_krita_rotations_land_where_krita_puts_them():
    # measured in Krita 5.2.9: a 5x4 layer at (2, 1) of a 10x10 image, rotated by +-90 degrees
    canvas = Rect(0, 0, 10, 10)
    by_name = {t.name: t for t in changes.TURNS}
    assert changes.turn_rect(Rect(2, 1, 5, 4), canvas, by_name["rotate_90"], (0, 0)) == \
        Rect(5, 2, 4, 5)
    assert changes.turn_rect(Rect(2, 1, 5, 4), canvas, by_name["rotate_270"], (0, 0)) == \
        Rect(1, 3, 4, 5)
    # and by 180 degrees in a 12x8 one
    assert changes.turn_rect(Rect(2, 1, 5, 4), Rect(0, 0, 12, 8), by_name["rotate_180"],
                             (0, 0)) == Rect(5, 3, 5, 4)


class _Layer:
    """A layer's pixels over a W x H canvas (transparent elsewhere), read as Krita reads."""

    def __init__(self, data: bytes, width: int, height: int, bpp: int) -> None:
        self.data, self.width, self.height, self.bpp = data, width, height, bpp
        self.reads: list[Rect] = []

    def read(self, rect: Rect) -> bytes:
        self.reads.append(rect)
        inside = rect.intersected(Rect(0, 0, self.width, self.height))
        if inside != rect:
            return b"\0" * (rect.width * rect.height * self.bpp)  # good enough here
        return _crop(self.data, self.width, self.bpp, rect)


_CANVAS = Rect(0, 0, 12, 8)
_PART = Rect(2, 1, 5, 4)  # what was dreamed, at the layer's own bounds


def _find(layer: _Layer, original: bytes, mask: bytes | None = None) -> changes.Found:
    places = changes.candidates(_PART, _PART, _CANVAS, _PART, _PART)
    return changes.find(layer.read, original, _PART, mask, places)


def test_an_unchanged_layer_costs_one_read():
    image = _image(12, 8, 4)
    layer = _Layer(image, 12, 8, 4)
    found = _find(layer, _crop(image, 12, 4, _PART))
    assert found == changes.Found(changes.IDENTITY, _PART, False, None)
    assert layer.reads == [_PART]


@pytest.mark.parametrize("name", ["mirror_x", "mirror_y", "rotate_180"])
def test_an_image_flipped_or_rotated_is_found_turned(name):
    turn = next(t for t in changes.TURNS if t.name == name)
    image = _image(12, 8, 4)
    flipped = changes.turn_pixels(image, 12, 8, turn)
    found = _find(_Layer(flipped, 12, 8, 4), _crop(image, 12, 4, _PART))
    assert found.turn == turn and not found.changed and found.current is None
    assert found.rect == changes.turn_rect(_PART, _CANVAS, turn, (0, 0))


def test_a_square_image_turned_a_quarter_is_found_too():
    turn = next(t for t in changes.TURNS if t.name == "rotate_90")
    image = _image(8, 8, 4)
    part = Rect(1, 2, 5, 3)
    turned = changes.turn_pixels(image, 8, 8, turn)
    places = changes.candidates(part, part, Rect(0, 0, 8, 8), None, None)
    found = changes.find(_Layer(turned, 8, 8, 4).read, _crop(image, 8, 4, part), part, None,
                         places)
    assert (found.turn, found.rect, found.changed) == (turn, Rect(3, 1, 3, 5), False)


@pytest.mark.parametrize("name", ["rotate_90", "rotate_270"])
def test_an_oblong_image_turned_a_quarter_is_found_on_its_swapped_canvas(name):
    # the 12x8 image is 8x12 once turned: the turn is found about the canvas as it was read
    turn = next(t for t in changes.TURNS if t.name == name)
    image = _image(12, 8, 4)
    turned = changes.turn_pixels(image, 12, 8, turn)
    places = changes.candidates(_PART, _PART, Rect(0, 0, 8, 12), None, None, _CANVAS)
    found = changes.find(_Layer(turned, 8, 12, 4).read, _crop(image, 12, 4, _PART), _PART,
                         None, places)
    assert (found.turn, found.changed) == (turn, False)
    assert found.rect == changes.turn_rect(_PART, _CANVAS, turn, (0, 0))
    assert found.rect == (Rect(3, 2, 4, 5) if name == "rotate_90" else Rect(1, 5, 4, 5))


def _painted(image: bytes, width: int, bpp: int, rect: Rect) -> bytes:
    out = bytearray(image)
    for y in range(rect.y, rect.y + rect.height):
        for x in range(rect.x, rect.x + rect.width):
            out[(y * width + x) * bpp:(y * width + x + 1) * bpp] = b"\xff" * bpp
    return bytes(out)


def test_a_stroke_on_the_dreamed_pixels_is_reported_and_the_place_still_found():
    image = _image(12, 8, 4)
    stroke = Rect(3, 2, 2, 2)
    painted = _painted(image, 12, 4, stroke)
    found = _find(_Layer(painted, 12, 8, 4), _crop(image, 12, 4, _PART))
    assert (found.turn, found.rect, found.changed) == (changes.IDENTITY, _PART, True)
    assert found.current == _crop(painted, 12, 4, _PART)
    # flipped and painted on: still the flip, the one most like what was read
    mirror = changes.TURNS[1]
    flipped = _painted(changes.turn_pixels(image, 12, 8, mirror), 12, 4, Rect(6, 2, 2, 2))
    found = _find(_Layer(flipped, 12, 8, 4), _crop(image, 12, 4, _PART))
    assert (found.turn, found.changed) == (mirror, True)


def test_a_stroke_outside_the_selection_is_no_change_to_the_dream():
    image = _image(12, 8, 4)
    mask = bytearray(b"\xff" * (_PART.width * _PART.height))
    mask[0] = mask[1] = 0  # the top left two pixels of the part are not selected
    painted = _painted(image, 12, 4, Rect(_PART.x, _PART.y, 2, 1))
    found = _find(_Layer(painted, 12, 8, 4), _crop(image, 12, 4, _PART), bytes(mask))
    assert (found.turn, found.changed) == (changes.IDENTITY, False)
    assert found.current == _crop(painted, 12, 4, _PART)  # for the unselected pixels
    mask[1] = 1  # a feathered edge is dreamed a little: that is a change
    found = _find(_Layer(painted, 12, 8, 4), _crop(image, 12, 4, _PART), bytes(mask))
    assert found.changed


def test_a_filtered_layer_is_reported_and_keeps_its_place():
    image = _image(12, 8, 4)
    inverted = bytes(255 - b for b in image)  # nothing alike anywhere
    found = _find(_Layer(inverted, 12, 8, 4), _crop(image, 12, 4, _PART))
    assert (found.turn, found.rect, found.changed) == (changes.IDENTITY, _PART, True)


def test_a_change_is_reported_in_the_status_line():
    prepared = job.PreparedDream(object(), _Node("paintlayer"), Rect(0, 0, 1, 1),
                                 PixelFormat("BGRA", "u8", "srgb"), b"\0" * 4, None)
    result = _Node("paintlayer")
    assert prepared.report(result) == "added layer 'layer'"
    prepared.changed = True
    assert prepared.report(result) == (
        "added layer 'layer'; 'layer' changed while it was dreamed: the dream shows it as it "
        "was and covers the changes, which stay on 'layer'")


@pytest.mark.parametrize("turn", changes.TURNS, ids=lambda t: t.name)
def test_a_turned_row_is_that_row_of_the_turned_pixels(turn):
    data = _image(5, 3, 6)
    turned = changes.turn_pixels(data, 5, 3, turn)
    width, height = turn.size(5, 3)
    rows = [turned[r * width * 6:(r + 1) * width * 6] for r in range(height)]
    assert [changes.turned_row(data, 5, 3, turn, r) for r in range(height)] == rows


def test_a_sparse_layer_flipped_is_found_though_the_sampled_rows_miss_its_pixels():
    # transparent but for one row that the quick ranking does not sample: every place
    # ranks the same, and the full checks of the tied ones find the flip
    width, height, row = 16, 600, 1
    image = bytearray(width * height * 4)
    image[row * width * 4:(row + 1) * width * 4] = _image(width, 1, 4)
    canvas = Rect(0, 0, width, height)
    mirror = changes.TURNS[1]
    flipped = changes.turn_pixels(bytes(image), width, height, mirror)
    places = changes.candidates(canvas, canvas, canvas, canvas, canvas)
    found = changes.find(_Layer(flipped, width, height, 4).read, bytes(image), canvas, None,
                         places)
    assert (found.turn, found.rect, found.changed) == (mirror, canvas, False)


def _line_art(width: int, height: int, bpp: int, part: Rect) -> bytearray:
    """Transparent but for thin diagonal lines over ``part`` (to the image's edges)."""
    image = bytearray(width * height * bpp)
    for y in range(part.y, height):
        for x in range(part.x, width):
            if (x * 37 + y * 23) % 97 < 8:
                image[(y * width + x) * bpp:(y * width + x + 1) * bpp] = bytes([x, y, 90, 255])
    return image


def test_line_art_turned_and_mostly_painted_over_is_found_turned():
    # thin lines in the bottom right quarter, the image turned by 180 degrees (the lines go
    # to the top left) and two thirds of them painted over: the empty old place used to win,
    # as alike to the mostly empty lines as what is left of them
    width, height, bpp = 64, 48, 4
    part = Rect(32, 24, 32, 24)
    image = _line_art(width, height, bpp, part)
    canvas = Rect(0, 0, width, height)
    half_turn = next(t for t in changes.TURNS if t.name == "rotate_180")
    turned = changes.turn_pixels(bytes(image), width, height, half_turn)
    painted = _painted(turned, width, bpp, Rect(0, 0, 32, 16))
    places = changes.candidates(part, part, canvas, part, Rect(0, 0, 32, 24))
    found = changes.find(_Layer(painted, width, height, bpp).read,
                         _crop(bytes(image), width, bpp, part), part, None, places)
    assert (found.turn, found.rect, found.changed) == (half_turn, Rect(0, 0, 32, 24), True)


def test_line_art_all_painted_over_keeps_its_place():
    # nothing turned; every line painted over: empty places elsewhere, alike only in their
    # emptiness, used to win (the dream was added mirrored, beside its place)
    width, height, bpp = 64, 48, 4
    part = Rect(24, 0, 40, 48)
    image = _line_art(width, height, bpp, part)
    painted = _painted(bytes(image), width, bpp, part)
    canvas = Rect(0, 0, width, height)
    places = changes.candidates(part, part, canvas, part, part)
    found = changes.find(_Layer(painted, width, height, bpp).read,
                         _crop(bytes(image), width, bpp, part), part, None, places)
    assert (found.turn, found.rect, found.changed) == (changes.IDENTITY, part, True)


@pytest.mark.parametrize("name, to", [("rotate_90", (17, -2)), ("rotate_270", (16, -2))])
def test_a_layer_turned_a_quarter_is_a_candidate_though_painted_beyond_it(name, to):
    # measured in Krita 5.2.9: a 63x48 layer at (9, 5) turned by +-90 degrees is 48x63 at
    # these corners; painted beyond them its bounds grow (here to the canvas' left edge)
    turn = next(t for t in changes.TURNS if t.name == name)
    was, part = Rect(9, 5, 63, 48), Rect(9, 5, 55, 43)
    grown = Rect(0, -2, to[0] + 48, 63)
    places = set(changes.candidates(part, part, Rect(0, 0, 64, 48), was, grown))
    assert (turn, changes.turn_rect(part, was, turn, to)) in places


class _Document:
    """Krita 5.2's Document as job.idle sees it: a barrier lock it may or may not get."""

    def __init__(self, busy: bool, closed: bool = False) -> None:
        self.busy, self.closed, self.locks = busy, closed, 0

    def rootNode(self) -> object | None:  # noqa: N802 - Krita's name
        return None if self.closed else object()

    def tryBarrierLock(self) -> bool:  # noqa: N802 - Krita's name
        if self.busy:
            return False
        self.locks += 1
        return True

    def unlock(self) -> None:
        self.locks -= 1


def test_the_dream_waits_until_krita_has_done_what_the_user_set_going():
    busy, free, closed = _Document(busy=True), _Document(busy=False), _Document(True, True)
    assert not job.idle(busy)
    assert job.idle(free) and free.locks == 0  # the lock it took is given back
    assert job.idle(closed)  # finish then says the document was closed


@pytest.mark.parametrize(("part", "name"), [(Rect(2, 3, 7, 1), "rotate_90"),
                                            (Rect(4, 1, 1, 6), "mirror_y")])
def test_a_one_pixel_strip_turned_and_painted_on_is_found_turned(part, name):
    # a one-pixel row of a strip is always of one colour: no reason to fall back unturned
    turn = next(t for t in changes.TURNS if t.name == name)
    image = _image(12, 8, 4)
    turned = changes.turn_pixels(image, 12, 8, turn)
    tw, th = turn.size(12, 8)
    truth = changes.turn_rect(part, _CANVAS, turn, (0, 0))
    painted = _painted(turned, tw, 4, Rect(truth.x, truth.y, 1, 2))
    places = changes.candidates(part, part, Rect(0, 0, tw, th), None, None, _CANVAS)
    found = changes.find(_Layer(painted, tw, th, 4).read, _crop(image, 12, 4, part), part,
                         None, places)
    assert (found.turn, found.rect, found.changed) == (turn, truth, True)


def test_an_image_over_the_daemons_limit_says_what_the_artist_can_do():
    from deepdream_krita.connection import daemon_message
    from deepdream_protocol import messages as m
    from deepdream_protocol.client import DaemonError

    text = daemon_message(DaemonError(m.too_large_message(400, 300, 1000), m.E_TOO_LARGE))
    assert text.startswith("400x300 is 120,000 pixels") and "\n" not in text
    assert text.endswith("select a smaller part of the layer and dream with Use selection on")
    assert "Use selection" not in daemon_message(DaemonError("out of memory", "oom"))


def test_tied_places_are_checked_in_strips_that_stop_where_they_differ(monkeypatch):
    """A flat layer painted on: every place looks alike on the sampled rows, so find checks
    several whole; each check stops at its first strip that differs, where reading whole
    places read far more, and the answer is the same."""
    width, height, bpp = 64, 48, 4
    part = Rect(8, 4, 48, 40)
    flat = bytearray(b"\x10\x20\x30\xff" * (width * height))
    painted = bytearray(flat)
    for y in (5, 6):  # a stroke across the top of the dreamed part
        painted[(y * width + 8) * bpp:(y * width + 56) * bpp] = b"\x90\x10\x10\xff" * 48
    canvas = Rect(0, 0, width, height)
    original = _crop(bytes(flat), width, bpp, part)
    found = {}
    for strip in (1 << 30, 2 * 48 * bpp):  # whole places (as before), two-row strips
        monkeypatch.setattr(layer_changes, "_STRIP_BYTES", strip)
        layer = _Layer(bytes(painted), width, height, bpp)
        places = changes.candidates(part, part, canvas, part, part)
        # (the one-row reads rank the places: the same either way)
        found[strip] = (changes.find(layer.read, original, part, None, places),
                        sum(r.width * r.height for r in layer.reads if r.height > 1))
    (whole, whole_read), (strips, strips_read) = found.values()
    assert strips == whole and (strips.turn, strips.rect, strips.changed) == (
        changes.IDENTITY, part, True)
    assert whole_read >= 4 * part.width * part.height  # several places read whole before
    assert strips_read < whole_read // 2

