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
# Node.type() of the layers that are not paint layers, as a sentence names them.
_OTHER_LAYERS = {"grouplayer": "group layers", "clonelayer": "clone layers",
                 "filllayer": "fill layers", "filterlayer": "filter layers",
                 "vectorlayer": "vector layers", "filelayer": "file layers",
                 "referenceimageslayer": "reference image layers"}


def _space(node: Any) -> tuple[str, str, str]:
    return (node.colorModel(), node.colorDepth(), node.colorProfile())


@dataclass
class PreparedDream:
    """What is sent to the daemon, plus what is needed to write the answer back."""

    document: Any
    node: Any
    rect: Rect  # image coordinates of the dreamed region
    fmt: PixelFormat
    pixels: bytes
    mask: bytes | None  # u8 per pixel over rect, None = the whole region
    converted: Any = None  # the temporary RGBA duplicate when the node's model needed it
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
        if self.frame is not None and self.document.currentTime() != self.frame:
            # The user moved on while the daemon dreamed.  A layer's pixels are those of the
            # current frame's keyframe, so go back, or the dream would land on another drawing.
            self.document.setCurrentTime(self.frame)
            self.document.waitForDone()
        region = self._back_in_node_space(dreamed)
        parent = self.node.parentNode()
        if parent is None:
            raise DreamError("the layer is no longer in the document")
        result = self.node.duplicate()
        if result is None or _space(result) != _space(self.node):
            raise DreamError("Krita could not copy the layer for the result")
        result.setName(self.node.name() + RESULT_SUFFIX)
        result.setVisible(True)
        result.setLocked(False)  # the user's lock guards the original, not the new layer
        pixels.write(result, region, self.rect)
        if not parent.addChildNode(result, self.node):
            raise DreamError("Krita refused to add the result layer")
        return result

    def report(self, result: Any) -> str:
        """The status line for ``result``, the layer ``finish`` added."""
        text = f"added layer {result.name()!r}"
        if self.frame is not None:
            text += f"; it is animated and only its drawing at frame {self.frame} is dreamed"
        return text

    def _back_in_node_space(self, dreamed: bytes) -> bytes:
        if self.converted is None:
            return dreamed
        temp = self.converted
        pixels.write(temp, dreamed, self.rect)
        if not temp.setColorSpace(*_space(self.node)):
            raise DreamError("Krita could not convert the dream back to the layer's colour space")
        back = pixels.read(temp, self.rect)
        if self.mask is None:
            return back
        original = pixels.read(self.node, self.rect)
        bpp = len(original) // (self.rect.width * self.rect.height)
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
    source, converted = node, None
    if fmt is None:
        converted = node.duplicate()
        work = pixels.working_space(depth)
        if not converted.setColorSpace(*work):
            raise DreamError(f"Krita could not convert the {model} {depth} layer to RGBA")
        fmt = pixels.wire_format(*work)
        source = converted
    assert fmt is not None
    data = pixels.read(source, rect)
    if len(data) != fmt.frame_size(rect.width, rect.height):
        raise DreamError(f"unexpected pixel data size for a {model} {depth} layer")
    frame = document.currentTime() if node.animated() else None
    return PreparedDream(document, node, rect, fmt, data, mask, converted, frame)
