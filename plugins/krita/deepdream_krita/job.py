"""One dream of one Krita node: read it (prepare) and add the result as a new layer (finish).

Shared by the blocking ``dream_layer`` and the docker/action, which differ only in how they
wait for the daemon.  The user's node is only ever read; CMYK, Lab and other models the daemon
cannot take are converted by Krita's own colour management, in a throwaway document.

An animated paint layer is dreamed at the document's current frame.  Its result is a
duplicate too, so it keeps every keyframe (Krita 5.2's scripting API cannot remove one, and a
plain layer would show the dreamed frame all through the animation): only the drawing shown
at that frame is dreamed, the others stay copies of the original's, and the docker's status
line says so.

The user may go on working while the daemon dreams: the dream follows a layer that was moved,
converted, flipped or rotated meanwhile (changes.py finds where its pixels went), and when
the dreamed pixels were painted on or filtered as well, the dream of them as they were read
is still added, over the user's changes (which stay on the original layer), and the status
line says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepdream_protocol.pixels import PixelFormat

from . import changes, pixels
from .pixels import DreamError, Rect

RESULT_SUFFIX = " (DeepDream)"
DOCUMENT_CLOSED = "the document was closed; nothing was added"
IMAGE_RESIZED = "the image was resized while dreaming; nothing was added"
# Node.type() of the layers that are not paint layers, as a sentence names them.
_OTHER_LAYERS = {"grouplayer": "group layers", "clonelayer": "clone layers",
                 "filllayer": "fill layers", "filterlayer": "filter layers",
                 "vectorlayer": "vector layers", "filelayer": "file layers",
                 "referenceimageslayer": "reference image layers"}


def _space(node: Any) -> tuple[str, str, str]:
    return (node.colorModel(), node.colorDepth(), node.colorProfile())


def _in_document(node: Any, document: Any) -> bool:
    """Whether ``node`` still hangs from ``document``'s root.  A layer flattened or merged
    away with others keeps a parent that is no longer in the document (adding a layer to
    that parent crashes Krita); one deleted or merged down has none."""
    top = node
    while (parent := top.parentNode()) is not None:
        top = parent
    return top == document.rootNode()


def _position(node: Any) -> tuple[int, int]:
    point = node.position()
    return (point.x(), point.y())


@dataclass
class PreparedDream:
    """What is sent to the daemon, plus what is needed to write the answer back."""

    document: Any
    node: Any
    rect: Rect  # image coordinates of the dreamed region, with the node where it was read
    fmt: PixelFormat
    pixels: bytes
    mask: bytes | None  # u8 per pixel over rect, None = the whole region
    # How things were when the node was read (None: as they are when the dream is added)
    space: tuple[str, str, str] | None = None  # the colour space of ``pixels``
    position: tuple[int, int] | None = None  # the node's offset
    canvas: tuple[int, int] | None = None  # the image's size
    frame: int | None = None  # the document's current time when the node is animated
    # The node's own bytes over rect (``pixels`` unless Krita converted them for the
    # daemon), their colour space, and the node's bounds: what ``finish`` looks for.
    original: bytes | None = None
    original_space: tuple[str, str, str] | None = None
    bounds: Rect | None = None
    changed: bool = False  # set by ``finish``: the dreamed pixels changed meanwhile

    def finish(self, dreamed: bytes) -> Any:
        """Add the dream as a new paint layer directly above the node; return that layer.

        ``dreamed`` is the Client's result for this dream, so it already has the size of
        ``rect`` in ``fmt`` (the Client fails a result of another size).  The new layer is a
        duplicate of the node (its opacity, blend mode, inherit alpha, alpha lock and masks:
        ``pixelData`` reads the pixels without the masks, so without copies of them the
        result would show what the original hides), visible and unlocked, with the dream
        written into it before it is inserted: one undoable step, and the original layer is
        never touched.  The dream goes where the pixels it was dreamed from are now (moved,
        flipped or rotated meanwhile: turned the same way); pixels the selection left out
        are the node's as they are now, and ``changed`` says whether the selected ones
        changed since they were read (the dream of them as they were covers them).
        """
        if self.document.rootNode() is None:  # closed while the daemon dreamed
            raise DreamError(DOCUMENT_CLOSED)
        size = (self.document.width(), self.document.height())
        resized = self.canvas not in (None, size, size[::-1])  # (a quarter turn swaps them)
        if self.frame is not None and self.document.currentTime() != self.frame:
            # The user moved on while the daemon dreamed.  A layer's pixels are those of the
            # current frame's keyframe, so go back, or the dream would land on another drawing.
            self.document.setCurrentTime(self.frame)
            self.document.waitForDone()
        parent = self.node.parentNode()
        if not _in_document(self.node, self.document):  # (no parent: not in it either)
            raise DreamError(f"{self.node.name()!r} was deleted or merged while it was "
                             "dreamed; nothing was added")
        found = self._find_pixels()
        if resized and (found.current is not None or self._proves_nothing()):
            # scaled, or cropped into the dreamed pixels: the dream fits them no more (a
            # canvas made larger or cropped around them only moved them: it goes there)
            raise DreamError(IMAGE_RESIZED)
        rect, turn = found.rect, found.turn
        self.changed = found.changed
        dreamed = changes.turn_pixels(dreamed, self.rect.width, self.rect.height, turn)
        mask = self.mask
        if mask is not None:
            mask = changes.turn_pixels(mask, self.rect.width, self.rect.height, turn)
        region = self._in_node_space(dreamed, rect, mask, found.current)
        result = self.node.duplicate()
        if result is None or _space(result) != _space(self.node):
            raise DreamError("Krita could not copy the layer for the result")
        result.setName(self.node.name() + RESULT_SUFFIX)
        result.setVisible(True)
        result.setLocked(False)  # the user's lock guards the original, not the new layer
        pixels.write(result, region, rect)
        if not parent.addChildNode(result, self.node):
            raise DreamError("Krita refused to add the result layer")
        return result

    def report(self, result: Any) -> str:
        """The status line for ``result``, the layer ``finish`` added."""
        text = f"added layer {result.name()!r}"
        if self.frame is not None:
            text += f"; it is animated and only its drawing at frame {self.frame} is dreamed"
        if self.changed:
            name = self.node.name()
            text += (f"; {name!r} changed while it was dreamed: the dream shows it as it was "
                     f"and covers the changes, which stay on {name!r}")
        return text

    def _proves_nothing(self) -> bool:
        """Whether finding the read pixels again says nothing of where they went: none kept,
        or all of one colour (a flat fill or an empty part is alike wherever it is, so even
        a scaled image holds it at the old place)."""
        original = self.original
        area = self.rect.width * self.rect.height
        return original is None or changes.one_colour(original, len(original) // area)

    def _find_pixels(self) -> changes.Found:
        """Where the pixels that were read are now, and whether the dreamed ones changed."""
        # A layer moved while the daemon dreamed: the dream follows its pixels.
        x1, y1 = _position(self.node)
        x0, y0 = self.position or (x1, y1)
        moved = Rect(self.rect.x + x1 - x0, self.rect.y + y1 - y0, self.rect.width,
                     self.rect.height)
        original = self.original
        space = _space(self.node)
        if original is not None and self.original_space not in (None, space):
            # the user converted the layer: compare with the old pixels converted likewise
            original = convert(original, self.rect, self.original_space, space)
        if original is None:  # nothing to compare with: where the move put it, unchanged
            return changes.Found(changes.IDENTITY, moved, False, None)
        canvas = Rect(0, 0, self.document.width(), self.document.height())
        read_canvas = Rect(0, 0, *self.canvas) if self.canvas else canvas
        places = changes.candidates(self.rect, moved, canvas, self.bounds,
                                    Rect.of(self.node.bounds()), read_canvas)
        return changes.find(lambda rect: pixels.read(self.node, rect), original, self.rect,
                            self.mask, places)

    def _in_node_space(self, dreamed: bytes, rect: Rect, mask: bytes | None,
                       current: bytes | None) -> bytes:
        """``dreamed`` in the node's colour space now (it differs from ``space`` for a CMYK,
        Lab, ... node, or when the user converted the layer meanwhile), for ``rect``, with
        the pixels the mask leaves out as the node has them (``current``, when known; the
        daemon returns them as they were read, and the user may have painted there)."""
        space = _space(self.node)
        if self.space is not None and self.space != space:
            converted = convert(dreamed, rect, self.space, space)
            if converted is None:
                raise DreamError("Krita could not convert the dream to the layer's colour space")
            dreamed = converted
            if mask is not None and current is None:  # the round trip nudges every pixel
                current = pixels.read(self.node, rect)
        if mask is None or current is None:  # (current None: left as they were read)
            return dreamed
        bpp = len(current) // (rect.width * rect.height)
        return changes.splice_unmasked(current, dreamed, mask, bpp)


def convert(data: bytes, rect: Rect, source: tuple[str, str, str],
            target: tuple[str, str, str]) -> bytes | None:
    """``data`` (``rect``'s pixels in colour space ``source``) in ``target``, converted by
    Krita's colour management; None when Krita cannot.  The conversion runs on a layer of a
    throwaway document: Krita 5.2 records a layer's colour-space change as an undo step of
    the document the layer was made in, even a layer that was never added to it, so a
    temporary layer of the user's document left steps that undo nothing visible (and marked
    it modified, even when the dream then failed)."""
    from krita import Krita

    scratch = Krita.instance().createDocument(1, 1, "DeepDream conversion", "RGBA", "U8", "",
                                              72.0)
    if scratch is None:
        return None
    try:
        temp = scratch.createNode("conversion", "paintlayer")
        if temp is None or not temp.setColorSpace(*source):
            return None
        pixels.write(temp, data, rect)  # (a layer's pixels may lie outside its canvas)
        if not temp.setColorSpace(*target):
            return None
        return pixels.read(temp, rect)
    finally:
        scratch.close()


def idle(document: Any) -> bool:
    """Whether Krita has finished what it was doing to the image (a closed document is
    idle: ``finish`` then says it was closed).  Krita 5.2's API has no isIdle: a barrier
    lock that can be had at once, and is given back, tells the same."""
    if document.rootNode() is None:
        return True
    if not document.tryBarrierLock():
        return False
    document.unlock()
    return True


def prepare(document: Any, node: Any, use_selection: bool = True,
            whole_canvas: bool = False) -> PreparedDream:
    """Read the node's pixels (and the selection's mask) ready to send; raises DreamError.
    ``whole_canvas``: the canvas, not only where the layer has pixels (a dream from noise
    is a picture of its own, so an empty layer takes it too)."""
    if document is None:
        raise DreamError("no document is open")
    if node is None:
        raise DreamError("no active layer")
    if node.type().endswith("mask"):
        raise DreamError("DeepDream works on layers, not on masks; select a layer")
    if node.type() != "paintlayer":
        # their pixelData is empty (group, clone), a selection (fill, filter) or rendered
        # from something else (vector, file), and a copy of them would not keep a dream
        kind = _OTHER_LAYERS.get(node.type(), "layers of this kind")
        raise DreamError(f"{kind} cannot be dreamed; select a paint layer")
    canvas = Rect(0, 0, document.width(), document.height())
    rect = canvas if whole_canvas else Rect.of(node.bounds()).intersected(canvas)
    if rect.empty:
        raise DreamError(f"layer {node.name()!r} has no pixels on the canvas")
    selection = document.selection() if use_selection else None
    mask = None
    if selection is not None:
        rect = rect.intersected(Rect.of(selection))  # a Selection has x/y/width/height too
        # the selection over rect, one u8 per pixel (Krita's own feathered values)
        mask = pixels.read(selection, rect) if not rect.empty else b""
        if not mask.strip(b"\0"):
            raise DreamError("the selection does not touch the active layer")
    model, depth, profile = _space(node)
    fmt = pixels.wire_format(model, depth, profile)
    space = (model, depth, profile)
    original = None  # the node's own bytes, when they are not what is sent
    data = pixels.read(node, rect)
    if fmt is None:
        original, space = data, pixels.working_space(depth)
        converted = convert(original, rect, (model, depth, profile), space)
        if converted is None:
            raise DreamError(f"Krita could not convert the {model} {depth} layer to RGBA")
        data, fmt = converted, pixels.wire_format(*space)
    assert fmt is not None
    if len(data) != fmt.frame_size(rect.width, rect.height):
        raise DreamError(f"unexpected pixel data size for a {model} {depth} layer")
    frame = document.currentTime() if node.animated() else None
    return PreparedDream(document, node, rect, fmt, data, mask, space, _position(node),
                         (document.width(), document.height()), frame,
                         original=data if original is None else original,
                         original_space=(model, depth, profile), bounds=Rect.of(node.bounds()))
