"""What became of a layer's dreamed pixels while the daemon dreamed them: both plug-ins.

Krita and GIMP stay usable during a dream, so by the time the result arrives the user may
have flipped or rotated the image (or the layer), or painted on or filtered the layer.
``find`` looks for the pixels that were read, turned by one of the eight flips and quarter
turns, at the places a host says such a turn puts them (``turned_in_place`` for a layer
turned within its own frame; Krita's image-level turns are in deepdream_krita/changes.py),
and says which turn fits and whether the dreamed part (the selected pixels) changed
besides.  The plug-in then turns the dream the same way, so it lands on the pixels it was
dreamed from, as it would have had it been added before the user turned anything.

Pure byte shuffling on the host's own pixel layout (whole pixels move, samples are never
touched): no host, no numpy.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# How many rows of a place ``_likeness`` compares, and how many of the places it ranks
# best (and equally well) ``find`` compares in full.
_ROWS = 256
_FULL_CHECKS = 8
# ``find`` reads a place it only checks in strips of about this many bytes, and stops at
# the first that differs (a large flat layer painted on: places tie, and each full read of
# a big layer is slow in Krita).
_STRIP_BYTES = 1 << 20
# array type codes, widest first ('L' is 8 bytes on some systems, 'I' 4 on all of them).
_TYPECODES = ("Q", "I", "H", "B")


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @classmethod
    def of(cls, box: Any) -> Rect:
        """From anything with x(), y(), width() and height(): a QRect, a Krita Selection."""
        return cls(box.x(), box.y(), box.width(), box.height())

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersected(self, other: Rect) -> Rect:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def args(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)


def splice_unmasked(original: bytes, dreamed: bytes, mask: bytes, bytes_per_pixel: int) -> bytes:
    """``dreamed`` with every pixel whose mask is 0 taken back from ``original``: the
    pixels a selection left out, as the layer has them now (the user may have painted there
    meanwhile, and a round trip through RGBA for a CMYK/Lab layer would nudge them).
    """
    if len(original) != len(dreamed) or len(mask) * bytes_per_pixel != len(dreamed):
        raise ValueError("internal error: mask and pixel sizes disagree")
    out = bytearray(dreamed)
    for run in re.finditer(rb"\x00+", mask):
        a, b = run.start() * bytes_per_pixel, run.end() * bytes_per_pixel
        out[a:b] = original[a:b]
    return bytes(out)


@dataclass(frozen=True)
class Turn:
    """One of the eight symmetries of a rectangle: an optional transpose (x and y swap),
    then an optional mirror of x (left-right), then of y (top-bottom)."""

    name: str
    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    def size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.transpose else (width, height)


IDENTITY = Turn("identity")
TURNS = (
    IDENTITY,
    Turn("mirror_x", flip_x=True),  # Krita's Image › Mirror Image Horizontally
    Turn("mirror_y", flip_y=True),  # ... Vertically
    Turn("rotate_180", flip_x=True, flip_y=True),
    Turn("rotate_90", transpose=True, flip_x=True),  # clockwise: (x, y) -> (H-1-y, x)
    Turn("rotate_270", transpose=True, flip_y=True),  # anticlockwise: (x, y) -> (y, W-1-x)
    Turn("transpose", transpose=True),
    Turn("anti_transpose", transpose=True, flip_x=True, flip_y=True),
)


def turn_pixels(data: bytes, width: int, height: int, turn: Turn) -> bytes:
    """``data`` (``width`` x ``height`` interleaved pixels, rows top to bottom) turned;
    the result is ``turn.size(width, height)``.  Whole pixels move, bytes within a pixel
    keep their order."""
    if turn == IDENTITY or not data:
        return data
    if len(data) % (width * height):
        raise ValueError("pixel data is not width x height whole pixels")
    bpp = len(data) // (width * height)
    if turn.transpose:  # row x of the result is column x of data
        items, per_pixel = _items(data, bpp)
        out = array(items.typecode, bytes(len(data)))
        column = height * per_pixel
        for k in range(per_pixel):
            for x in range(width):
                out[x * column + k:(x + 1) * column:per_pixel] = \
                    items[x * per_pixel + k::width * per_pixel]
        data, width, height = out.tobytes(), height, width
    if turn.flip_x and not turn.flip_y:  # a mirror of x is a half turn of a mirror of y
        data = turn_pixels(data, width, height, TURNS[2])
    if turn.flip_y and not turn.flip_x:  # the rows in reverse order
        row = width * bpp
        return b"".join(data[y * row:(y + 1) * row] for y in reversed(range(height)))
    if turn.flip_x:  # every pixel in reverse order
        items, per_pixel = _items(data, bpp)
        if per_pixel == 1:
            items.reverse()
            return items.tobytes()
        out = array(items.typecode, bytes(len(data)))
        for k in range(per_pixel):
            out[k::per_pixel] = items[k::per_pixel][::-1]
        return out.tobytes()
    return data


def _items(data: bytes, bpp: int) -> tuple[array, int]:
    """``data`` as an array of the widest items a pixel is a whole number of (so that
    Python moves a few big items rather than many bytes), and how many make a pixel."""
    for typecode in _TYPECODES:
        size = array(typecode).itemsize
        if bpp % size == 0:
            return array(typecode, data), bpp // size
    raise AssertionError("unreachable: 'B' divides everything")


def turn_rect(rect: Rect, frame: Rect, turn: Turn, to: tuple[int, int]) -> Rect:
    """Where ``rect`` (inside ``frame``) is once ``frame`` is turned and its top-left corner
    put at ``to``."""
    x, y, w, h = rect.x - frame.x, rect.y - frame.y, rect.width, rect.height
    fw, fh = frame.width, frame.height
    if turn.transpose:
        x, y, w, h, fw, fh = y, x, h, w, fh, fw
    if turn.flip_x:
        x = fw - x - w
    if turn.flip_y:
        y = fh - y - h
    return Rect(to[0] + x, to[1] + y, w, h)


def turned_in_place(rect: Rect, was: tuple[int, int],
                    now: tuple[int, int]) -> list[tuple[Turn, Rect]]:
    """Where the pixels read over ``rect`` of a layer ``was`` (width, height) in size are
    once the layer is turned within its own frame, now ``now`` in size (GIMP flips and
    rotates a layer in its own frame; a quarter turn of an oblong one swaps its sides):
    unturned first, then each turn that gives that size."""
    frame = Rect(0, 0, *was)
    return [(turn, turn_rect(rect, frame, turn, (0, 0))) for turn in TURNS
            if turn.size(*was) == now]


def turned_row(data: bytes, width: int, height: int, turn: Turn, row: int) -> bytes:
    """Row ``row`` of ``turn_pixels(data, width, height, turn)``, without turning it all."""
    bpp = len(data) // (width * height)
    rows = width if turn.transpose else height
    row = rows - 1 - row if turn.flip_y else row
    if turn.transpose:  # a column of data, top to bottom
        line = bytearray(height * bpp)
        for c in range(bpp):
            line[c::bpp] = data[row * bpp + c::width * bpp]
        out = bytes(line)
    else:
        out = data[row * width * bpp:(row + 1) * width * bpp]
    if turn.flip_x:
        line = bytearray(len(out))
        for c in range(bpp):
            line[c::bpp] = out[c::bpp][::-1]
        out = bytes(line)
    return out


def _likeness(read: Callable[[Rect], bytes], original: bytes, rect: Rect, turn: Turn,
              place: Rect) -> tuple[int, int]:
    """How much of a few rows of ``place`` now is ``original`` turned (a quick measure, to
    try the most likely places first): of up to ``_ROWS`` rows spread over it, each cut in
    sixteenths (of two pixels at least), the number of equal pieces of more than one
    colour, then of all equal pieces.  Pieces of one colour (empty or flat areas) are alike
    in many places, so they only break ties: else an empty place would look as much like
    mostly empty line art as the line art's own place, turned and painted over."""
    distinct = equal = 0
    for row, pieces, bpp in _sampled_rows(original, rect, turn):
        now = read(Rect(place.x, place.y + row, place.width, 1))
        for i, piece in pieces:
            if now[i:i + len(piece)] == piece:
                equal += 1
                distinct += not one_colour(piece, bpp)
    return distinct, equal


def _has_detail(original: bytes, rect: Rect, turn: Turn) -> bool:
    """Whether any piece ``_likeness`` compares for ``turn`` is of more than one colour."""
    return any(not one_colour(piece, bpp) for _, pieces, bpp in
               _sampled_rows(original, rect, turn) for _, piece in pieces)


def _sampled_rows(original: bytes, rect: Rect, turn: Turn
                  ) -> Iterator[tuple[int, list[tuple[int, bytes]], int]]:
    """The rows ``_likeness`` compares of ``original`` turned: (row, its pieces as (offset,
    bytes), bytes per pixel)."""
    width, height = turn.size(rect.width, rect.height)
    bpp = len(original) // (rect.width * rect.height)
    size = bpp * max(2, -(-width // 16))  # (one pixel is always of one colour)
    for row in sorted({k * height // _ROWS for k in range(_ROWS)}):
        was = turned_row(original, rect.width, rect.height, turn, row)
        yield row, [(i, was[i:i + size]) for i in range(0, len(was), size)], bpp


def _holds(read: Callable[[Rect], bytes], place: Rect, expected: bytes) -> bool:
    """Whether ``place`` holds ``expected`` now, read in strips of rows (``_STRIP_BYTES``)
    up to the first that differs."""
    row = len(expected) // place.height
    rows = max(1, _STRIP_BYTES // max(1, row))
    for top in range(0, place.height, rows):
        n = min(rows, place.height - top)
        if read(Rect(place.x, place.y + top, place.width, n)) != \
                expected[top * row:(top + n) * row]:
            return False
    return True


def one_colour(data: bytes, bpp: int) -> bool:
    """Whether every pixel of ``data`` (``bpp`` bytes each) is the same."""
    return data == data[:bpp] * (len(data) // bpp)


def changed_where_selected(before: bytes, after: bytes, mask: bytes | None) -> bool:
    """Whether any pixel the mask selects (mask > 0; all without a mask) differs."""
    if mask is None or before == after:
        return before != after
    bpp = len(before) // len(mask)
    return splice_unmasked(before, after, mask, bpp) != before


@dataclass(frozen=True)
class Found:
    turn: Turn  # how the pixels that were read have been turned
    rect: Rect  # where they are now, in image coordinates
    changed: bool  # whether the selected ones differ from what was read, besides
    current: bytes | None  # the layer's pixels over ``rect`` now, when they differ at all


def find(read: Callable[[Rect], bytes], original: bytes, rect: Rect, mask: bytes | None,
         places: Iterable[tuple[Turn, Rect]]) -> Found:
    """The place of ``places`` that holds ``original`` (read over ``rect``; ``read`` reads the
    layer now) turned; when none holds it exactly (the layer was painted on or filtered as
    well), the one most like it, or else (nothing alike but areas of one colour) the first,
    unturned place; that place also wins, painted on, over a turned one that holds pixels
    looking the same turned (a flat fill) when it is about as alike.  The first place is
    tried first and alone when it holds it, so the common case costs one read."""
    places = list(places)
    turn, place = places[0]
    first = read(place)
    expected = turn_pixels(original, rect.width, rect.height, turn)
    if first == expected:
        return Found(turn, place, False, None)
    unturned = (turn, place, first, expected)
    # Rank them on a few rows; check the best (and those as good) whole, strip by strip.
    scores = [_likeness(read, original, rect, t, p) for t, p in places]
    # (a stable sort: ties keep their order, the unturned place first)
    order = sorted(range(len(places)), key=lambda i: (-scores[i][0], -scores[i][1]))
    best: tuple[Turn, Rect, bytes | None, bytes] | None = None
    for i in order[:_FULL_CHECKS]:
        if best is not None and scores[i] < scores[order[0]]:
            break
        turn, place = places[i]
        expected = turn_pixels(original, rect.width, rect.height, turn)
        if i == 0 or not _holds(read, place, expected):
            best = best or (turn, place, first if i == 0 else None, expected)
        elif expected != unturned[3] or 2 * scores[0][1] < scores[i][1]:
            return Found(turn, place, False, None)
        else:
            # the dreamed pixels look the same turned (a flat fill, a symmetric shape) and
            # their place holds them but for paint: the turned place's are no sign of a turn
            best = unturned
            break
    if best is None or (scores[order[0]][0] == 0 and min(rect.width, rect.height) > 1
                        and (_has_detail(original, rect, best[0])
                             or 2 * scores[0][1] >= scores[order[0]][1])):
        # nothing of more than one colour is alike anywhere: detail there was is gone (line
        # art all painted over, or filtered), so whatever empty places are alike are no
        # sign of a turn; or there was none (a flat fill, a sky's rows) and the unturned
        # place is about as alike as any.  Only flat pixels found clearly elsewhere (a
        # stroke on a flipped fill) tell a turn.  (A row of a one-pixel strip, turned, is
        # one pixel: of one colour, and no sign either way.)
        best = unturned
    turn, place, current, expected = best
    if current is None:  # (only checked in strips so far)
        current = read(place)
    turned_mask = None if mask is None else turn_pixels(mask, rect.width, rect.height, turn)
    return Found(turn, place, changed_where_selected(expected, current, turned_mask), current)
