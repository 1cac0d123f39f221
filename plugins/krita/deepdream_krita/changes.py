"""Where a Krita layer's dreamed pixels may be now: the places a turn of the image or of
the layer puts them (Krita turns an image about its canvas, and a layer about the centre
of its bounds).  ``deepdream_protocol.layer_changes`` (shared with GIMP) finds which of
them holds the pixels that were read; its names are here too, for the rest of the plug-in.
"""

from __future__ import annotations

from collections.abc import Iterator

from deepdream_protocol.layer_changes import (
    IDENTITY,
    TURNS,
    Found,
    Rect,
    Turn,
    find,
    one_colour,
    splice_unmasked,
    turn_pixels,
    turn_rect,
    turned_row,
)

__all__ = ["IDENTITY", "TURNS", "Found", "Rect", "Turn", "candidates", "find", "one_colour",
           "splice_unmasked", "turn_pixels", "turn_rect", "turned_row"]


def candidates(rect: Rect, moved: Rect, canvas: Rect, was: Rect | None,
               now: Rect | None, read_canvas: Rect | None = None) -> Iterator[tuple[Turn, Rect]]:
    """Where the pixels read over ``rect`` may be now, most likely first: unturned where
    the layer's move put them (``moved``), then each turn of the image (the canvas as it
    was read, ``read_canvas``, turned into ``canvas`` as it is: a quarter turn of an
    oblong image swaps its sides) and of the layer (its bounds ``was`` turned into its
    bounds ``now``, or about their centre)."""
    read_canvas = read_canvas or canvas
    seen: set[tuple[Turn, Rect]] = set()
    for turn in TURNS:
        places = [moved, rect] if turn == IDENTITY else []
        if turn.size(read_canvas.width, read_canvas.height) == (canvas.width, canvas.height):
            places.append(turn_rect(rect, read_canvas, turn, (canvas.x, canvas.y)))
        if was is not None and not was.empty:
            size = turn.size(was.width, was.height)
            if now is not None and size == (now.width, now.height):
                places.append(turn_rect(rect, was, turn, (now.x, now.y)))
            # turned about its centre, in place: found so even once painted beyond
            # its new bounds (which then no longer have the turned size)
            places += [turn_rect(rect, was, turn, to) for to in _centred(was, size)]
        for place in places:
            if (turn, place) not in seen:
                seen.add((turn, place))
                yield turn, place


def _centred(frame: Rect, size: tuple[int, int]) -> list[tuple[int, int]]:
    """The top-left corners of a ``size`` rectangle centred on ``frame``: two where a half
    pixel is rounded (Krita 5.2 rounds it up or down, as the turn goes)."""
    dx, dy = frame.width - size[0], frame.height - size[1]
    xs = sorted({frame.x + dx // 2, frame.x - (-dx // 2)})
    ys = sorted({frame.y + dy // 2, frame.y - (-dy // 2)})
    return [(x, y) for x in xs for y in ys]
