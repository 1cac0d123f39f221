"""Runs inside real Krita (kritarunner): builds small documents, dreams a layer in each, and
reports what it finds as JSON for test_krita.py to assert on.

Input: the JSON file named by $DD_CASES (a list of cases).  Output: one line
``DD_RESULT <json>`` on stdout (kritarunner's exit code says nothing about the script).
"""

from __future__ import annotations

import json
import os
import struct
import traceback
from typing import Any

import deepdream_krita
from deepdream_krita.qt import QtGui
from krita import InfoObject, Krita, Selection

QImage = QtGui.QImage

CHANNELS = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5, "LABA": 4}
# The layer properties a case may set ("props"), with Node's setter of each.
SETTERS = {"opacity": "setOpacity", "blend": "setBlendingMode", "inherit_alpha": "setInheritAlpha",
           "alpha_locked": "setAlphaLocked", "visible": "setVisible", "locked": "setLocked"}
SAMPLES = {"U8": ("B", 255), "U16": ("H", 65535), "F16": ("e", 0), "F32": ("f", 0)}


def pattern(width: int, height: int, model: str, depth: str, sparse: bool = False,
            flat: bool = False) -> bytes:
    """A deterministic texture in the node's own layout; the last channel (alpha) opaque.
    ``sparse``: like line art, transparent (all samples 0) but for thin diagonal lines;
    ``flat``: one colour all over."""
    code, top = SAMPLES[depth]
    colours = CHANNELS[model] - 1
    values = []
    for y in range(height):
        for x in range(width):
            if sparse and (x * 37 + y * 23) % 97 >= 8:
                values += [0.0] * (colours + 1)
                continue
            at = 0 if flat else x * 37 + y * 23
            values += [0.1 + 0.8 * ((at + c * 71) % 97) / 96 for c in range(colours)]
            values.append(1.0)
    if top:
        return struct.pack(f"<{len(values)}{code}", *(round(v * top) for v in values))
    return struct.pack(f"<{len(values)}{code}", *values)


def samples(data: bytes, depth: str) -> tuple[Any, ...]:
    code = SAMPLES[depth][0]
    return struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data)


def off_8bit_grid(value: float, depth: str) -> bool:
    """A sample an 8-bit round trip could not have produced."""
    if depth == "U16":
        return value % 257 != 0
    scaled = value * 255
    return abs(scaled - round(scaled)) > 1e-3


def rect(node_or_sel: Any) -> list[int]:
    if hasattr(node_or_sel, "bounds"):
        b = node_or_sel.bounds()
        return [b.x(), b.y(), b.width(), b.height()]
    s = node_or_sel
    return [s.x(), s.y(), s.width(), s.height()]


def build(case: dict[str, Any]) -> tuple[Any, Any]:
    if case.get("animation"):
        doc, layer = open_animation(case)
        root = doc.rootNode()
    else:
        width, height = case["size"]
        model, depth = case["model"], case["depth"]
        doc = Krita.instance().createDocument(width, height, case["name"], model, depth,
                                              case.get("profile", ""), 72.0)
        root = doc.rootNode()
        background = root.childNodes()[0]
        layer = doc.createNode("paint", "paintlayer")
        if not case.get("empty"):  # (a new layer as Krita makes it: nothing painted)
            layer.setPixelData(pattern(width, height, model, depth, case.get("sparse", False),
                                       case.get("flat", False)), 0, 0, width, height)
        root.addChildNode(layer, background)
    root.addChildNode(doc.createNode("on top", "paintlayer"), layer)
    if case.get("offset"):
        layer.move(*case["offset"])
    for mask in case.get("masks", []):
        layer.addChildNode(make_mask(doc, mask), None)
    props = case.get("props", {})
    for name, setter in SETTERS.items():  # the lock last
        if name in props:
            getattr(layer, setter)(props[name])
    if case.get("selection"):
        sel = Selection()
        sel.select(*case["selection"], 255)
        for more in case.get("selection_add", []):  # e.g. an L shape: its bounds hold
            other = Selection()  # pixels it does not select
            other.select(*more, 255)
            sel.add(other)
        if case.get("feather"):
            sel.feather(case["feather"])
        doc.setSelection(sel)
    return doc, layer


def open_animation(case: dict[str, Any]) -> tuple[Any, Any]:
    """An animated WebP (written by the test) opened as a document: Krita makes its frames
    the keyframes of one animated paint layer (libkis cannot add keyframes itself).  That
    layer is renamed "paint" and the document moved to the case's "time"."""
    doc = Krita.instance().openDocument(case["animation"])
    doc.waitForDone()
    layer = doc.rootNode().childNodes()[0]
    layer.setName("paint")
    doc.setCurrentTime(case["time"])
    doc.waitForDone()
    return doc, layer


def keyframes(doc: Any, node: Any) -> dict[int, bytes]:
    """Each keyframe's time (over the clip) and its pixels over the canvas."""
    canvas = (0, 0, doc.width(), doc.height())
    return {t: bytes(node.pixelDataAtTime(*canvas, t))
            for t in range(doc.fullClipRangeEndTime() + 2) if node.hasKeyframeAtTime(t)}


# The transparency mask shows only this rectangle of its layer.
MASK_SHOWN = [0, 0, 20, 16]


def make_mask(doc: Any, kind: str) -> Any:
    if kind == "transparency":
        mask = doc.createTransparencyMask("shows the top left")
        shown = Selection()
        shown.select(*MASK_SHOWN, 255)
        mask.setSelection(shown)
        return mask
    everywhere = Selection()
    everywhere.select(0, 0, 10_000, 10_000, 255)
    return doc.createFilterMask("inverts", Krita.instance().filter("invert"), everywhere)


def make_target(doc: Any, layer: Any, kind: str) -> Any:
    """A layer of another kind than paint, directly above ``layer``."""
    if kind == "group":
        target = doc.createGroupLayer("group")
        child = doc.createNode("in the group", "paintlayer")
    elif kind == "clone":
        target, child = doc.createCloneLayer("clone", layer), None
    elif kind == "fill":
        colour = InfoObject()
        colour.setProperty("color", "red")
        everywhere = Selection()
        everywhere.select(0, 0, doc.width(), doc.height(), 255)
        target, child = doc.createFillLayer("fill", "color", colour, everywhere), None
    elif kind == "filter":
        everywhere = Selection()
        everywhere.select(0, 0, doc.width(), doc.height(), 255)
        target = doc.createFilterLayer("filter", Krita.instance().filter("invert"), everywhere)
        child = None
    elif kind == "file":  # showing a PNG written for it
        path = os.path.join(os.environ["HOME"], "file_layer.png")
        image = QImage(doc.width(), doc.height(), QImage.Format_ARGB32)
        image.fill(0xFF3366AA)
        image.save(path)
        target, child = doc.createFileLayer("file", path, "None"), None
    else:
        target, child = doc.createVectorLayer("vector"), None
    layer.parentNode().addChildNode(target, layer)
    if child is not None:
        child.setPixelData(bytes(layer.pixelData(*rect(layer))), *rect(layer))
        target.addChildNode(child, None)
    doc.waitForDone()
    return target


def properties(node: Any) -> dict[str, Any]:
    return {"opacity": node.opacity(), "blend": node.blendingMode(),
            "inherit_alpha": node.inheritAlpha(), "alpha_locked": node.alphaLocked(),
            "visible": node.visible(), "locked": node.locked()}


def hidden_alpha(doc: Any, node: Any) -> int:
    """The most opaque pixel of what ``node`` shows (its projection, masks applied) outside
    MASK_SHOWN: 0 when its transparency mask hides everything there."""
    doc.refreshProjection()
    doc.waitForDone()
    data = bytes(node.projectionPixelData(0, 0, doc.width(), doc.height()))
    x0, y0, w0, h0 = MASK_SHOWN
    most = 0
    for i in range(doc.width() * doc.height()):
        x, y = i % doc.width(), i // doc.width()
        if not (x0 <= x < x0 + w0 and y0 <= y < y0 + h0):
            most = max(most, data[i * 4 + 3])  # RGBA U8 is B,G,R,A
    return most


def compare(doc: Any, layer: Any, result: Any, case: dict[str, Any]) -> dict[str, Any]:
    """Pixel-by-pixel: changed where fully selected, identical where not selected at all."""
    depth = case["depth"]
    x0, y0, w0, h0 = rect(layer)
    x1, y1, w1, h1 = rect(result)
    ux, uy = min(x0, x1, 0), min(y0, y1, 0)
    uw = max(x0 + w0, x1 + w1, doc.width()) - ux
    uh = max(y0 + h0, y1 + h1, doc.height()) - uy
    before = bytes(layer.pixelData(ux, uy, uw, uh))
    after = bytes(result.pixelData(ux, uy, uw, uh))
    bpp = len(before) // (uw * uh)
    sel = doc.selection() if case["settings"].get("use_selection", True) else None
    mask = bytes(sel.pixelData(ux, uy, uw, uh)) if sel is not None else b"\xff" * (uw * uh)
    facts = {"inside": 0, "inside_changed": 0, "outside": 0, "outside_changed": 0,
             "fine_pixels": 0, "bytes_per_pixel": bpp}
    for i in range(uw * uh):
        x, y = ux + i % uw, uy + i // uw
        on_layer = x0 <= x < x0 + w0 and y0 <= y < y0 + h0
        on_canvas = 0 <= x < doc.width() and 0 <= y < doc.height()
        a, b = before[i * bpp:(i + 1) * bpp], after[i * bpp:(i + 1) * bpp]
        if on_layer and on_canvas and mask[i] == 255:
            facts["inside"] += 1
            if a != b:
                facts["inside_changed"] += 1
                if depth != "U8":
                    facts["fine_pixels"] += any(off_8bit_grid(v, depth) for v in samples(b, depth))
        elif not (on_layer and on_canvas) or mask[i] == 0:
            facts["outside"] += 1
            facts["outside_changed"] += a != b
    return facts


def animation_facts(doc: Any, layer: Any, result: Any,
                    frames_before: dict[int, bytes]) -> dict[str, Any]:
    """Which frames the result has, and how many pixels of each differ from the original's
    frame at the same time (pixelData reads the current frame)."""
    canvas = (0, 0, doc.width(), doc.height())
    bpp = len(bytes(layer.pixelData(*canvas))) // (doc.width() * doc.height())

    def changed(a: bytes, b: bytes) -> int:
        return sum(a[i:i + bpp] != b[i:i + bpp] for i in range(0, len(a), bpp))

    facts: dict[str, Any] = {
        "time_after": doc.currentTime(), "pixels": doc.width() * doc.height(),
        "keyframes": sorted(frames_before), "result_animated": result.animated(),
        "current_changed": changed(bytes(layer.pixelData(*canvas)),
                                   bytes(result.pixelData(*canvas)))}
    if result.animated():
        # -1: a keyframe the original does not have
        facts["result_keyframes"] = {
            str(t): changed(frames_before[t], data) if t in frames_before else -1
            for t, data in keyframes(doc, result).items()}
    return facts


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    doc, layer = build(case)
    target = make_target(doc, layer, case["target"]) if case.get("target") else layer
    root = doc.rootNode()
    names_before = [c.name() for c in root.childNodes()]
    bounds_before = rect(layer)
    pixels_before = bytes(layer.pixelData(*bounds_before))
    frames_before = keyframes(doc, layer) if layer.animated() else {}
    out: dict[str, Any] = {"name": case["name"]}
    try:
        result = deepdream_krita.dream_layer(doc, target, case["settings"])
    except deepdream_krita.DreamError as exc:
        out["error"] = str(exc)
        result = None
    names_after = [c.name() for c in root.childNodes()]
    out["original_unchanged"] = (rect(layer) == bounds_before
                                 and bytes(layer.pixelData(*bounds_before)) == pixels_before
                                 and (not frames_before or keyframes(doc, layer) == frames_before))
    out["layers_before"], out["layers_after"] = names_before, names_after
    if result is not None:
        siblings = root.childNodes()
        index = [c.name() for c in siblings].index(layer.name())
        out["directly_above"] = (result.parentNode().name() == root.name()
                                 and siblings[index + 1].name() == result.name())
        out["space"] = [result.colorModel(), result.colorDepth(), result.colorProfile()]
        out["original_space"] = [layer.colorModel(), layer.colorDepth(), layer.colorProfile()]
        out.update(compare(doc, layer, result, case))
        out["properties"], out["original_properties"] = properties(result), properties(layer)
        out["masks"] = [[c.type(), c.name()] for c in result.childNodes()]
        out["original_masks"] = [[c.type(), c.name()] for c in layer.childNodes()]
        if frames_before:
            out.update(animation_facts(doc, layer, result, frames_before))
        if case.get("empty"):  # how much of the canvas the dream covers, opaque (RGBA U8)
            canvas = bytes(result.pixelData(0, 0, doc.width(), doc.height()))
            out["opaque_pixels"] = canvas[3::4].count(255)
        if "transparency" in case.get("masks", []):
            out["hidden_alpha"] = hidden_alpha(doc, result)
            out["original_hidden_alpha"] = hidden_alpha(doc, layer)
    doc.close()
    return out


def run_all(run_case: Any) -> None:
    """Run every case of DD_CASES and print their results as one marker line (kritarunner's
    exit code says nothing, so the test parses this)."""
    with open(os.environ["DD_CASES"]) as f:
        cases = json.load(f)
    results = []
    for case in cases:
        try:
            results.append(run_case(case))
        except Exception:  # report and go on: one broken case must not hide the others
            results.append({"name": case["name"], "crash": traceback.format_exc()})
    print("DD_RESULT " + json.dumps(results), flush=True)


def main(args: Any) -> None:
    run_all(run_case)
