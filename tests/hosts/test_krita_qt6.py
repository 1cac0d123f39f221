"""The Krita plug-in's docker on PyQt6, as Krita 6 runs it (Debian 13's python3-pyqt6).

Krita 6 is the Qt6 build of Krita and cannot run here (Debian 13 packages Krita 5.2), so the
``krita`` module is a stand-in (krita_scripts/qt6/krita.py: a mock of the API the plug-in
calls, on the real PyQt6).  Everything else is real: the plug-in as ``install.py plugin
krita`` installs it, its docker and runner on PyQt6 under the offscreen platform, and a
daemon on the host's loopback.  What this guards is the Qt side of the plug-in: the
PyQt5/PyQt6 shim, scoped enums, signals across threads, the socket notifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from deepdream_protocol.presets import preset_fill

from tests.hosts import trixie_root
from tests.support.hosts import KRITA_RESOURCES, KRITARC, host_home, install_plugin

pytestmark = pytest.mark.host

DREAM = {"model": "tiny", "iterations": 2, "octaves": 2, "step": 2.0, "jitter": 4, "seed": 3}
ADDED = "added layer 'paint (DeepDream)'"


@pytest.fixture(scope="module")
def seen(host_root, endpoint) -> Iterator[dict[str, Any]]:
    with host_home("krita-qt6", "krita_scripts") as home:
        pykrita = home.outside / KRITA_RESOURCES
        install_plugin("krita", pykrita, "--kritarc", str(home.outside / KRITARC))
        proc = trixie_root.run_in_root(
            ["python3", f"{home.inside}/scripts/qt6/docker_qt6.py"],
            env={"HOME": home.inside, "QT_QPA_PLATFORM": "offscreen",
                 "PYTHONPATH": f"{home.inside}/scripts/qt6:"
                               f"{home.plugin('krita', inside=True).parent}",
                 "DEEPDREAM_ENDPOINT": endpoint, "DD_DREAM": json.dumps(DREAM)},
            timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("DD_RESULT "):
            fact = json.loads(line[len("DD_RESULT "):])
            assert "crash" not in fact, fact["crash"]
            yield fact
            return
    raise AssertionError(f"the PyQt6 driver printed no result (exit {proc.returncode}):\n"
                         f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def test_the_plugin_picks_pyqt6_and_registers_its_docker_and_action(seen):
    assert seen["qt_api"] == "PyQt6"
    assert seen["actions"] == ["deepdream_krita_dream"]
    assert seen["fields"][:3] == ["preset", "model", "layer"]


def test_the_docker_offers_the_daemons_models_and_fills_a_preset(seen):
    assert seen["catalog_fetched"] and "tiny" in seen["models_offered"]
    shown = seen["after_preset"]
    assert shown["preset"] == "painterly"
    assert {k: shown[k] for k in preset_fill("painterly")} == preset_fill("painterly")
    # what the artist set is saved in Krita's settings, as text
    assert seen["saved"]["model"] == "tiny" and seen["saved"]["iterations"] == "2"
    # a second window's docker wrote what it showed over the first one's change
    two = seen["saved_two_windows"]
    assert (two["octaves"], two["iterations"], two["model"]) == ("3", "3", "tiny"), two


def test_dream_adds_a_dreamed_layer_above_and_leaves_the_original(seen):
    dream = seen["dream"]
    assert dream["busy"] and not dream["dream_enabled"]  # the button returned at once
    assert dream["refused_message"] == "a dream is already running; cancel it first"
    # a docker made while it runs (a new window) could not cancel it: Dream on, Cancel off
    assert dream["new_docker_buttons"] == [False, True]
    assert dream["ended"] and dream["message"] == ADDED, dream
    assert dream["layers"] == ["paint", "paint (DeepDream)"]
    assert dream["original_unchanged"] and dream["result_visible"] and dream["preview"]
    assert dream["changed_pixels"] > 0.5 * 64 * 48
    assert dream["progress"][-1] == 100 and dream["progress"] == sorted(dream["progress"])
    assert dream["dream_enabled_after"] and not dream["cancel_enabled_after"]


def test_cancel_and_refusals_leave_the_document_as_it_was(seen):
    cancelled = seen["cancelled"]
    assert cancelled["ended"] and cancelled["message"] == "cancelled; the document is unchanged"
    assert cancelled["layers"] == ["paint"] and cancelled["original_unchanged"]
    assert cancelled["dream_enabled_after"] and not cancelled["cancel_enabled_after"]
    group = seen["group"]
    assert group["message"] == "group layers cannot be dreamed; select a paint layer"
    assert group["layers"] == ["paint"] and group["original_unchanged"]
    assert seen["no_document"] == "no document is open"


def test_the_guide_image_is_picked_in_a_file_dialog_and_dreamed_with(seen):
    assert seen["guide_field"][0] == ""  # the dialog cancelled: the field kept its text
    assert seen["guide_field"][1].endswith("/guide.png")
    guided = seen["guided"]
    assert guided["ended"] and guided["message"] == ADDED, guided
    assert guided["layers"] == ["paint", "paint (DeepDream)"] and guided["original_unchanged"]
