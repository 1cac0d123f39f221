"""Where a layer's dreamed pixels are once it was turned in its own frame (GIMP's flips and
rotations, layer or image): deepdream_protocol.layer_changes, which both plug-ins use.  The
search itself (``find``) is tested further with Krita's places in tests/hosts/test_krita_units.py
(pure Python too)."""

from __future__ import annotations

import random

import pytest
from deepdream_protocol.layer_changes import (
    TURNS,
    Rect,
    find,
    turn_pixels,
    turn_rect,
    turned_in_place,
)

BY_NAME = {turn.name: turn for turn in TURNS}


def _image(width: int, height: int, bpp: int = 4) -> bytes:
    rng = random.Random(width * 1000 + height)
    return bytes(rng.getrandbits(8) for _ in range(width * height * bpp))


def _crop(data: bytes, width: int, rect: Rect, bpp: int = 4) -> bytes:
    return b"".join(data[((rect.y + row) * width + rect.x) * bpp:
                         ((rect.y + row) * width + rect.x + rect.width) * bpp]
                    for row in range(rect.height))


@pytest.mark.parametrize(("was", "now", "turns"), [
    ((12, 8), (12, 8), ["identity", "mirror_x", "mirror_y", "rotate_180"]),
    ((12, 8), (8, 12), ["rotate_90", "rotate_270", "transpose", "anti_transpose"]),
    ((8, 8), (8, 8), [turn.name for turn in TURNS]),
    ((12, 8), (6, 4), []),  # scaled: no turn gives that size
])
def test_the_turns_that_give_the_layers_size_now_are_the_places(was, now, turns) -> None:
    part = Rect(2, 1, 5, 4)
    places = turned_in_place(part, was, now)
    assert [turn.name for turn, _ in places] == turns
    for turn, place in places:
        assert place == turn_rect(part, Rect(0, 0, *was), turn, (0, 0))
        assert Rect(0, 0, *now).intersected(place) == place  # inside the layer as it is now


@pytest.mark.parametrize(("size", "name"), [((8, 8), "rotate_90"), ((12, 8), "rotate_270"),
                                            ((12, 8), "mirror_y"), ((12, 8), "identity")])
def test_a_layer_turned_in_its_frame_is_found_turned(size, name) -> None:
    width, height = size
    image, turn = _image(width, height), BY_NAME[name]
    now_width, now_height = turn.size(width, height)
    turned = turn_pixels(image, width, height, turn)
    part = Rect(2, 1, 5, 4)

    def read(rect: Rect) -> bytes:
        return _crop(turned, now_width, rect)

    found = find(read, _crop(image, width, part), part, None,
                 turned_in_place(part, size, (now_width, now_height)))
    assert (found.turn, found.changed, found.current) == (turn, False, None)
    assert read(found.rect) == turn_pixels(_crop(image, width, part), 5, 4, turn)


RED, BLUE, GREEN = b"\xff\0\0\xff", b"\0\0\xff\xff", b"\0\xff\0\xff"


def _halves(width: int, height: int, left: bytes, right: bytes) -> bytearray:
    return bytearray(b"".join(left if x < width // 2 else right
                              for _ in range(height) for x in range(width)))


def _paint(pixels: bytearray, width: int, spots: list[tuple[int, int]], colour: bytes) -> bytes:
    for x, y in spots:
        pixels[(y * width + x) * 4:(y * width + x + 1) * 4] = colour
    return bytes(pixels)


def test_a_flat_area_flipped_and_painted_on_is_found_where_it_went() -> None:
    """No piece of more than one colour anywhere: where the flat pixels are found whole but
    for the stroke tells the flip (the unturned place holds the other half's colour now)."""
    part = Rect(0, 0, 8, 8)  # the red half of a red | blue layer, selected
    layer = _halves(16, 8, RED, BLUE)
    flipped = _paint(bytearray(turn_pixels(bytes(layer), 16, 8, BY_NAME["mirror_x"])), 16,
                     [(10, 3), (11, 3), (12, 3)], GREEN)  # and a stroke on the red
    found = find(lambda r: _crop(flipped, 16, r), _crop(bytes(layer), 16, part), part, None,
                 turned_in_place(part, (16, 8), (16, 8)))
    assert (found.turn.name, found.rect, found.changed) == ("mirror_x", Rect(8, 0, 8, 8), True)


def test_a_flat_area_painted_on_stays_put_where_its_mirror_is_as_flat() -> None:
    """Not turned, a stroke on it, and its mirror image flat the same colour: the unturned
    place, about as alike, is kept (no sign of a turn)."""
    part = Rect(1, 1, 6, 6)
    layer = bytes(RED * (16 * 8))
    painted = _paint(bytearray(layer), 16, [(2, 3), (3, 3), (4, 3), (2, 4)], GREEN)
    found = find(lambda r: _crop(painted, 16, r), _crop(layer, 16, part), part, None,
                 turned_in_place(part, (16, 8), (16, 8)))
    assert (found.turn.name, found.rect, found.changed) == ("identity", part, True)
