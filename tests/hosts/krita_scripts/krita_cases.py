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
from krita import Krita, Selection

CHANNELS = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5, "LABA": 4}
SAMPLES = {"U8": ("B", 255), "U16": ("H", 65535), "F16": ("e", 0), "F32": ("f", 0)}


def pattern(width: int, height: int, model: str, depth: str) -> bytes:
    """A deterministic texture in the node's own layout; the last channel (alpha) opaque."""
    code, top = SAMPLES[depth]
    colours = CHANNELS[model] - 1
    values = []
    for y in range(height):
        for x in range(width):
            values += [0.1 + 0.8 * ((x * 37 + y * 23 + c * 71) % 97) / 96 for c in range(colours)]
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
    width, height = case["size"]
    model, depth = case["model"], case["depth"]
    doc = Krita.instance().createDocument(width, height, case["name"], model, depth,
                                          case.get("profile", ""), 72.0)
    root = doc.rootNode()
    background = root.childNodes()[0]
    layer = doc.createNode("paint", "paintlayer")
    layer.setPixelData(pattern(width, height, model, depth), 0, 0, width, height)
    root.addChildNode(layer, background)
    root.addChildNode(doc.createNode("on top", "paintlayer"), layer)
    if case.get("offset"):
        layer.move(*case["offset"])
    if case.get("selection"):
        sel = Selection()
        sel.select(*case["selection"], 255)
        if case.get("feather"):
            sel.feather(case["feather"])
        doc.setSelection(sel)
    return doc, layer


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


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    doc, layer = build(case)
    root = doc.rootNode()
    names_before = [c.name() for c in root.childNodes()]
    bounds_before = rect(layer)
    pixels_before = bytes(layer.pixelData(*bounds_before))
    out: dict[str, Any] = {"name": case["name"]}
    try:
        result = deepdream_krita.dream_layer(doc, layer, case["settings"])
    except deepdream_krita.DreamError as exc:
        out["error"] = str(exc)
        result = None
    names_after = [c.name() for c in root.childNodes()]
    out["original_unchanged"] = (rect(layer) == bounds_before
                                 and bytes(layer.pixelData(*bounds_before)) == pixels_before)
    out["layers_before"], out["layers_after"] = names_before, names_after
    if result is not None:
        siblings = root.childNodes()
        index = [c.name() for c in siblings].index(layer.name())
        out["directly_above"] = (result.parentNode().name() == root.name()
                                 and siblings[index + 1].name() == result.name())
        out["space"] = [result.colorModel(), result.colorDepth(), result.colorProfile()]
        out["original_space"] = [layer.colorModel(), layer.colorDepth(), layer.colorProfile()]
        out.update(compare(doc, layer, result, case))
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
