"""Test-only Krita plug-in: drives the DeepDream docker in the real GUI, then quits Krita.

Installed next to deepdream_krita by test_krita.py for one Xvfb run.  Steps: wait for the
main window, open a small document, show the docker, choose presets as a user would (the
fields fill; a field set back to its default is sent as shown), set tiny settings, press
Dream, wait,
save a screenshot ($DD_SHOT), undo the dream, dream again through the action, dream again
and mirror the image meanwhile, dream again and crop the image meanwhile, dream a CMYK and a
Lab layer (a refused dream, a dream, an undo), start a long dream and quit Krita in the
middle of it; the facts go to $DD_OUT.
"""

from __future__ import annotations

import faulthandler
import json
import os
import time
import traceback
from typing import Any

import deepdream_krita
from deepdream_krita import controller, preferences
from deepdream_krita.docker import DeepDreamDocker
from deepdream_krita.qt import QApplication, QTimer
from deepdream_protocol.settings import wire_settings
from krita import Krita

POLL_MS = 250
LIMIT_S = 240
SETTINGS = {"model": "tiny", "iterations": 2, "octaves": 2, "step": 2.0, "jitter": 4,
            "seed": 3, "preset": "", "use_selection": True}
facts: dict[str, Any] = {"steps": []}
state: dict[str, Any] = {"started": time.monotonic()}
# _timed_out only runs between steps; a step that blocks inside Krita (seen once on CI, where
# nothing said which) is ended by this C-level watchdog, which prints every thread's Python
# stack to stderr and exits before the test's own 400-s limit
faulthandler.dump_traceback_later(LIMIT_S + 60, exit=True, file=2)


def _step(name: str) -> None:
    """Note a step in the facts and on stdout (where a run that hangs shows its last)."""
    facts["steps"].append(name)
    print(f"DD_STEP {name}", flush=True)


def _write_and_quit() -> None:
    with open(os.environ["DD_OUT"], "w") as f:
        json.dump(facts, f)
    for document in Krita.instance().documents():
        document.setModified(False)  # no "save changes?" dialog on quit
    Krita.instance().action("file_quit").trigger()


def _names(document: Any) -> list[str]:
    return [c.name() for c in document.rootNode().childNodes()]


def _undo_text() -> str:
    """What Edit › Undo would undo in the active view ("Undo Add Layer")."""
    return Krita.instance().action("edit_undo").text()


def _guarded(step: Any) -> Any:
    def run() -> None:
        try:
            step()
        except Exception:
            facts["crash"] = traceback.format_exc()
            _write_and_quit()
    return run


def _later(step: Any) -> None:
    QTimer.singleShot(POLL_MS, _guarded(step))


def _after_dream(step: Any) -> None:
    """Run ``step`` once the docker's dream has ended (its Dream button is back)."""
    def wait() -> None:
        if not state["docker"].dream_button.isEnabled():
            if not _timed_out():
                _later(wait)
            return
        step()
    _later(wait)


def _when_active(document: Any, layer: Any, step: Any) -> None:
    """Make ``layer`` the active one and run ``step`` once Krita has done so.  Krita ignores
    the request (with a SAFE ASSERT "shape" on stderr) until the view has the layer's shape,
    which takes longer on a slow machine: the request is made again until it took."""
    def activate() -> None:
        document.setActiveNode(layer)
        active = document.activeNode()
        if active is None or active.uniqueId() != layer.uniqueId():
            if not _timed_out():
                _later(activate)
            return
        step()
    activate()


def _dream_acting(fact: str, act: Any, then: Any) -> None:
    """Press Dream and, at the dream's first progress, ``act`` as a user may meanwhile
    (``fact`` notes it was done); once the dream has ended and Krita is idle, ``then``."""
    runner = controller.runner()

    def on_progress(percent: int, _text: str) -> None:
        if percent > 0 and fact not in facts:
            facts[fact] = True
            act()

    def ended() -> None:
        runner.progressed.disconnect(on_progress)
        state["document"].waitForDone()
        then()

    runner.progressed.connect(on_progress)
    state["docker"].dream_button.click()
    _after_dream(ended)


def _timed_out() -> bool:
    if time.monotonic() - state["started"] > LIMIT_S:
        facts["timeout"] = facts["steps"][-1] if facts["steps"] else "start"
        _write_and_quit()
        return True
    return False


def wait_for_window() -> None:
    window = Krita.instance().activeWindow()
    if window is None or not window.qwindow().isVisible():
        if not _timed_out():
            _later(wait_for_window)
        return
    _step("window")
    print("DD_STARTED", flush=True)  # (tests/support/hosts.py: Krita did start)
    from krita_cases import build

    document, layer = build({"name": "gui", "size": [160, 120], "model": "RGBA",
                             "depth": "U8"})
    # Xvfb has no window manager to maximise it: fill the screen so the screenshot shows all
    window.qwindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    window.addView(document)
    state.update(document=document, layer=layer)
    docker = next((d for d in Krita.instance().dockers() if isinstance(d, DeepDreamDocker)),
                  None)
    facts["docker_found"] = docker is not None
    if docker is None:
        _write_and_quit()
        return
    for other in Krita.instance().dockers():  # room for the docker in the screenshot
        if other is not docker and other.windowTitle() != "Layers":
            other.hide()
    docker.show()
    docker.raise_()
    facts["presets"] = choose_presets(docker)
    docker.set_values({**preferences.DEFAULTS, **SETTINGS})
    state["docker"] = docker
    facts["layers_before"] = [c.name() for c in document.rootNode().childNodes()]
    _later(press_dream)


def choose_presets(docker: DeepDreamDocker) -> dict[str, Any]:
    """The preset drop-down as a user works it; what the fields show and what is sent."""
    combo, out = docker.fields["preset"], {}
    watched = ("preset", "octaves", "layer", "iterations", "strength", "transform", "seed")

    def shown() -> dict[str, Any]:
        return {k: docker.values()[k] for k in watched}

    out["seed_before"] = docker.values()["seed"]
    combo.setCurrentIndex(combo.findText("deep-objects"))  # picked from the list
    out["chosen"] = shown()
    docker.fields["octaves"].setValue(4)  # back to the default
    out["sent"] = {k: v for k, v in wire_settings(preferences.complete(docker.values())).items()
                   if k in watched}
    combo.currentTextChanged.emit(combo.currentText())  # what a catalog refresh does
    out["after_refresh"] = shown()
    combo.activated.emit(combo.currentIndex())  # the same preset picked again
    out["picked_again"] = shown()
    combo.setEditText("subtl")  # typed
    combo.setEditText("subtle")
    out["typed"] = shown()
    return out


def press_dream() -> None:
    _when_active(state["document"], state["layer"], _press_dream)


def _press_dream() -> None:
    docker, document = state["docker"], state["document"]
    facts["active_before"] = document.activeNode().name() if document.activeNode() else None
    facts["docker_visible"] = docker.isVisible()
    facts["values"] = docker.values()
    _step("dream")
    docker.dream_button.click()
    facts["busy_after_click"] = not docker.dream_button.isEnabled()
    _after_dream(dreamed)


def dreamed() -> None:
    docker, document = state["docker"], state["document"]
    _step("dreamed")
    facts["message"] = docker.message.text()
    model, layer = docker.fields["model"], docker.fields["layer"]
    facts["models_offered"] = [model.itemText(i) for i in range(model.count())]
    facts["layers_offered"] = [layer.itemText(i) for i in range(layer.count())]
    # a catalog refresh (or a model picked again) keeps a typed list of the model's layers,
    # and replaces only a layer the model lacks
    typed, facts["layers_after_refresh"] = layer.currentText(), {}
    for value in ("inception4c,inception3a", "inception3a:1, inception4c:0.5", "conv5_3"):
        layer.setCurrentText(value)
        model.currentTextChanged.emit(model.currentText())
        facts["layers_after_refresh"][value] = layer.currentText()
    layer.setCurrentText(typed)
    facts["progress"] = docker.progress.value()
    facts["preview"] = docker.preview.pixmap() is not None and not docker.preview.pixmap().isNull()
    facts["layers_after"] = [c.name() for c in document.rootNode().childNodes()]
    facts["active_after"] = document.activeNode().name() if document.activeNode() else None
    _later(screenshot)  # after the layer docker has redrawn


def screenshot() -> None:
    QApplication.primaryScreen().grabWindow(0).save(os.environ["DD_SHOT"], "PNG")
    Krita.instance().action("edit_undo").trigger()
    _later(after_undo)


def after_undo() -> None:
    document = state["document"]
    document.waitForDone()
    facts["layers_after_undo"] = [c.name() for c in document.rootNode().childNodes()]
    _step("undone")
    action = Krita.instance().action("deepdream_krita_dream")
    facts["action"] = action.text() if action is not None else None
    if action is None:
        _write_and_quit()
        return
    action.trigger()  # the Tools › Scripts action, with the docker's settings
    _after_dream(action_dreamed)


def action_dreamed() -> None:
    docker, document = state["docker"], state["document"]
    _step("action")
    facts["layers_after_action"] = [c.name() for c in document.rootNode().childNodes()]
    facts["message_after_action"] = docker.message.text()
    _later(dream_and_mirror)


def dream_and_mirror() -> None:
    """Dream again, and mirror the image (Image › Mirror Image Horizontally, which Krita
    does in the background) as soon as the daemon reports progress."""
    document, layer = state["document"], state["layer"]
    # the same dream, blocking, kept hidden in the document so that Krita mirrors it too
    reference = deepdream_krita.dream_layer(document, layer, SETTINGS)
    reference.setName("reference")
    reference.setVisible(False)
    mirror = Krita.instance().action("mirrorImageHorizontal")
    facts["mirror_action"] = mirror is not None
    if mirror is None:
        _write_and_quit()
        return
    state["reference"] = reference
    _step("mirror")
    _when_active(document, layer,
                 lambda: _dream_acting("mirrored", mirror.trigger, mirrored_dream_ended))


def mirrored_dream_ended() -> None:
    docker, document, layer = state["docker"], state["document"], state["layer"]
    facts["message_after_mirror"] = docker.message.text()
    children = document.rootNode().childNodes()
    names = [c.name() for c in children]
    facts["layers_after_mirror"] = names
    result = children[names.index(layer.name()) + 1]
    canvas = (0, 0, document.width(), document.height())
    got, wanted = bytes(result.pixelData(*canvas)), bytes(state["reference"].pixelData(*canvas))
    facts["mirror_pixels"] = len(got) // 4
    facts["mirror_unlike_reference"] = sum(got[i:i + 4] != wanted[i:i + 4]
                                           for i in range(0, len(got), 4))
    _later(dream_and_crop)


def dream_and_crop() -> None:
    """Dream again, and crop the image into the dreamed pixels (Image › Crop, which cuts
    the layer too; kritarunner hangs in it, the GUI does not) at the first progress."""
    document = state["document"]
    facts["layers_before_crop"] = [c.name() for c in document.rootNode().childNodes()]
    _step("crop")
    _when_active(document, state["layer"], lambda: _dream_acting(
        "cropped", lambda: document.crop(20, 10, 100, 80), cropped_dream_ended))


def cropped_dream_ended() -> None:
    docker, document = state["docker"], state["document"]
    facts["message_after_crop"] = docker.message.text()
    facts["size_after_crop"] = [document.width(), document.height()]
    facts["layers_after_crop"] = [c.name() for c in document.rootNode().childNodes()]
    state["models"] = [
        {"name": "cmyk", "size": [80, 60], "model": "CMYKA", "depth": "U8"},
        {"name": "lab", "size": [80, 60], "model": "LABA", "depth": "U16",
         "selection": [10, 8, 40, 30], "feather": 4}]
    facts["other_models"] = {}
    _later(other_model_opens)


def other_model_opens() -> None:
    """A CMYK or Lab layer, dreamed through a conversion: a dream the daemon refuses leaves
    no undo step and the document unmodified; a dream is one undo step (the conversions
    used to leave three more that undid nothing visible)."""
    from krita_cases import build

    _step(f"open {state['models'][0]['name']}")
    document, layer = build(state["models"][0])
    Krita.instance().activeWindow().addView(document)
    state.update(model_document=document, model_layer=layer)
    _later(lambda: _when_active(document, layer, other_model_fails))


def other_model_fails() -> None:
    document, layer = state["model_document"], state["model_layer"]
    case = state["models"].pop(0)
    _step(f"refused {case['name']}")
    document.waitForDone()
    document.setModified(False)
    fact = facts["other_models"][case["name"]] = {"undo_before": _undo_text(),
                                                 "layers_before": _names(document)}
    try:
        deepdream_krita.dream_layer(document, layer, {**SETTINGS, "model": "no-such-model"})
    except Exception as exc:  # noqa: BLE001 - the refusal is the point
        fact["failure"] = str(exc)
    state["model_fact"] = fact
    _later(other_model_dreams)


def other_model_dreams() -> None:
    document, fact = state["model_document"], state["model_fact"]
    document.waitForDone()
    fact.update(modified_after_failure=document.modified(), undo_after_failure=_undo_text())
    _step("converted dream")
    deepdream_krita.dream_layer(document, state["model_layer"], SETTINGS)
    _later(other_model_undo)


def other_model_undo() -> None:
    document, fact = state["model_document"], state["model_fact"]
    document.waitForDone()
    fact["layers_after"] = _names(document)
    _step("converted undo")
    Krita.instance().action("edit_undo").trigger()
    _later(other_model_undone)


def other_model_undone() -> None:
    document, fact = state["model_document"], state["model_fact"]
    document.waitForDone()
    fact.update(layers_after_undo=_names(document), undo_after_undo=_undo_text())
    _later(other_model_opens if state["models"] else quit_in_a_long_dream)


def quit_in_a_long_dream() -> None:
    """A long dream, and Krita is closed in the middle of it."""
    docker = state["docker"]
    _step("long dream")
    docker.set_values({"iterations": 400, "octaves": 3})
    docker.dream_button.click()
    _later(quit_while_dreaming)


def quit_while_dreaming() -> None:
    docker = state["docker"]
    if docker.progress.value() == 0 and not _timed_out():
        _later(quit_while_dreaming)  # wait until the daemon is really dreaming
        return
    facts["busy_at_quit"] = not docker.dream_button.isEnabled()
    _step("quit")
    _write_and_quit()


QTimer.singleShot(POLL_MS, _guarded(wait_for_window))
