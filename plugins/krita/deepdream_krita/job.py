"""One dream of one Krita node: read it (prepare) and add the result as a new layer (finish).

Shared by the blocking ``dream_layer`` and the docker/action, which differ only in how they
wait for the daemon.  The user's node is only ever read; CMYK, Lab and other models the daemon
cannot take are converted on a temporary duplicate by Krita's own colour management.

An animated paint layer is dreamed at the document's current frame.  Its result is a
duplicate too, so it keeps every keyframe (Krita 5.2's scripting API cannot remove one, and a
plain layer would show the dreamed frame all through the animation): only the drawing shown
at that frame is dreamed, the others stay copies of the original's, and the docker's status
line says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepdream_protocol.pixels import PixelFormat

from . import pixels
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

    def finish(self, dreamed: bytes) -> Any:
        """Add the dream as a new paint layer directly above the node; return that layer.

        ``dreamed`` is the Client's result for this dream, so it already has the size of
        ``rect`` in ``fmt`` (the Client fails a result of another size).  The new layer is a
        duplicate of the node (its opacity, blend mode, inherit alpha, alpha lock and masks:
        ``pixelData`` reads the pixels without the masks, so without copies of them the
        result would show what the original hides), visible and unlocked, with the dream
        written into it before it is inserted: one undoable step, and the original layer is
        never touched.
        """
        if self.document.rootNode() is None:  # closed while the daemon dreamed
            raise DreamError(DOCUMENT_CLOSED)
        if self.canvas not in (None, (self.document.width(), self.document.height())):
            raise DreamError(IMAGE_RESIZED)  # scaled or cropped: the dream fits no more
        if self.frame is not None and self.document.currentTime() != self.frame:
            # The user moved on while the daemon dreamed.  A layer's pixels are those of the
            # current frame's keyframe, so go back, or the dream would land on another drawing.
            self.document.setCurrentTime(self.frame)
            self.document.waitForDone()
        parent = self.node.parentNode()
        if parent is None:
            raise DreamError("the layer is no longer in the document")
        # A layer moved (or converted) while the daemon dreamed: the dream follows its pixels.
        x1, y1 = _position(self.node)
        x0, y0 = self.position or (x1, y1)
        rect = Rect(self.rect.x + x1 - x0, self.rect.y + y1 - y0, self.rect.width,
                    self.rect.height)
        region = self._in_node_space(dreamed, rect)
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
        return text

    def _in_node_space(self, dreamed: bytes, rect: Rect) -> bytes:
        """``dreamed`` in the node's colour space now (it differs from ``space`` for a CMYK,
        Lab, ... node, or when the user converted the layer meanwhile), for ``rect``."""
        space = _space(self.node)
        if self.space is None or self.space == space:
            return dreamed
        # Krita converts the dream on an empty temporary layer: only rect's pixels, no undo.
        temp = self.document.createNode("DeepDream conversion", "paintlayer")
        if temp is None or not temp.setColorSpace(*self.space):
            raise DreamError("Krita could not convert the dream to the layer's colour space")
        pixels.write(temp, dreamed, rect)
        if not temp.setColorSpace(*space):
            raise DreamError("Krita could not convert the dream back to the layer's colour space")
        back = pixels.read(temp, rect)
        if self.mask is None:
            return back
        original = pixels.read(self.node, rect)
        bpp = len(original) // (rect.width * rect.height)
        return pixels.splice_unmasked(original, back, self.mask, bpp)


def prepare(document: Any, node: Any, use_selection: bool = True) -> PreparedDream:
    """Read the node's pixels (and the selection's mask) ready to send; raises DreamError."""
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
    rect = Rect.of(node.bounds()).intersected(canvas)
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
    source, space = node, (model, depth, profile)
    if fmt is None:
        source, space = node.duplicate(), pixels.working_space(depth)
        if not source.setColorSpace(*space):
            raise DreamError(f"Krita could not convert the {model} {depth} layer to RGBA")
        fmt = pixels.wire_format(*space)
    assert fmt is not None
    data = pixels.read(source, rect)
    if len(data) != fmt.frame_size(rect.width, rect.height):
        raise DreamError(f"unexpected pixel data size for a {model} {depth} layer")
    frame = document.currentTime() if node.animated() else None
    return PreparedDream(document, node, rect, fmt, data, mask, space, _position(node),
                         (document.width(), document.height()), frame)
