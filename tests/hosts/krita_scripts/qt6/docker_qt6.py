"""Drives the installed Krita plug-in's docker on PyQt6, inside krita.py's stand-in for
Krita 6, as an artist would: the settings, a preset, Dream, Cancel, a refusal.  Prints
``DD_RESULT {json}`` with what it saw; test_krita_qt6.py judges it.

Run with the root's python3, ``QT_QPA_PLATFORM=offscreen``, PYTHONPATH = this folder (for the
stand-in ``krita``) and the pykrita folder the plug-in was installed into.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6 import QtGui, QtWidgets

APP = QtWidgets.QApplication(sys.argv[:1])

import krita  # noqa: E402
from deepdream_krita import controller, qt  # noqa: E402

DREAM = json.loads(os.environ["DD_DREAM"])
W, H = 64, 48


def wait_until(done: Callable[[], bool], seconds: float = 120.0) -> bool:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        APP.processEvents()
        time.sleep(0.005)
    return done()


def photo(width: int, height: int) -> bytes:
    """Opaque BGRA with smooth colour ramps (something to dream on)."""
    return b"".join(bytes(((x * 4) % 256, (y * 5) % 256, (x + y) % 256, 255))
                    for y in range(height) for x in range(width))


def open_document(width: int, height: int, kind: str = "paintlayer") -> krita.Node:
    document = krita.Document(width, height)
    node = krita.Node(document, "paint", kind, photo(width, height))
    document.root.addChildNode(node, None)
    document.active = node
    krita.Krita.instance().document = document
    return node


def main() -> dict[str, Any]:
    app = krita.Krita.instance()
    docker = next(d for d in app.dockers() if type(d).__name__ == "DeepDreamDocker")
    docker.show()  # (hidden, failures would go to a modal dialog)
    fact: dict[str, Any] = {"qt_api": qt.QT_API, "actions": sorted(app.window.actions),
                            "fields": list(docker.fields)}
    runner = controller.runner()
    seen: list[int] = []
    runner.progressed.connect(lambda percent, _text: seen.append(percent))

    fact["catalog_fetched"] = wait_until(lambda: bool(docker.catalog), 30)
    model = docker.fields["model"]
    fact["models_offered"] = [model.itemText(i) for i in range(model.count())]

    docker.fields["preset"].setCurrentText("painterly")
    fact["after_preset"] = docker.values()
    docker.set_values({"preset": "", **DREAM})
    fact["saved"] = {name: value for (_group, name), value in app.settings.items()}
    # two windows, a docker each: one's change, then the other's catalog refresh and a
    # change of its own; the settings saved hold both changes
    other = type(docker)()
    docker.set_values({"octaves": 3})
    other._on_catalog(docker.catalog)
    other.set_values({"iterations": 3})
    fact["saved_two_windows"] = {name: value for (_group, name), value in app.settings.items()}
    other.deleteLater()
    docker.set_values(DREAM)

    def dream(node_kind: str = "paintlayer", size: tuple[int, int] = (W, H),
              cancel: bool = False, again: bool = False) -> dict[str, Any]:
        node = open_document(*size, kind=node_kind)
        before = bytes(node.data)
        seen.clear()
        docker.dream_button.click()
        out: dict[str, Any] = {"busy": runner.busy,
                               "dream_enabled": docker.dream_button.isEnabled()}
        if again:
            docker.dream_button.click()  # (disabled: nothing happens) and through the action
            app.window.actions["deepdream_krita_dream"].trigger()
            out["refused_message"] = docker.message.text()
            # a window opened meanwhile (Window › New Window) gets a docker of its own
            second = type(docker)()
            out["new_docker_buttons"] = [second.dream_button.isEnabled(),
                                         second.cancel_button.isEnabled()]
            second.deleteLater()
        if cancel:
            wait_until(lambda: any(0 < p < 100 for p in seen), 60)
            docker.cancel_button.click()
        out["ended"] = wait_until(lambda: not runner.busy)
        layers = node.document.root.children
        out.update(message=docker.message.text(), progress=seen[:],
                   layers=[n.name() for n in layers], original_unchanged=node.data == before,
                   dream_enabled_after=docker.dream_button.isEnabled(),
                   cancel_enabled_after=docker.cancel_button.isEnabled())
        if len(layers) > 1:
            result = layers[1]
            out["changed_pixels"] = sum(result.data[i:i + 4] != before[i:i + 4]
                                        for i in range(0, len(before), 4))
            out["result_visible"] = result.visible
            out["preview"] = not docker.preview.pixmap().isNull()
        return out

    fact["dream"] = dream(again=True)
    fact["group"] = dream(node_kind="grouplayer")
    # the guide image, picked with the field's button (the file dialog answered here)
    guide = os.path.join(tempfile.mkdtemp(), "guide.png")
    stripes = QtGui.QImage(32, 32, QtGui.QImage.Format.Format_RGB32)
    for y in range(32):
        for x in range(32):
            stripes.setPixelColor(x, y, QtGui.QColor(250, 40, 10) if y % 4 else
                                  QtGui.QColor(10, 40, 250))
    stripes.save(guide)
    for answer in (("", ""), (guide, "Images")):  # cancelled, then a file chosen
        qt.QFileDialog.getOpenFileName = staticmethod(lambda *_, answer=answer: answer)
        docker.browse_button.click()
        fact.setdefault("guide_field", []).append(docker.fields["guide"].currentText())
    fact["guided"] = dream()
    docker.set_values({"guide": ""})
    docker.set_values({"iterations": 200, "octaves": 1})
    fact["cancelled"] = dream(size=(256, 192), cancel=True)
    app.document = None
    docker.dream_button.click()
    fact["no_document"] = docker.message.text()
    return fact


if __name__ == "__main__":
    try:
        result = main()
    except Exception:
        result = {"crash": traceback.format_exc()}
    print("DD_RESULT " + json.dumps(result), flush=True)
    controller.runner().shutdown()
