"""Runs inside real Krita (kritarunner): the docker's non-blocking path (DreamRunner driven by
Qt's event loop): to the end, cancelled after the first progress report, with the daemon
killed then (the chroot shares the host's processes) or with the document closed then.

Input: $DD_CASES (cases as for krita_cases.py, plus "cancel": true, "kill_pid": PID,
"close_document": true or "switch_time": FRAME, a user moving to another frame; or a user
changing the layer: "convert_to": [MODEL, DEPTH, PROFILE], "move_to": [X, Y],
"rotate_layer": RADIANS, "remove_layer": true, "into_group": true (a new group where it
was), "save_as": PATH, painting on it: "paint_rect": [X, Y, W, H] (opaque white) or
filtering it: "filter": NAME (over the whole layer), or the image: "scale_to": [W, H],
"rotate_image": RADIANS, "resize_canvas": [X, Y, W, H] (Krita's Resize Canvas); or
"start_again": true, the action pressed again).  With
"reference": true the same dream is first done blocking, before any change, and the result is
compared with it changed the way the user changed the layer (a reference to be turned stays
in the document, hidden: Krita turns only the layers of a document).
Output: one line ``DD_RESULT <json>``.  A 20 ms QTimer counts how often the event loop ran
while dreaming.
"""

from __future__ import annotations

import os
from typing import Any

import deepdream_krita
from deepdream_krita import controller
from deepdream_krita.qt import QtCore
from deepdream_protocol.client import Client
from krita import Krita
from krita_cases import animation_facts, build, keyframes, rect, run_all, samples

LIMIT_MS = 240_000
# How far a sample may be from the reference's (a colour conversion may round differently).
TOLERANCE = {"U8": 2, "U16": 2 * 257}


def unlike_reference(doc: Any, layer: Any, result: Any, reference: Any,
                     case: dict[str, Any]) -> int:
    """Pixels where ``result`` differs from ``reference`` (the same dream, done before the
    user changed the layer) once the reference got the layer's colour space and position,
    or was turned as the user turned the layer; pixels the user painted are not counted."""
    if case.get("rotate_layer"):
        reference.rotateNode(case["rotate_layer"])
        doc.waitForDone()
    elif not case.get("rotate_image"):  # (Krita turned it with the image)
        reference.setColorSpace(layer.colorModel(), layer.colorDepth(), layer.colorProfile())
        reference.move(layer.position().x(), layer.position().y())
    x0, y0, w0, h0 = rect(result)
    x1, y1, w1, h1 = rect(reference)
    ux, uy = min(x0, x1), min(y0, y1)
    uw, uh = max(x0 + w0, x1 + w1) - ux, max(y0 + h0, y1 + h1) - uy
    depth = layer.colorDepth()
    a = samples(bytes(result.pixelData(ux, uy, uw, uh)), depth)
    b = samples(bytes(reference.pixelData(ux, uy, uw, uh)), depth)
    per_pixel = len(a) // (uw * uh)
    painted = case.get("paint_rect") or [0, 0, 0, 0]
    return sum(any(abs(a[i + c] - b[i + c]) > TOLERANCE[depth] for c in range(per_pixel))
               and not in_rect(ux + k % uw, uy + k // uw, painted)
               for k, i in enumerate(range(0, len(a), per_pixel)))


def in_rect(x: int, y: int, area: list[int]) -> bool:
    return area[0] <= x < area[0] + area[2] and area[1] <= y < area[1] + area[3]


def paint(layer: Any, area: list[int]) -> None:
    """A user's opaque white stroke over ``area`` (integer layers: all bits set)."""
    bpp = len(bytes(layer.pixelData(0, 0, 1, 1)))
    layer.setPixelData(b"\xff" * (area[2] * area[3] * bpp), *area)


def stroke_facts(layer: Any, result: Any, reference: Any, area: list[int]) -> dict[str, int]:
    """Of the painted pixels: how many the result shows as the layer has them now (the
    stroke kept) and how many as the reference (the dream of what was there)."""
    bpp = len(bytes(layer.pixelData(0, 0, 1, 1)))
    now, got = bytes(layer.pixelData(*area)), bytes(result.pixelData(*area))
    dream = bytes(reference.pixelData(*area))
    pixels = [slice(i, i + bpp) for i in range(0, len(now), bpp)]
    return {"stroke_pixels": len(pixels),
            "stroke_kept": sum(got[p] == now[p] for p in pixels),
            "stroke_covered": sum(got[p] == dream[p] for p in pixels)}


def into_group(doc: Any, layer: Any) -> None:
    """A user putting the layer into a new group (where it was)."""
    group = doc.createGroupLayer("group")
    layer.parentNode().addChildNode(group, layer)
    layer.remove()
    group.addChildNode(layer, None)


def everything(doc: Any, layer: Any) -> bytes:
    """The layer's pixels over the canvas and a margin around it."""
    return bytes(layer.pixelData(-64, -64, doc.width() + 128, doc.height() + 128))


def run_event_loop(ms: int) -> None:
    """What a slot on the progress signal may do (Image › Crop does it): run an event loop,
    in which the docker's timer fires."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(ms, loop.quit)
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()


def step(case: dict[str, Any], what: str) -> None:
    """Say what the script is doing (read back when Krita hangs: see run_in_root)."""
    print(f"DD_STEP {case['name']}: {what}", flush=True)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    step(case, "start")
    doc, layer = build(case)
    root = doc.rootNode()
    names_before = [c.name() for c in root.childNodes()]
    pixels_before = bytes(layer.pixelData(*rect(layer)))
    frames_before = keyframes(doc, layer) if layer.animated() else {}
    runner = controller.runner()
    loop = QtCore.QEventLoop()
    out: dict[str, Any] = {"name": case["name"], "progress": [], "ticks": 0}
    results: list[Any] = []  # the new layer
    left: dict[str, bytes] = {}  # the layer's pixels once the user changed it
    reference = None
    if case.get("reference"):  # the same dream, blocking, taken out of the document again
        reference = deepdream_krita.dream_layer(doc, layer, case["settings"])
        if case.get("rotate_image") or case.get("rotate_layer"):  # or kept, hidden (Krita
            # turns it with the image, or unlike_reference as the user turned the layer)
            reference.setName("reference")
            reference.setVisible(False)
            names_before = [c.name() for c in root.childNodes()]
        else:
            reference.remove()

    # what a case does once the dream has started: (its key, the fact noting when, the act)
    actions = (("cancel", "cancel_at", runner.cancel),
               ("kill_pid", "killed_at", lambda: os.kill(case["kill_pid"], 9)),  # SIGKILL
               ("close_document", "closed_at", doc.close),  # a user closing its view
               ("switch_time", "switched_at", lambda: doc.setCurrentTime(case["switch_time"])),
               ("convert_to", "converted_at", lambda: layer.setColorSpace(*case["convert_to"])),
               ("move_to", "moved_at", lambda: layer.move(*case["move_to"])),
               ("rotate_image", "rotated_at", lambda: doc.rotateImage(case["rotate_image"])),
               ("rotate_layer", "rotated_at", lambda: layer.rotateNode(case["rotate_layer"])),
               ("paint_rect", "painted_at", lambda: paint(layer, case["paint_rect"])),
               ("filter", "filtered_at",
                lambda: Krita.instance().filter(case["filter"]).apply(layer, *rect(layer))),
               ("resize_canvas", "resized_at",
                lambda: doc.resizeImage(*case["resize_canvas"])),
               ("scale_to", "scaled_at",
                lambda: doc.scaleImage(*case["scale_to"], 72, 72, "Bicubic")),
               ("remove_layer", "removed_at", lambda: layer.remove()),
               ("into_group", "grouped_at", lambda: into_group(doc, layer)),
               ("flatten", "flattened_at", doc.flatten),
               ("save_as", "saved_at",
                lambda: out.__setitem__("saved", doc.saveAs(case["save_as"]))),
               ("event_loop_ms", "event_loop_at",  # a slot that runs an event loop
                lambda: run_event_loop(case["event_loop_ms"])),
               ("start_again", "started_again_at",  # the action pressed again meanwhile
                lambda: out.__setitem__("started_again",
                                        runner.start(doc, layer, case["settings"]))))

    def on_progress(percent: int, text: str) -> None:
        out["progress"].append(percent)
        acted = False
        for key, when, act in actions:
            if case.get(key) and percent > 0 and when not in out:
                out[when] = out["ticks"]
                step(case, key)
                act()
                acted = True
        if acted and "closed_at" not in out:  # the layer as the user left it
            doc.waitForDone()
            left["layer"] = everything(doc, layer)

    def on_done(node: Any, message: str | None = None) -> None:
        out["result"], out["message"] = node.name(), message
        results.append(node)
        loop.quit()

    def on_failed(message: str) -> None:
        out["error"] = message
        loop.quit()

    def on_refused(message: str) -> None:
        out["refused"] = message

    def tick() -> None:
        out["ticks"] += 1

    ticker = QtCore.QTimer()
    ticker.timeout.connect(tick)
    ticker.start(20)
    runner.progressed.connect(on_progress)
    runner.succeeded.connect(on_done)
    runner.failed.connect(on_failed)
    runner.refused.connect(on_refused)
    QtCore.QTimer.singleShot(case.get("limit_ms", LIMIT_MS), loop.quit)
    submit = Client.submit
    if case.get("submit_raises"):  # a fault of the client's own, not an answer of the daemon
        def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError(case["submit_raises"])
        Client.submit = broken
    try:
        out["started"] = runner.start(doc, layer, case["settings"])
        if out["started"]:
            out["busy_after_start"] = runner.busy
            loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    finally:
        Client.submit = submit
    ticker.stop()
    for signal, slot in ((runner.progressed, on_progress), (runner.succeeded, on_done),
                         (runner.failed, on_failed), (runner.refused, on_refused)):
        signal.disconnect(slot)
    step(case, "dream ended")
    out["busy_at_end"] = runner.busy
    out["layers_before"] = names_before
    if "closed_at" in out:  # nothing left to look at, nor to close
        return out
    # (the root as it is now: flattening the image gives the document a new one)
    out["layers_after"] = [c.name() for c in doc.rootNode().childNodes()]
    out["original_unchanged"] = bytes(layer.pixelData(*rect(layer))) == pixels_before
    if "layer" in left:  # changed by the user meanwhile: is it still as the user left it?
        out["left_as_the_user_left_it"] = everything(doc, layer) == left["layer"]
    if results:
        result = results[0]
        out["space"] = [result.colorModel(), result.colorDepth(), result.colorProfile()]
        out["siblings"] = [c.name() for c in result.parentNode().childNodes()]
        out["layer_space"] = [layer.colorModel(), layer.colorDepth(), layer.colorProfile()]
        if reference is not None:
            out["pixels"] = rect(result)[2] * rect(result)[3]
            out["unlike_reference"] = unlike_reference(doc, layer, result, reference, case)
            if case.get("paint_rect"):
                out.update(stroke_facts(layer, result, reference, case["paint_rect"]))
    if frames_before:  # every keyframe, whichever frame the document shows now
        out["original_unchanged"] = keyframes(doc, layer) == frames_before
        if results:
            out.update(animation_facts(doc, layer, results[0], frames_before))
    doc.close()
    return out


def main(args: Any) -> None:
    run_all(run_case)
