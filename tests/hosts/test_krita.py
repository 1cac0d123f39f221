"""The Krita plug-in in real Krita 5.2 (kritarunner, headless; in the cached Debian trixie root).

The plug-in is installed the way a user would (``install.py plugin krita DIR --kritarc F``)
into a HOME inside the root; a real daemon (tiny random GoogLeNet, CPU) runs on the host's
loopback, which the chroot shares.  krita_scripts/krita_cases.py builds tiny documents, calls
``deepdream_krita.dream_layer`` and prints facts as JSON; the tests below judge them.
kritarunner's exit code says nothing about the script, hence the printed marker.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.hosts import trixie_root
from tests.support.daemon import daemon_process, free_port
from tests.support.hosts import (
    GUI_DRIVER_STARTED,
    KRITA_RESOURCES,
    KRITARC,
    HostHome,
    host_home,
    install_plugin,
)

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
SIZE = [64, 48]
# Tiny and quick: the tiny random GoogLeNet, two octaves of two steps.
DREAM = {"model": "tiny", "iterations": 2, "octaves": 2, "step": 2.0, "jitter": 4, "seed": 3}
FEATHERED = {"selection": [12, 10, 36, 26], "feather": 4}
DREAM_CASES = [
    {"name": "rgba_u8", "model": "RGBA", "depth": "U8"},
    {"name": "rgba_u8_selection_offset", "model": "RGBA", "depth": "U8", "offset": [9, 5],
     **FEATHERED},
    {"name": "rgba_u8_selection_not_used", "model": "RGBA", "depth": "U8", **FEATHERED,
     "settings": {**DREAM, "use_selection": False}},
    {"name": "rgba_u16_linear_selection", "model": "RGBA", "depth": "U16", **FEATHERED},
    {"name": "rgba_u16_srgb", "model": "RGBA", "depth": "U16",
     "profile": "sRGB-elle-V2-srgbtrc.icc"},
    {"name": "rgba_f16_selection", "model": "RGBA", "depth": "F16", **FEATHERED},
    {"name": "rgba_f32_offset", "model": "RGBA", "depth": "F32", "offset": [-7, 6]},
    {"name": "graya_u8_selection", "model": "GRAYA", "depth": "U8", **FEATHERED},
    {"name": "graya_u16", "model": "GRAYA", "depth": "U16"},
    {"name": "cmyka_u8_selection", "model": "CMYKA", "depth": "U8", **FEATHERED},
    {"name": "cmyka_u16", "model": "CMYKA", "depth": "U16"},
    {"name": "laba_u16_selection", "model": "LABA", "depth": "U16", **FEATHERED},
    {"name": "graya_f32_selection", "model": "GRAYA", "depth": "F32", **FEATHERED},
    {"name": "cmyka_f32", "model": "CMYKA", "depth": "F32"},
    {"name": "laba_f32", "model": "LABA", "depth": "F32"},
    # narrower than the dreamed layer needs (only its bounds are sent): dreamed all the same
    {"name": "rgba_u8_small_selection", "model": "RGBA", "depth": "U8",
     "selection": [30, 4, 4, 40]},
]
# The result must show the way the original does: its properties and masks come along.
LOOK_CASES = [
    {"name": "props_multiply_half", "model": "RGBA", "depth": "U8",
     "props": {"opacity": 128, "blend": "multiply", "inherit_alpha": True,
               "alpha_locked": True}},
    {"name": "props_hidden_locked", "model": "RGBA", "depth": "U16",
     "props": {"visible": False, "locked": True}},
    {"name": "masks", "model": "RGBA", "depth": "U8", "masks": ["transparency", "filter"]},
]
# Layers whose pixelData is not their look (empty, a selection, rendered from shapes).
OTHER_LAYERS = ["group", "clone", "fill", "vector", "filter", "file"]
ERROR_CASES = [
    *({"name": f"{kind}_layer", "model": "RGBA", "depth": "U8", "target": kind}
      for kind in OTHER_LAYERS),

    {"name": "bad_setting", "model": "RGBA", "depth": "U8", "settings": {"octaves": 0}},
    {"name": "unknown_model", "model": "RGBA", "depth": "U8",
     "settings": {**DREAM, "model": "no-such-model"}},
    {"name": "selection_elsewhere", "model": "RGBA", "depth": "U8", "offset": [40, 30],
     "selection": [0, 0, 20, 20]},
    {"name": "empty_layer", "model": "RGBA", "depth": "U8", "empty": True},
]
# A dream from noise is a picture of its own: a new, empty layer takes it, opaque.
NOISE_CASES = [{"name": "from_noise_empty", "model": "RGBA", "depth": "U8", "empty": True,
                "settings": {**DREAM, "from_noise": True}}]


class KritaHome(HostHome):
    def run_cases(self, cases: list[dict[str, Any]], env: Mapping[str, str],
                  script: str = "krita_cases", timeout: float = 400) -> dict[str, dict[str, Any]]:
        """Run a krita_scripts module on the cases in one kritarunner; facts by case name."""
        full = [{"size": SIZE, "settings": DREAM, **case} for case in cases]
        (self.outside / "cases.json").write_text(json.dumps(full))
        proc = trixie_root.run_in_root(
            ["kritarunner", "-s", script, "-f", "main"],
            env={"HOME": self.inside, "QT_QPA_PLATFORM": "offscreen",
                 "PYTHONPATH": f"{self.inside}/scripts:{self.plugin('krita', inside=True).parent}",
                 "DD_CASES": f"{self.inside}/cases.json", **env},
            timeout=timeout)
        for line in proc.stdout.splitlines():
            if line.startswith("DD_RESULT "):
                return {fact["name"]: fact for fact in json.loads(line[len("DD_RESULT "):])}
        raise AssertionError(f"kritarunner printed no result (exit {proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="module")
def krita(host_root: Path) -> Iterator[KritaHome]:
    with host_home("krita", "krita_scripts") as home:
        install_plugin("krita", home.outside / KRITA_RESOURCES,
                       "--kritarc", str(home.outside / KRITARC))
        yield KritaHome(home.outside, home.inside)



@pytest.fixture(scope="module")
def dreamed(krita: KritaHome, endpoint: str) -> dict[str, dict[str, Any]]:
    """Every case of DREAM_CASES, LOOK_CASES and ERROR_CASES, dreamed in one Krita run."""
    return krita.run_cases(DREAM_CASES + LOOK_CASES + ERROR_CASES + NOISE_CASES,
                           {"DEEPDREAM_ENDPOINT": endpoint})


def _fact(dreamed: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    fact = dreamed[name]
    assert "crash" not in fact, fact["crash"]
    return fact


@pytest.mark.parametrize("case", DREAM_CASES, ids=lambda c: c["name"])
def test_dream_adds_a_layer_directly_above_in_the_same_colour_space(dreamed, case):
    fact = _fact(dreamed, case["name"])
    assert "error" not in fact, fact["error"]
    assert fact["directly_above"], fact["layers_after"]
    assert fact["layers_after"] == [*fact["layers_before"][:2], "paint (DeepDream)",
                                    *fact["layers_before"][2:]]
    assert fact["space"] == fact["original_space"]
    assert fact["space"][:2] == [case["model"], case["depth"]]


@pytest.mark.parametrize("case", DREAM_CASES, ids=lambda c: c["name"])
def test_dream_changes_the_selection_only_and_never_the_original(dreamed, case):
    fact = _fact(dreamed, case["name"])
    assert "error" not in fact, fact["error"]
    assert fact["original_unchanged"]
    assert fact["inside"] > 100
    # a random network moves nearly every pixel; a few may land on their old value
    assert fact["inside_changed"] > 0.8 * fact["inside"], fact
    assert fact["outside_changed"] == 0, fact
    selected = case.get("selection") and case.get("settings", DREAM).get("use_selection", True)
    if selected or case.get("offset"):
        assert fact["outside"] > 100  # there is an outside to check
    else:
        assert fact["outside"] == 0 and fact["inside"] == SIZE[0] * SIZE[1]  # all dreamed


@pytest.mark.parametrize("case", [c for c in DREAM_CASES if c["depth"] != "U8"],
                         ids=lambda c: c["name"])
def test_deep_layers_keep_their_precision(dreamed, case):
    fact = _fact(dreamed, case["name"])
    # pixels with samples an 8-bit round trip could not produce: the layer kept its depth
    assert fact["fine_pixels"] > 0.5 * fact["inside_changed"], fact


@pytest.mark.parametrize("case", LOOK_CASES, ids=lambda c: c["name"])
def test_result_keeps_the_originals_look_and_can_be_painted_on(dreamed, case):
    fact = _fact(dreamed, case["name"])
    assert "error" not in fact, fact["error"]
    assert fact["directly_above"] and fact["original_unchanged"]
    assert fact["inside_changed"] > 0.8 * fact["inside"], fact
    wanted = fact["original_properties"]
    for name, value in case.get("props", {}).items():
        assert wanted[name] == value  # the original really had what the case set
    # a hidden or locked original still gives a result the user sees and can paint on
    assert fact["properties"] == {**wanted, "visible": True, "locked": False}, fact
    assert fact["masks"] == fact["original_masks"]


def test_result_hides_what_the_originals_transparency_mask_hides(dreamed):
    fact = _fact(dreamed, "masks")
    assert [kind for kind, _ in fact["masks"]] == ["transparencymask", "filtermask"]
    assert fact["original_hidden_alpha"] == 0  # the mask hides all but its rectangle
    # without copies of the masks the dreamed pixels covered what lies below
    assert fact["hidden_alpha"] == 0, fact


@pytest.mark.parametrize("kind", OTHER_LAYERS)
def test_other_layer_kinds_are_refused_in_one_clear_line(dreamed, kind):
    fact = _fact(dreamed, f"{kind}_layer")
    assert fact["error"] == f"{kind} layers cannot be dreamed; select a paint layer"
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"]


def test_bad_setting_is_refused_before_anything_changes(dreamed):
    fact = _fact(dreamed, "bad_setting")
    assert "octaves" in fact["error"] and "between" in fact["error"]
    assert "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"]


def test_daemon_error_leaves_the_document_unchanged(dreamed):
    fact = _fact(dreamed, "unknown_model")
    assert "no-such-model" in fact["error"], fact["error"]
    assert "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"]


def test_selection_off_the_layer_is_a_clear_error(dreamed):
    fact = _fact(dreamed, "selection_elsewhere")
    assert fact["error"] == "the selection does not touch the active layer"
    assert fact["layers_after"] == fact["layers_before"]


def test_an_empty_layer_is_refused_but_takes_a_dream_from_noise_whole_and_opaque(dreamed):
    empty = _fact(dreamed, "empty_layer")
    assert empty["error"] == "layer 'paint' has no pixels on the canvas"
    assert empty["layers_after"] == empty["layers_before"]
    noise = _fact(dreamed, "from_noise_empty")  # (refused too, before; and clear, after)
    assert "error" not in noise, noise["error"]
    assert noise["directly_above"] and noise["opaque_pixels"] == SIZE[0] * SIZE[1], noise


def test_no_daemon_is_a_clear_error_and_the_document_is_unchanged(krita):
    # nothing listens on this port, and the start command fails at once
    dead = f"tcp://127.0.0.1:{free_port()}"
    facts = krita.run_cases([{"name": "no_daemon", "model": "RGBA", "depth": "U16"}],
                            {"DEEPDREAM_ENDPOINT": dead, "DEEPDREAM_DAEMON_CMD": "/bin/false"})
    fact = _fact(facts, "no_daemon")
    assert "daemon" in fact["error"] and "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"]


def test_docker_path_keeps_krita_responsive_and_can_cancel(krita, endpoint):
    long_dream = {**DREAM, "iterations": 200, "octaves": 3}
    facts = krita.run_cases(
        [{"name": "async_done", "model": "RGBA", "depth": "U16"},
         {"name": "async_cancel", "model": "RGBA", "depth": "U8", "size": [256, 192],
          "settings": long_dream, "cancel": True}],
        {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    done = _fact(facts, "async_done")
    assert done["started"] and done["busy_after_start"], done
    assert done.get("result") == "paint (DeepDream)", done
    assert done["ticks"] > 0  # Qt's event loop kept running while the daemon dreamed
    assert any(0 < p < 100 for p in done["progress"]), done["progress"]  # progress moved
    assert done["progress"][-1] == 100 and not done["busy_at_end"]
    assert done["layers_after"][2] == "paint (DeepDream)" and done["original_unchanged"]

    cancelled = _fact(facts, "async_cancel")
    assert "cancel_at" in cancelled, cancelled
    assert cancelled["error"] == "cancelled; the document is unchanged", cancelled
    assert cancelled["layers_after"] == cancelled["layers_before"]
    assert cancelled["original_unchanged"] and not cancelled["busy_at_end"]


def test_docker_reports_a_daemon_killed_mid_dream_and_keeps_the_document(krita):
    long_dream = {**DREAM, "iterations": 400, "octaves": 3}
    with daemon_process() as daemon:  # its own daemon: this one gets killed
        facts = krita.run_cases(
            [{"name": "async_daemon_killed", "model": "RGBA", "depth": "U8", "size": [256, 192],
              "settings": long_dream, "kill_pid": daemon.proc.pid}],
            {"DEEPDREAM_ENDPOINT": daemon.endpoint, "DEEPDREAM_DAEMON_CMD": "/bin/false"},
            script="krita_async")
    fact = _fact(facts, "async_daemon_killed")
    assert "killed_at" in fact, fact
    # before Client.watch the docker waited for ever (LIMIT_MS) and reported nothing
    assert "daemon" in fact.get("error", ""), fact
    assert "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"] and not fact["busy_at_end"]


def test_docker_refuses_a_layer_over_the_daemons_limit_before_sending_it(krita):
    # 64x48 = 3,072 pixels against a daemon that takes 1,000: the docker passes the limit
    # from the daemon's hello to its client, so the layer is never sent
    with daemon_process(extra_args=("--max-pixels", "1000")) as daemon:
        facts = krita.run_cases([{"name": "async_too_large", "model": "RGBA", "depth": "U8"}],
                                {"DEEPDREAM_ENDPOINT": daemon.endpoint}, script="krita_async")
        log = daemon.log.read_text()
    fact = _fact(facts, "async_too_large")
    assert "64x48 is 3,072 pixels; this daemon takes at most 1,000" in fact.get("error", ""), fact
    # and what to do about it (before, only the daemon's option was named)
    assert fact["error"].endswith("; select a smaller part of the layer and dream with Use "
                                  "selection on"), fact
    assert "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"] and not fact["busy_at_end"]
    assert " from " not in log and "too_large" not in log, log  # no job reached it


def test_docker_says_so_when_the_document_is_closed_mid_dream(krita, endpoint):
    long_dream = {**DREAM, "iterations": 30, "octaves": 3}
    facts = krita.run_cases(
        [{"name": "async_closed", "model": "RGBA", "depth": "U8", "size": [128, 96],
          "settings": long_dream, "close_document": True}],
        {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    fact = _fact(facts, "async_closed")
    assert "closed_at" in fact, fact
    # was "could not add the result layer: 'NoneType' object has no attribute 'colorModel'"
    assert fact.get("error") == "the document was closed; nothing was added", fact
    assert not fact["busy_at_end"]


def test_a_second_dream_asked_for_meanwhile_is_refused_and_the_first_goes_on(krita, endpoint):
    # the docker's button is off while a dream runs, but the action (a shortcut) is not
    facts = krita.run_cases(
        [{"name": "async_again", "model": "RGBA", "depth": "U8", "start_again": True}],
        {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    fact = _fact(facts, "async_again")
    assert "started_again_at" in fact and fact["started_again"] is False, fact
    assert fact["refused"] == "a dream is already running; cancel it first"
    assert "error" not in fact and fact.get("result") == "paint (DeepDream)", fact
    assert fact["progress"] == sorted(fact["progress"])  # its bar never went back to 0
    assert len(fact["layers_after"]) == len(fact["layers_before"]) + 1
    assert fact["original_unchanged"] and not fact["busy_at_end"]


def test_a_fault_of_the_plug_ins_own_is_said_and_dream_works_again(krita, endpoint):
    """An unexpected error while sending (not a daemon's answer) left the docker busy for
    good: Dream off, Cancel doing nothing, until Krita was restarted."""
    facts = krita.run_cases(
        [{"name": "submit_fault", "model": "RGBA", "depth": "U8", "submit_raises": "boom"},
         {"name": "after_fault", "model": "RGBA", "depth": "U8"}],
        {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    fault = _fact(facts, "submit_fault")
    assert fault.get("error") == "could not send the dream: boom", fault
    assert not fault["busy_at_end"] and fault["original_unchanged"]
    assert fault["layers_after"] == fault["layers_before"]
    after = _fact(facts, "after_fault")
    assert after.get("result") == "paint (DeepDream)" and not after["busy_at_end"], after


def test_a_progress_slot_that_runs_an_event_loop_does_not_break_the_dream(krita, endpoint):
    """The docker's timer fired inside a progress slot's event loop (Image › Crop runs one)
    and handled the result there; the outer pump then read from the closed client, and the
    docker said "the dream failed: 'NoneType' object has no attribute 'recv_multipart'" (CI)."""
    facts = krita.run_cases(
        [{"name": "event_loop", "model": "RGBA", "depth": "U8", "event_loop_ms": 3000}],
        {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    fact = _fact(facts, "event_loop")
    assert "event_loop_at" in fact, fact
    assert "error" not in fact and fact.get("result") == "paint (DeepDream)", fact
    assert fact["layers_after"] == [*fact["layers_before"][:2], "paint (DeepDream)",
                                    *fact["layers_before"][2:]], fact
    assert fact["original_unchanged"] and not fact["busy_at_end"]


def test_real_gui_dreams_through_the_docker_button(krita, endpoint):
    """Krita's real window under Xvfb: a test-only plug-in (krita_scripts/dd_gui_driver)
    opens a document, shows the docker, presses Dream, screenshots, undoes, dreams through
    the action, and quits Krita in the middle of a long dream (which must not hang)."""
    krita.add_krita_plugin("dd_gui_driver")
    out, shot = krita.outside / "gui.json", krita.outside / "gui.png"
    for stale in (out, shot):
        stale.unlink(missing_ok=True)
    proc = krita.run_krita_gui("1600x1000", {
        "PYTHONPATH": f"{krita.inside}/scripts", "DEEPDREAM_ENDPOINT": endpoint,
        "DD_OUT": f"{krita.inside}/gui.json", "DD_SHOT": f"{krita.inside}/gui.png"},
        started=GUI_DRIVER_STARTED)
    # kept as test artifacts (artifacts/ is git-ignored): the screenshot and Krita's output
    (REPO / "artifacts").mkdir(exist_ok=True)
    if shot.exists():
        shutil.copy(shot, REPO / "artifacts" / "krita_gui.png")
    (REPO / "artifacts" / "krita_gui.log").write_text(f"{proc.stdout}\n-- stderr --\n"
                                                      f"{proc.stderr}")
    log = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert out.exists(), f"the GUI driver wrote nothing:\n{log}"
    assert GUI_DRIVER_STARTED in proc.stdout  # (else a hang would be started again)
    facts = json.loads(out.read_text())
    assert "crash" not in facts, facts["crash"]
    assert "timeout" not in facts, facts
    assert facts["docker_found"] and facts["docker_visible"]
    # choosing a preset fills the fields (all but the seed); a field then set back to its
    # default is sent as shown (it used to be dropped, so the preset's value ran)
    presets = facts["presets"]
    look = {"layer": "inception4e", "iterations": 15, "strength": 1.0, "transform": True,
            "seed": presets["seed_before"]}
    assert presets["chosen"] == {"preset": "deep-objects", "octaves": 5, **look}
    assert presets["sent"] == {"preset": "deep-objects", "octaves": 4, **look}
    assert presets["after_refresh"]["octaves"] == 4  # a catalog refresh keeps the change
    assert presets["picked_again"]["octaves"] == 5  # picking it again shows its look anew
    assert presets["typed"]["octaves"] == 3 and presets["typed"]["strength"] == 0.5
    assert facts["busy_after_click"]  # the button returned at once; the dream ran behind it
    assert facts["message"] == "added layer 'paint (DeepDream)'", facts  # no frame talk
    assert facts["progress"] == 100 and facts["preview"]
    # the docker offers what the daemon's catalog lists
    assert "tiny" in facts["models_offered"] and "inception4c" in facts["layers_offered"]
    # a list of layers survives the catalog's refill (it used to be cut to its first name,
    # and saved so); a layer of another model becomes this one's default
    assert facts["layers_after_refresh"] == {
        "inception4c,inception3a": "inception4c,inception3a",
        "inception3a:1, inception4c:0.5": "inception3a:1, inception4c:0.5",
        "conv5_3": "inception4c"}, facts["layers_after_refresh"]
    before = facts["layers_before"]
    assert facts["layers_after"] == [*before[:2], "paint (DeepDream)", *before[2:]]
    assert facts["layers_after_undo"] == before  # one undo step removes the dream
    assert facts["action"] == "DeepDream"
    assert facts["layers_after_action"] == facts["layers_after"]
    # the image mirrored (in the background, as Krita does it) while the daemon dreamed: the
    # dream is mirrored with it, as the same dream added before the mirror was (before, it
    # was added unmirrored, shifted by the offset Krita gives a mirrored layer)
    assert facts["mirror_action"] and facts.get("mirrored"), facts
    assert facts["message_after_mirror"] == "added layer 'paint (DeepDream)'", facts
    assert facts["mirror_unlike_reference"] <= 0.01 * facts["mirror_pixels"], facts
    # the image cropped into the dreamed pixels meanwhile (Image › Crop cuts the layer too):
    # the dream fits them no more, so nothing is added, and the docker says why
    assert facts["cropped"] and facts["size_after_crop"] == [100, 80], facts
    assert facts["message_after_crop"] == ("the image was resized while dreaming; nothing "
                                           "was added"), facts
    assert facts["layers_after_crop"] == facts["layers_before_crop"]
    # CMYK and Lab are dreamed through Krita's conversion, in a document of its own: a
    # refused dream leaves the document as it was, a dream is one undo step (the conversions
    # used to leave three more, that undid nothing visible, and mark the document modified)
    for name, fact in facts["other_models"].items():
        assert "no-such-model" in fact["failure"], (name, fact)
        assert not fact["modified_after_failure"], (name, fact)
        assert fact["undo_after_failure"] == fact["undo_before"], (name, fact)
        assert len(fact["layers_after"]) == len(fact["layers_before"]) + 1, (name, fact)
        assert fact["layers_after_undo"] == fact["layers_before"], (name, fact)
        assert fact["undo_after_undo"] == fact["undo_before"], (name, fact)
    assert set(facts["other_models"]) == {"cmyk", "lab"}
    assert facts["busy_at_quit"] and facts["steps"][-1] == "quit"  # and Krita exited
    assert shot.exists() and shot.stat().st_size > 10_000
    # the docker's settings survive a restart: what the GUI wrote to kritarc reads back
    # (kritarunner keeps its settings in kritarunnerrc, so it gets a copy of the GUI's file)
    config = krita.outside / ".config"
    shutil.copy(config / "kritarc", config / "kritarunnerrc")
    saved = _fact(krita.run_cases([], {}, script="krita_saved"), "saved")
    assert {k: saved[k] for k in ("model", "iterations", "octaves", "seed")} == {
        "model": "tiny", "iterations": 400, "octaves": 3, "seed": 3}  # the last values typed


def _animated_webp(path: Path, frames: int) -> None:
    """Frames of clearly different pixels, one animation frame each (lossless)."""
    from PIL import Image

    images = []
    for k in range(frames):
        image = Image.new("RGBA", tuple(SIZE))
        image.putdata([((x * 37 + y * 23 + k * 90) % 200 + 30, (x * 11 + k * 70) % 200 + 30,
                        (y * 29 + k * 50) % 200 + 30, 255)
                       for y in range(SIZE[1]) for x in range(SIZE[0])])
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], lossless=True,
                   duration=[42] * frames, loop=0)


@pytest.fixture(scope="module")
def frames_webp(krita: KritaHome) -> str:
    """Three frames of clearly different pixels as an animated WebP, which Krita opens as one
    paint layer with keyframes at 0, 1 and 2 (libkis cannot add keyframes); its path inside
    the root."""
    from PIL import Image

    images = []
    for k in range(3):
        image = Image.new("RGBA", tuple(SIZE))
        image.putdata([((x * 37 + y * 23 + k * 90) % 200 + 30, (x * 11 + k * 70) % 200 + 30,
                        (y * 29 + k * 50) % 200 + 30, 255)
                       for y in range(SIZE[1]) for x in range(SIZE[0])])
        images.append(image)
    images[0].save(krita.outside / "frames.webp", save_all=True, append_images=images[1:],
                   lossless=True, duration=[42] * 3, loop=0)
    return f"{krita.inside}/frames.webp"


def _only_frame_one_dreamed(fact: dict[str, Any]) -> None:
    assert fact["keyframes"] == [0, 1, 2]
    # Krita 5.2's API cannot strip keyframes: the result is the animated duplicate, with the
    # drawing at frame 1 dreamed and the others left as the original's
    assert fact["result_animated"]
    changed = fact["result_keyframes"]
    assert changed["0"] == changed["2"] == 0, changed
    assert changed["1"] > 0.8 * fact["pixels"], changed
    assert fact["time_after"] == 1 and fact["current_changed"] == changed["1"]
    assert fact["original_unchanged"], fact  # every keyframe of it, not just the current one


def test_animated_layer_dreams_the_current_frame_and_keeps_its_look(krita, endpoint,
                                                                     frames_webp):
    case = {"name": "animated", "model": "RGBA", "depth": "U8", "time": 1,
            "animation": frames_webp, "masks": ["transparency"],
            "props": {"opacity": 128, "blend": "multiply"}}
    fact = _fact(krita.run_cases([case], {"DEEPDREAM_ENDPOINT": endpoint}), "animated")
    assert "error" not in fact, fact["error"]
    assert fact["layers_after"] == ["paint", "paint (DeepDream)", "on top"]
    _only_frame_one_dreamed(fact)
    assert fact["properties"] == fact["original_properties"], fact
    assert fact["properties"]["opacity"] == 128
    assert fact["masks"] == fact["original_masks"] == [["transparencymask", "shows the top left"]]
    assert fact["hidden_alpha"] == 0, fact


def test_docker_dreams_the_frame_it_read_even_when_the_user_moves_on(krita, endpoint,
                                                                      frames_webp):
    # the user moves to frame 2 while the daemon dreams frame 1: before, the dream landed on
    # frame 2's drawing and the status line said nothing of frames
    case = {"name": "async_animated", "model": "RGBA", "depth": "U8", "time": 1,
            "animation": frames_webp, "switch_time": 2,
            "settings": {**DREAM, "iterations": 20, "octaves": 3}}
    fact = _fact(krita.run_cases([case], {"DEEPDREAM_ENDPOINT": endpoint},
                                 script="krita_async"), "async_animated")
    assert "switched_at" in fact and "error" not in fact, fact
    _only_frame_one_dreamed(fact)
    assert fact["message"] == ("added layer 'paint (DeepDream)'; it is animated and only its "
                               "drawing at frame 1 is dreamed"), fact
    assert not fact["busy_at_end"]


# What a user may do to the layer while the daemon dreams it.  The result is the dream of the
# layer as it was read, converted or moved the way the user converted or moved the layer
# (before, a converted layer got a copy with nothing dreamed, or misread bytes, and a moved
# one its dream at the old place), compared with the same dream done blocking beforehand.
CHANGED_MID_DREAM = [
    {"name": "async_to_u16", "model": "RGBA", "depth": "U8",
     "convert_to": ["RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc"]},
    {"name": "async_u16_to_gray_u8", "model": "RGBA", "depth": "U16", **FEATHERED,
     "convert_to": ["GRAYA", "U8", "Gray-D50-elle-V2-srgbtrc.icc"]},
    {"name": "async_moved", "model": "RGBA", "depth": "U8", "move_to": [10, 8], **FEATHERED},
    # the canvas made larger, or smaller (Resize Canvas keeps the pixels beyond it): Krita
    # moves the layer, the dream follows (before: "the image was resized", nothing added)
    {"name": "async_canvas_grown", "model": "RGBA", "depth": "U8", **FEATHERED,
     "resize_canvas": [-10, -8, 84, 64]},
    {"name": "async_canvas_shrunk", "model": "RGBA", "depth": "U8",
     "resize_canvas": [4, 2, 50, 40]},
]


SCALED_MID_DREAM = {"async_scaled": {"scale_to": [32, 24]},
                    "async_flat_scaled_up": {"scale_to": [128, 96], "flat": True}}


@pytest.fixture(scope="module")
def changed_mid_dream(krita: KritaHome, endpoint: str) -> dict[str, dict[str, Any]]:
    cases = [{**case, "reference": True, "settings": {**DREAM, "iterations": 20, "octaves": 3}}
             for case in CHANGED_MID_DREAM]
    for name, extra in SCALED_MID_DREAM.items():
        cases.append({"name": name, "model": "RGBA", "depth": "U8", **extra,
                      "settings": {**DREAM, "iterations": 20, "octaves": 3}})
    return krita.run_cases(cases, {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")


@pytest.mark.parametrize("case", CHANGED_MID_DREAM, ids=lambda c: c["name"])
def test_docker_result_follows_a_layer_converted_or_moved_mid_dream(changed_mid_dream, case):
    # (moved by the user, or by Krita as the canvas was resized)
    fact = _fact(changed_mid_dream, case["name"])
    assert {"converted_at", "moved_at", "resized_at"} & set(fact), fact
    assert "error" not in fact, fact
    assert fact["layers_after"][2] == "paint (DeepDream)" and not fact["busy_at_end"]
    assert fact["space"] == fact["layer_space"]
    if "convert_to" in case:
        assert fact["space"] == case["convert_to"]
    # nothing was painted: no word of changes (a converted layer is compared as converted)
    assert fact["message"] == "added layer 'paint (DeepDream)'", fact
    assert fact["unlike_reference"] <= 0.01 * fact["pixels"], fact


@pytest.mark.parametrize("name", SCALED_MID_DREAM)
def test_docker_refuses_to_add_a_dream_of_an_image_resized_mid_dream(changed_mid_dream, name):
    # the dream of the 64x48 layer does not fit the layer Krita scaled; a flat one is alike
    # at its old place once scaled too, which proves nothing (it used to be added there)
    fact = _fact(changed_mid_dream, name)
    assert "scaled_at" in fact, fact
    assert fact.get("error") == "the image was resized while dreaming; nothing was added", fact
    assert fact["layers_after"] == fact["layers_before"] and not fact["busy_at_end"]


# What else a user may do while the daemon dreams.  Painting on the layer or filtering it:
# the dream of the layer as it was read is added, over the changes, which stay on the
# layer, and the status line says so (before, it said nothing); a stroke where the selection
# dreams nothing shows in the result (before, the result covered it with the old pixels).
# Turning the image or the layer: the dream turns with it (before, it was added unturned,
# shifted by the offset Krita gives a turned layer).  Each result is compared with the same
# dream done blocking beforehand, turned the same way by Krita.
CHANGED_NOTE = ("added layer 'paint (DeepDream)'; 'paint' changed while it was dreamed: the "
                "dream shows it as it was and covers the changes, which stay on 'paint'")
WORKED_ON_MID_DREAM = [
    {"name": "async_painted", "model": "RGBA", "depth": "U8", **FEATHERED,
     "paint_rect": [20, 15, 8, 6], "note": True},
    {"name": "async_painted_unselected", "model": "RGBA", "depth": "U8",  # an L shape
     "selection": [12, 10, 36, 26], "selection_add": [[0, 0, 8, 8]],
     "paint_rect": [30, 0, 10, 6], "note": False},
    {"name": "async_filtered", "model": "RGBA", "depth": "U16", "filter": "invert",
     "note": True},
    {"name": "async_image_rotated", "model": "RGBA", "depth": "U8", "offset": [9, 5],
     **FEATHERED, "rotate_image": math.pi},
    {"name": "async_square_image_turned", "model": "RGBA", "depth": "U16", "size": [48, 48],
     "offset": [-7, 6], "rotate_image": math.pi / 2},
    {"name": "async_oblong_image_turned", "model": "RGBA", "depth": "U8", "offset": [9, 5],
     **FEATHERED, "rotate_image": -math.pi / 2},  # its sides swap: no longer "resized"
    {"name": "async_layer_rotated", "model": "RGBA", "depth": "U8", "offset": [9, 5],
     "rotate_layer": math.pi},
    # an oblong layer turned a quarter (about its centre, rounding a half pixel) and painted
    # beyond its new bounds: they grew, so they no longer tell where it turned (before, the
    # dream was added unturned, and the status line spoke of changes to the dreamed pixels)
    {"name": "async_layer_turned_and_painted_beside", "model": "RGBA", "depth": "U8",
     "size": [63, 48], "offset": [9, 5], "rotate_layer": math.pi / 2,
     "paint_rect": [0, 0, 6, 6], "note": False},
    {"name": "async_image_rotated_and_painted", "model": "RGBA", "depth": "U8",
     "rotate_image": math.pi, "paint_rect": [20, 15, 8, 6], "note": True},
    # line art in the bottom right quarter, turned to the top left and mostly painted over:
    # the old place, empty now, is as like the mostly empty line art as what is left of it
    # (before, the dream was added there, unturned, and said nothing of the paint)
    {"name": "async_line_art_rotated_and_painted_over", "model": "RGBA", "depth": "U8",
     "sparse": True, "offset": [32, 24], "rotate_image": math.pi,
     "paint_rect": [0, 0, 32, 16], "note": True},
    # line art, not turned, all painted over: empty places beside it, alike only in their
    # emptiness, no longer win (before, the dream was added mirrored, beside its place)
    {"name": "async_line_art_all_painted_over", "model": "RGBA", "depth": "U8",
     "sparse": True, "offset": [24, 0], "paint_rect": [24, 0, 40, 48], "note": True},
]
_WHEN = {"paint_rect": "painted_at", "filter": "filtered_at", "rotate_image": "rotated_at",
         "rotate_layer": "rotated_at"}


@pytest.fixture(scope="module")
def worked_on_mid_dream(krita: KritaHome, endpoint: str) -> dict[str, dict[str, Any]]:
    # (the quick dream: the change is made at its first progress report, whenever it ends)
    cases = [{**case, "reference": True} for case in WORKED_ON_MID_DREAM]
    return krita.run_cases(cases, {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")


@pytest.mark.parametrize("case", WORKED_ON_MID_DREAM, ids=lambda c: c["name"])
def test_docker_result_after_the_layer_was_painted_on_filtered_or_turned_mid_dream(
        worked_on_mid_dream, case):
    fact = _fact(worked_on_mid_dream, case["name"])
    assert all(when in fact for key, when in _WHEN.items() if key in case), fact
    assert "error" not in fact, fact
    assert fact["layers_after"][2] == "paint (DeepDream)" and not fact["busy_at_end"]
    assert fact["left_as_the_user_left_it"], fact  # the user's layer is never touched
    assert fact["message"] == (CHANGED_NOTE if case.get("note")
                               else "added layer 'paint (DeepDream)'"), fact
    # where it belongs, the dream of what was read (but for a stroke where nothing is dreamed)
    assert fact["unlike_reference"] <= 0.01 * fact["pixels"], fact
    if "paint_rect" in case:
        _, _, width, height = case["paint_rect"]
        assert fact["stroke_pixels"] == width * height
        # painted where it is dreamed: the dream covers it; elsewhere the result shows it
        assert fact["stroke_covered" if case["note"] else "stroke_kept"] == width * height, fact


def test_docker_after_the_layer_was_deleted_grouped_or_the_document_saved_mid_dream(
        krita, endpoint):
    settings = {**DREAM, "iterations": 20, "octaves": 3}
    cases = [{"name": "async_deleted", "remove_layer": True},
             {"name": "async_flattened", "flatten": True},
             {"name": "async_grouped", "into_group": True, "reference": True},
             {"name": "async_saved", "save_as": f"{krita.inside}/saved.kra"}]
    facts = krita.run_cases([{**case, "model": "RGBA", "depth": "U8", "settings": settings}
                             for case in cases],
                            {"DEEPDREAM_ENDPOINT": endpoint}, script="krita_async")
    deleted = _fact(facts, "async_deleted")
    assert "removed_at" in deleted and not deleted["busy_at_end"], deleted
    # before, "the layer is no longer in the document": was anything added?
    assert deleted.get("error") == ("'paint' was deleted or merged while it was dreamed; "
                                    "nothing was added"), deleted
    assert deleted["layers_after"] == ["Background", "on top"]
    # Image > Flatten Image: the layer keeps a parent that is out of the document, and
    # adding the dream there made Krita crash
    flattened = _fact(facts, "async_flattened")
    assert "flattened_at" in flattened and not flattened["busy_at_end"], flattened
    assert flattened.get("error") == ("'paint' was deleted or merged while it was dreamed; "
                                      "nothing was added"), flattened
    assert len(flattened["layers_after"]) == 1, flattened
    # put into a group: the dream goes above it there, as if added before
    grouped = _fact(facts, "async_grouped")
    assert "grouped_at" in grouped and "error" not in grouped, grouped
    assert grouped["layers_after"] == ["Background", "group", "on top"]
    assert grouped["siblings"] == ["paint", "paint (DeepDream)"], grouped
    assert grouped["message"] == "added layer 'paint (DeepDream)'"
    assert grouped["unlike_reference"] == 0 and grouped["original_unchanged"], grouped
    saved = _fact(facts, "async_saved")
    assert saved.get("saved") and "error" not in saved, saved
    assert saved["layers_after"] == ["Background", "paint", "paint (DeepDream)", "on top"]
    assert saved["original_unchanged"] and not saved["busy_at_end"]


def test_docker_reports_a_broken_config_file_in_one_line(krita):
    # a hand-edited client.json that is not JSON: the helper thread looking for the daemon
    # died with a ValueError, and the docker said "connecting…" for ever
    (krita.outside / "broken.json").write_text('{"endpoint": ')
    env = {"DEEPDREAM_CONFIG": f"{krita.inside}/broken.json"}
    case = {"name": "async_broken_config", "model": "RGBA", "depth": "U8", "limit_ms": 30_000}
    fact = _fact(krita.run_cases([case], env, script="krita_async"), "async_broken_config")
    assert "broken.json is not valid JSON" in fact.get("error", ""), fact
    assert "\n" not in fact["error"]
    assert fact["layers_after"] == fact["layers_before"]
    assert fact["original_unchanged"] and not fact["busy_at_end"]
    # the scripting entry point says it with a DreamError too, not a ValueError
    fact = _fact(krita.run_cases([{**case, "name": "broken_config"}], env), "broken_config")
    assert "broken.json is not valid JSON" in fact.get("error", ""), fact



