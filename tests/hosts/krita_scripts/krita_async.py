"""Runs inside real Krita (kritarunner): the docker's non-blocking path (DreamRunner driven by
Qt's event loop): to the end, cancelled after the first progress report, with the daemon
killed then (the chroot shares the host's processes) or with the document closed then.

Input: $DD_CASES (cases as for krita_cases.py, plus "cancel": true, "kill_pid": PID,
"close_document": true or "switch_time": FRAME, a user moving to another frame).
Output: one line ``DD_RESULT <json>``.  A 20 ms QTimer counts how often the event loop ran
while dreaming.
"""

from __future__ import annotations

import os
from typing import Any

from deepdream_krita import controller
from deepdream_krita.qt import QtCore
from krita_cases import animation_facts, build, keyframes, rect, run_all

LIMIT_MS = 240_000


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    doc, layer = build(case)
    root = doc.rootNode()
    names_before = [c.name() for c in root.childNodes()]
    pixels_before = bytes(layer.pixelData(*rect(layer)))
    frames_before = keyframes(doc, layer) if layer.animated() else {}
    runner = controller.runner()
    loop = QtCore.QEventLoop()
    out: dict[str, Any] = {"name": case["name"], "progress": [], "ticks": 0}
    results: list[Any] = []  # the new layer

    # what a case does once the dream has started: (its key, the fact noting when, the act)
    actions = (("cancel", "cancel_at", runner.cancel),
               ("kill_pid", "killed_at", lambda: os.kill(case["kill_pid"], 9)),  # SIGKILL
               ("close_document", "closed_at", doc.close),  # a user closing its view
               ("switch_time", "switched_at", lambda: doc.setCurrentTime(case["switch_time"])))

    def on_progress(percent: int, text: str) -> None:
        out["progress"].append(percent)
        for key, when, act in actions:
            if case.get(key) and percent > 0 and when not in out:
                out[when] = out["ticks"]
                act()

    def on_done(node: Any, message: str | None = None) -> None:
        out["result"], out["message"] = node.name(), message
        results.append(node)
        loop.quit()

    def on_failed(message: str) -> None:
        out["error"] = message
        loop.quit()

    def tick() -> None:
        out["ticks"] += 1

    ticker = QtCore.QTimer()
    ticker.timeout.connect(tick)
    ticker.start(20)
    runner.progressed.connect(on_progress)
    runner.succeeded.connect(on_done)
    runner.failed.connect(on_failed)
    QtCore.QTimer.singleShot(LIMIT_MS, loop.quit)
    out["started"] = runner.start(doc, layer, case["settings"])
    if out["started"]:
        out["busy_after_start"] = runner.busy
        loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    ticker.stop()
    for signal, slot in ((runner.progressed, on_progress), (runner.succeeded, on_done),
                         (runner.failed, on_failed)):
        signal.disconnect(slot)
    out["busy_at_end"] = runner.busy
    out["layers_before"] = names_before
    if "closed_at" in out:  # nothing left to look at, nor to close
        return out
    out["layers_after"] = [c.name() for c in root.childNodes()]
    out["original_unchanged"] = bytes(layer.pixelData(*rect(layer))) == pixels_before
    if frames_before:  # every keyframe, whichever frame the document shows now
        out["original_unchanged"] = keyframes(doc, layer) == frames_before
        if results:
            out.update(animation_facts(doc, layer, results[0], frames_before))
    doc.close()
    return out


def main(args: Any) -> None:
    run_all(run_case)
