"""The GIMP 3 plug-in in real GIMP 3.0 (headless, in the cached Debian trixie root).

The plug-in is installed the way a user would (``install.py plugin gimp DIR``) into the
plug-ins folder of a HOME inside the root; a real daemon (tiny random model) runs on the
host's loopback, which the chroot shares.  Batch scripts in gimp_scripts/ build images, call
``plug-in-deepdream`` through the PDB and print JSON facts that the tests below check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deepdream_protocol.client import Client

from tests.support.daemon import daemon_process, free_port
from tests.support.hosts import GIMP_PLUGINS, HostHome, facts, host_home, install_plugin

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
# Tiny and quick: the tiny random GoogLeNet, two octaves of two steps.
DREAM = {"model": "tiny", "iterations": 2, "octaves": 2, "step": 2.0, "jitter": 4, "seed": 3}
# Far too long to finish while a test waits: only a cancel ends it.
# 12 distinct octaves of 500 steps (a scale of 1.0 would fold them into one, which a quiet
# machine finishes before the GUI test's Cancel click lands)
LONG_DREAM = {**DREAM, "iterations": 500, "octaves": 12, "octave-scale": 1.02}
CASES = ("rgb_u8", "rgba_u16", "linear_float", "gray", "group_offsets", "feathered_selection",
         "profiled_selection", "double", "selection_ignored", "small_selection")

#: a layer with this lock (or in a group with "Lock pixels") dreams into an unlocked copy
LOCKED = ("locked_pixels", "locked_alpha", "locked_position", "locked_group")

#: cases the plug-in must refuse -> what its message must name
REFUSED = {"indexed": "indexed", "floating": "floating selection",
           "unknown_model": "no-such-model", "unknown_layer": "no_such_layer",
           "selection_beside": "selection does not overlap", "foreign_layer": "another image",
           "interactive_group": "layer group",
           "mask_selected": "the layer mask of 'masked' is selected; click the layer's own "
                            "thumbnail"}


@pytest.fixture(scope="module")
def gimp(host_root: Path) -> Iterator[HostHome]:
    with host_home("gimp", "gimp_scripts") as home:
        plugins = home.outside / GIMP_PLUGINS
        install_plugin("gimp", plugins)
        # No first-start welcome dialog or update check in the GUI run.
        (plugins.parent / "gimprc").write_text("(show-welcome-dialog no)\n(check-updates no)\n")
        yield home


def dream_env(endpoint: str, cases: tuple[str, ...] | list[str], **extra: str) -> dict[str, str]:
    return {"DEEPDREAM_ENDPOINT": endpoint, "DD_CASES": ",".join(cases),
            "DD_SETTINGS": json.dumps(DREAM), **extra}


@pytest.fixture(scope="module")
def dreamed(gimp: HostHome, endpoint: str) -> dict[str, dict]:
    """One GIMP run dreams every case (GIMP start-up is the slow part)."""
    cases = [*CASES, *LOCKED, "text", "effects", *REFUSED]
    return facts(gimp.run_gimp("dream_cases.py", dream_env(endpoint, cases)))


def assert_new_layer_right(fact: dict) -> None:
    assert fact["status"] == "success", fact["error"]
    assert fact["layers_added"] == 1
    assert fact["new_above_original"] and fact["same_parent"]
    assert fact["offsets"] == fact["original_offsets"]
    assert fact["size"] == fact["original_size"]
    assert fact["bpp"] == fact["original_bpp"]
    assert fact["precision_after"] == fact["precision_before"]
    assert fact["original_identical"]
    assert fact["new_name"] == "DeepDream (tiny, 2×2, seed 3)"  # (no layer: the model's own)
    assert fact["changed_where_selected"] > 0.5


@pytest.mark.parametrize("case", CASES)
def test_dream_adds_a_new_layer_above_in_the_layers_own_format(dreamed: dict, case: str
                                                                ) -> None:
    assert_new_layer_right(dreamed[case])


def test_high_precision_layers_keep_their_precision(dreamed: dict) -> None:
    assert dreamed["rgba_u16"]["babl"] == "R'G'B'A u16"
    assert dreamed["rgba_u16"]["precision_after"] == "u16-non-linear"
    assert dreamed["linear_float"]["babl"] == "RGBA float"
    assert dreamed["linear_float"]["precision_after"] == "float-linear"
    assert dreamed["gray"]["babl"] == "Y'A u8"
    assert dreamed["double"]["precision_after"] == "double-non-linear"


@pytest.mark.parametrize("case", ["feathered_selection", "profiled_selection",
                                  "small_selection"])
def test_selection_leaves_unselected_pixels_bit_identical(dreamed: dict, case: str) -> None:
    fact = dreamed[case]
    assert fact["unselected_pixels"] > 0
    assert fact["changed_where_unselected"] == 0


@pytest.mark.parametrize("case", LOCKED)
def test_locked_layer_dreams_into_a_writable_copy_and_keeps_its_locks(dreamed: dict, case: str
                                                                       ) -> None:
    # GIMP kills a plug-in writing to a locked layer: the copy carried the lock with it.
    fact = dreamed[case]
    assert_new_layer_right(fact)
    assert not fact["locks"]["pixels"] and not fact["locks"]["alpha"]
    assert fact["original_locks"][0] == fact["original_locks"][1]


def test_text_layer_dreams_into_a_plain_pixel_layer_that_looks_the_same(dreamed: dict) -> None:
    # A text layer result would be rendered again, dream lost, when edited with the Text tool.
    fact = dreamed["text"]
    assert_new_layer_right(fact)
    assert not fact["is_text"]
    # GIMP's text parasite stays on the source layer: copied, it made the result a text layer
    # again once the image was saved and opened.
    assert "gimp-text-layer" in fact["original_parasites"]
    assert not fact["reloaded_is_text"]
    assert fact["parasites"] == {"deepdream-test-note": "keep me"}
    # What Layer.copy() would carry: the look, its layer effects and the position lock.
    assert fact["looks"] == fact["original_looks"]
    assert fact["locks"]["position"]
    looks = fact["looks"]
    assert {k: looks[k] for k in ("opacity", "mode", "visible", "color_tag")} == {
        "opacity": 70.0, "mode": "multiply", "visible": False, "color_tag": "orange"}
    assert [(e["operation"], e["visible"]) for e in looks["effects"]] == [
        ("gegl:dropshadow", False), ("gegl:gaussian-blur", True)]
    assert looks["effects"][1]["settings"]["std-dev-x"] == 3.0
    assert looks["effects"][1]["opacity"] == pytest.approx(0.8)


def test_layer_with_effects_and_a_mask_dreams_into_a_layer_that_looks_the_same(
        dreamed: dict) -> None:
    fact = dreamed["effects"]
    assert_new_layer_right(fact)
    assert fact["looks"] == fact["original_looks"]
    looks = fact["looks"]
    assert (looks["opacity"], looks["mode"], looks["visible"]) == (60.0, "screen", False)
    assert looks["mask"] is not None and looks["mask"][0] is False
    assert [(e["operation"], e["visible"]) for e in looks["effects"]] == [
        ("gegl:dropshadow", False), ("gegl:gaussian-blur", True)]
    assert looks["effects"][1]["settings"]["std-dev-x"] == 3.0


@pytest.mark.parametrize("case", REFUSED)
def test_refusal_names_the_problem_and_leaves_the_image_alone(dreamed: dict, case: str) -> None:
    fact, reason = dreamed[case], REFUSED[case]
    assert fact["status"] == "execution-error"
    assert reason in fact["error"]
    assert fact["stack_unchanged"] and fact["original_identical"]


def test_a_dream_from_noise_on_a_new_clear_layer_shows(gimp: HostHome, endpoint: str) -> None:
    # (the layer's transparency was kept: an invisible dream)
    fact = facts(gimp.run_gimp("dream_cases.py",
                               dream_env(endpoint, ["from_noise_clear"])))["from_noise_clear"]
    assert fact["status"] == "success", fact["error"]
    assert fact["opaque"] == 1.0 and fact["original_identical"], fact


def test_a_guide_image_is_a_file_the_dream_reads(gimp: HostHome, endpoint: str) -> None:
    """A file argument (the dialog's file chooser; it was a text field for a path)."""
    from PIL import Image

    stripes = Image.new("RGB", (32, 32), (250, 40, 10))
    for y in range(0, 32, 4):
        stripes.paste((10, 40, 250), (0, y, 32, y + 1))
    stripes.save(gimp.outside / "guide.png")
    env = dream_env(endpoint, ["guided", "guided_off", "unguided", "guide_missing"],
                    DD_GUIDE=f"{gimp.inside}/guide.png")
    found = facts(gimp.run_gimp("dream_cases.py", env))
    assert_new_layer_right(found["guided"])
    # GTK's chooser cannot be emptied once a file is chosen (and GIMP remembers it): with
    # "Use the guide image" off, the same dream comes out unguided
    assert found["guided_off"]["status"] == "success", found["guided_off"]
    assert found["guided_off"]["result_digest"] == found["unguided"]["result_digest"]
    assert found["guided"]["result_digest"] != found["unguided"]["result_digest"]
    # GIMP itself refuses a file argument (to open) that names no file, before the plug-in
    # runs: the image as it was
    missing = found["guide_missing"]
    assert missing["status"] == "calling-error", missing
    assert missing["stack_unchanged"] and missing["original_identical"]
    assert missing["new_items"] == []


def test_stdlib_transport_dreams_without_pyzmq(gimp: HostHome, endpoint: str) -> None:
    # A zmq module that cannot import, ahead of the root's python3-zmq: only the standard
    # library ZMTP client can carry the job.
    poison = gimp.outside / "no-pyzmq"
    poison.mkdir(exist_ok=True)
    (poison / "zmq.py").write_text("raise ImportError('pyzmq hidden by the test')\n")
    env = dream_env(endpoint, ["rgb_u8"], DEEPDREAM_TRANSPORT="stdlib",
                    PYTHONPATH=f"{gimp.inside}/no-pyzmq")
    assert_new_layer_right(facts(gimp.run_gimp("dream_cases.py", env))["rgb_u8"])


def test_a_failure_adding_the_result_leaves_the_image_as_it_was(gimp: HostHome,
                                                                 endpoint: str) -> None:
    # The plug-in's Python starts with a sitecustomize that makes writing the result raise.
    cases = ["rgb_u8", "locked_pixels", "text", "effects"]
    env = dream_env(endpoint, cases, PYTHONPATH=f"{gimp.inside}/scripts/failing_write")
    found = facts(gimp.run_gimp("dream_cases.py", env))
    assert sorted(found) == sorted(cases)
    for case, fact in found.items():
        assert fact["status"] == "execution-error", case
        assert "injected write failure" in fact["error"], case
        assert "\n" not in fact["error"].strip(), case
        assert fact["stack_unchanged"] and fact["original_identical"], case
        assert fact["original_looks_kept"], case
        # No half-made layer left outside the image.  GIMP 3.0.4 never frees a layer that
        # got a layer effect outside an image, so the throwaway copy carries none.
        assert fact["new_items"] == [], case


@pytest.mark.parametrize("case", ["text", "effects"])
def test_a_failure_copying_the_effects_leaves_the_image_as_it_was(
        gimp: HostHome, endpoint: str, case: str) -> None:
    # The effects are copied onto the result, in the image by then, and the copy fails:
    # the result goes, with its effects, and nothing is left behind outside the image.
    env = dream_env(endpoint, [case], DD_FAIL="copy_filters",
                    PYTHONPATH=f"{gimp.inside}/scripts/failing_write")
    fact = facts(gimp.run_gimp("dream_cases.py", env))[case]
    assert fact["status"] == "execution-error"
    assert "could not add the result layer: injected copy_filters failure" in fact["error"]
    assert fact["stack_unchanged"] and fact["original_identical"]
    assert fact["original_looks_kept"]
    assert fact["new_items"] == []


@pytest.mark.parametrize("how", ["append", "settings"])
def test_an_effect_gimp_cannot_copy_is_left_off_and_the_dream_is_kept(
        gimp: HostHome, endpoint: str, how: str) -> None:
    # Simulated: refused_effect/sitecustomize.py makes GIMP, in the plug-in's process, refuse
    # to copy the blur of the layer's two effects: its append is ignored, as GIMP 3.0.4 does
    # for an effect with an auxiliary input (which a script cannot make to test with), or
    # setting the copy's opacity raises.
    env = dream_env(endpoint, ["effects"], DD_REFUSED_EFFECT="gegl:gaussian-blur",
                    DD_REFUSED_HOW=how, PYTHONPATH=f"{gimp.inside}/scripts/refused_effect")
    run = gimp.run_gimp("effects_left.py", env)
    found = facts(run)
    fact = found["effects"]
    assert_new_layer_right(fact)  # the dream is kept
    looks = fact["looks"]
    assert [e["operation"] for e in looks["effects"]] == ["gegl:dropshadow"]
    assert looks["effects"] == fact["original_looks"]["effects"][:1]  # copied, settings too
    assert looks["mask"] == fact["original_looks"]["mask"]
    assert fact["original_looks_kept"]
    # GIMP's console shows the plug-in's message as "DeepDream-Warning: ...": one line
    messages = [line for line in f"{run.stdout}\n{run.stderr}".splitlines()
                if "could not copy" in line]
    assert messages == ["DeepDream-Warning: The dream was added, but GIMP could not copy "
                        "these layer effects onto it: Gaussian Blur"]
    # Nothing half-made: once the image is deleted no effect lives on (an unappended copy
    # would, until GIMP quits).
    assert found["left"]["effects"] == []


def test_preset_is_a_drop_down_and_a_script_names_one(gimp: HostHome, endpoint: str) -> None:
    env = {**dream_env(endpoint, ["rgb_u8"]),
           "DD_SETTINGS": json.dumps({**DREAM, "preset": "subtle"})}
    found = facts(gimp.run_gimp("preset_choice.py", env))
    argument = found["argument"]
    assert argument["type"] == "GimpParamChoice"
    assert argument["default"] == "none"
    assert argument["choices"] == {
        "none": "None", "classic": "Classic", "shallow-textures": "Shallow textures",
        "deep-objects": "Deep objects", "animal": "Animal", "subtle": "Subtle",
        "painterly": "Painterly", "tileable-texture": "Tileable texture"}
    fact = found["rgb_u8"]
    assert fact["status"] == "success", fact["error"]
    assert fact["new_name"] == "DeepDream (preset subtle, seed 3)"


#: what a user does to the image while the daemon dreams -> what the plug-in then says
#: (None: the dream is added)
MEANWHILE = {
    "move": None, "precision": None, "flip": None, "rotate": None, "image_flip": None,
    "rotate_90": None,
    "paint": None, "paint_unselected": None, "rotate_90_paint_unselected": None,
    "rotate_90_paint": "the layer's sides were swapped and its selected pixels changed",
    "scale": "the layer was scaled, cropped or resized while dreaming",
    "crop": "the layer was scaled, cropped or resized while dreaming",
    "delete": "the layer was deleted while dreaming; nothing was added",
    "flatten": "the layer was deleted while dreaming; nothing was added",
    "floating": "the image changed while dreaming, so nothing was added: anchor the floating",
}


CHANGED = ("DeepDream-Warning: The dream was added, but the layer changed while it was "
           "dreamed: the dream shows it as it was and covers the changes, which stay on the "
           "layer.")


@pytest.fixture(scope="module")
def meanwhile_run(gimp: HostHome, endpoint: str) -> subprocess.CompletedProcess[str]:
    """Each action of MEANWHILE done by the plug-in's own process once the dream is back and
    before it is added, as the user may do while GIMP waits for the daemon."""
    env = dream_env(endpoint, [], DD_ACTIONS=",".join(MEANWHILE),
                    PYTHONPATH=f"{gimp.inside}/scripts/meanwhile")
    return gimp.run_gimp("meanwhile.py", env)


@pytest.fixture(scope="module")
def meanwhile(meanwhile_run: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return facts(meanwhile_run)


@pytest.mark.parametrize("action", MEANWHILE)
def test_changes_while_dreaming_get_the_dream_where_it_fits_or_a_message(
        meanwhile: dict, action: str) -> None:
    fact, refusal = meanwhile[action], MEANWHILE[action]
    names = [layer["name"] for layer in fact["layers"]]
    if refusal is None:
        assert fact["status"] == "success", fact["error"]
        new, target = fact["layers"][0], fact["layers"][1]
        assert new["name"].startswith("DeepDream (") and target["name"] == "target"
        assert new["offsets"] == target["offsets"] and new["size"] == target["size"]
        # on the pixels it was dreamed from: a flipped or rotated layer gets it turned with
        # it (it used to be added unturned); painted on, the dream covers the stroke
        if action.endswith("paint_unselected"):
            # painted where the round selection dreams nothing: the result shows the stroke
            # (it used to cover it with the pixels as they were read; turned a quarter, it
            # was refused as a scaled layer)
            assert fact["stroke_in_result"], fact
        else:
            assert fact["unlike_the_dream"] == 0, fact
        return
    # a scaled or cropped layer once got a piece of the dream at the wrong place, a deleted
    # one a dream at the top of the stack, a pasted selection was anchored
    assert fact["status"] == "execution-error"
    assert refusal in fact["error"] and "\n" not in fact["error"].strip()
    assert not any(name.startswith("DeepDream") for name in names), names
    if action == "flatten":  # its one layer is Flatten Image's own
        assert len(names) == 1 and len(fact["new_items"]) == 1, fact
    else:
        assert fact["new_items"] == []


def test_a_layer_moved_while_dreaming_gets_the_dream_where_it_now_is(meanwhile: dict) -> None:
    assert meanwhile["move"]["layers"][0]["offsets"] == [7, 5]


def test_a_layer_painted_on_while_dreaming_is_said_once(
        meanwhile_run: subprocess.CompletedProcess[str]) -> None:
    # only "paint" changed the dreamed pixels; a turn or a move is no change (GIMP used
    # to say nothing of a stroke the dream covers)
    said = [line for line in f"{meanwhile_run.stdout}\n{meanwhile_run.stderr}".splitlines()
            if "changed while it was dreamed" in line]
    assert said == [CHANGED]


def test_no_daemon_gives_an_error_and_leaves_the_image_alone(gimp: HostHome) -> None:
    # Nothing listens on the port and the configured start command fails at once.
    env = dream_env(f"tcp://127.0.0.1:{free_port()}", ["rgb_u8"],
                    DEEPDREAM_DAEMON_CMD="/bin/false")
    fact = facts(gimp.run_gimp("dream_cases.py", env))["rgb_u8"]
    assert fact["status"] == "execution-error"
    assert "daemon" in fact["error"].lower()
    assert fact["stack_unchanged"] and fact["original_identical"]


def test_a_broken_config_gives_a_one_line_error_not_a_crash(gimp: HostHome) -> None:
    # No daemon answers and the config's start command is a number: the user is told what
    # to fix, in one line, the image untouched.
    config = gimp.outside / "broken-client.json"
    config.write_text('{"daemon_cmd": 5}')
    env = dream_env(f"tcp://127.0.0.1:{free_port()}", ["rgb_u8"],
                    DEEPDREAM_CONFIG=f"{gimp.inside}/broken-client.json")
    fact = facts(gimp.run_gimp("dream_cases.py", env))["rgb_u8"]
    assert fact["status"] == "execution-error"
    assert fact["error"].startswith("DeepDream: ") and "\n" not in fact["error"].strip()
    assert "broken-client.json must be a command line or a list of its words, not 5" in \
        fact["error"]
    assert fact["stack_unchanged"] and fact["original_identical"]


def test_an_image_over_the_daemons_limit_is_refused_before_it_is_sent(gimp: HostHome) -> None:
    # 64x48 = 3,072 pixels against a daemon that takes 1,000: the plug-in knows the limit from
    # the daemon's hello, so the daemon never receives the job
    with daemon_process(extra_args=("--max-pixels", "1000")) as daemon:
        fact = facts(gimp.run_gimp("dream_cases.py", dream_env(daemon.endpoint,
                                                               ["rgb_u8"])))["rgb_u8"]
        log = daemon.log.read_text()
    assert fact["status"] == "execution-error"
    assert "64x48 is 3,072 pixels; this daemon takes at most 1,000" in fact["error"]
    assert "\n" not in fact["error"].strip()
    assert fact["stack_unchanged"] and fact["original_identical"]
    assert " from " not in log and "too_large" not in log, log  # no job reached it


def test_dialog_under_xvfb_undo_last_values_and_cancel(gimp: HostHome, endpoint: str) -> None:
    env = dream_env(endpoint, [], DD_SHOT=f"{gimp.inside}/dialog.png",
                    DD_PROGRESS_SHOT=f"{gimp.inside}/progress.png",
                    DD_LONG_SETTINGS=json.dumps(LONG_DREAM))
    steps = facts(gimp.run_gimp("dialog_gui.py", env, gui=True), key="step")
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    for shot in ("dialog.png", "progress.png"):  # kept as the test's artifacts
        shutil.copy(gimp.outside / shot, artifacts / f"gimp-deepdream-{shot}")
    dialog, undo = steps["dialog"], steps["undo"]
    assert dialog["helper"] == 0, "the dialog never appeared"
    assert dialog["status"] == "success", dialog["error"]
    assert len(dialog["layers"]) == 2 and dialog["layers"][0].startswith("DeepDream (tiny,")
    # the result, with the photo's layer effect, is one undo step: one Ctrl+Z, one Ctrl+Y
    assert undo["dreamed_effects"] == ["gegl:gaussian-blur"]
    assert undo["layers"] == ["photo"]
    assert steps["redo"]["layers"] == dialog["layers"]
    assert steps["redo"]["effects"] == ["gegl:gaussian-blur"]
    assert steps["undo_again"]["layers"] == ["photo"]
    # A repeat (WITH_LAST_VALS) dreams with what the dialog accepted: the tiny model, not
    # the default one, so the same name comes back.
    repeat = steps["last_values"]
    assert repeat["status"] == "success"
    assert repeat["layers"] == dialog["layers"]
    cancel = steps["cancel"]
    assert cancel["helper"] == 0 and cancel["status"] == "cancel" and cancel["unchanged"]
    # Cancel on the progress bar: GIMP closes the plug-in, the daemon drops the job.
    stopped = steps["progress_cancel"]
    assert stopped["status"] != "success" and stopped["unchanged"]
    with Client(endpoint) as client:
        assert wait_until(lambda: client.ping().get("state") == "idle", 120), \
            "the daemon kept dreaming after Cancel"


def plugin_pids(gimp: HostHome) -> list[int]:
    """Our installed plug-in's processes (their command line names its path in our HOME)."""
    script = f"{gimp.inside}/{GIMP_PLUGINS}/deepdream/deepdream.py".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and script in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def wait_until(predicate: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_cancel_closes_the_plugin_and_stops_the_job_on_the_daemon(gimp: HostHome,
                                                                    endpoint: str) -> None:
    # Cancel on GIMP's progress bar closes the plug-in process (GP_QUIT, then SIGKILL);
    # the test does the same to the plug-in while the daemon runs a job far too long to end
    # on its own, then checks the daemon drops it and the image is untouched.
    env = {**dream_env(endpoint, ["rgb_u8"]), "DD_SETTINGS": json.dumps(LONG_DREAM)}
    result: list[subprocess.CompletedProcess[str]] = []
    runner = threading.Thread(target=lambda: result.append(gimp.run_gimp("dream_cases.py", env)))
    runner.start()
    with Client(endpoint) as client:
        try:
            started = wait_until(lambda: client.ping().get("state") == "busy"
                                 or not runner.is_alive(), 180)
            assert started and runner.is_alive(), f"the job never started: {result}"
            for pid in plugin_pids(gimp):
                os.kill(pid, signal.SIGKILL)
        finally:
            runner.join(300)
        fact = facts(result[0])["rgb_u8"]
        assert fact["status"] != "success"
        assert fact["stack_unchanged"] and fact["original_identical"]
        assert wait_until(lambda: client.ping().get("state") == "idle", 120), \
            "the daemon kept dreaming for a plug-in that was gone"


def test_every_gimp_precision_maps_to_the_matching_wire_format(gimp: HostHome) -> None:
    found = facts(gimp.run_gimp("formats.py", {}))
    expected_dtype = {"u8": "u8", "u16": "u16", "u32": "f32", "half": "f16", "float": "f32",
                      "double": "f32"}
    assert len(found) == 4 * len(expected_dtype) * 3  # linear, non-linear, perceptual
    for case, fact in found.items():
        precision, base, alpha = case.split()
        sample, trc = precision.split("-", 1)
        assert fact["read_bytes"] == fact["frame_size"], case
        assert fact["dtype"] == expected_dtype[sample], case
        assert fact["transfer"] == ("linear" if trc == "linear" else "srgb"), case
        assert fact["layout"] == ("RGB" if base == "rgb" else "G") + ("A" if alpha == "alpha"
                                                                      else ""), case
        assert fact["mask_dtype"] == ("u8" if sample == "u8" else "f32"), case


def test_a_preset_fills_the_dialogs_fields_and_what_they_show_is_sent(gimp: HostHome) -> None:
    steps = facts(gimp.run_gimp("preset_fill.py", {}), key="step")
    chosen = steps["chosen"]["shown"]
    assert chosen == {"preset": "deep-objects", "octaves": 5, "layer": "inception4e",
                      "iterations": 15, "transform": True, "strength": 1.0, "seed": 9,
                      "octave-scale": 1.5}  # every field but the seed takes the look
    set_back = steps["set_back"]
    # the issue: octaves set back to 4 (the default) after choosing deep-objects ran 5
    assert set_back["shown"]["octaves"] == 4
    assert set_back["sent"] == {"octaves": 4, "layer": "inception4e", "iterations": 15,
                                "strength": 1.0, "seed": 9}
    assert set_back["repeat"] == set_back["sent"]  # Filters › Repeat runs the same
    assert steps["again"]["shown"]["octaves"] == 4
    other = steps["other"]["shown"]
    assert other["octaves"] == 3 and other["strength"] == 0.5 and not other["transform"]
    # Reset and Load Saved Settings set the preset with the rest: the rest stays as set
    # (it used to be overwritten by the preset's look: octaves 3, 5 and 4 here)
    assert steps["reset"]["shown"] == {**other, "octaves": 2}
    assert steps["held"]["shown"] == {**other, "preset": "deep-objects", "octaves": 4}
    assert steps["held_reversed"]["shown"] == {**other, "preset": "classic", "octaves": 4,
                                                "iterations": 7}
    assert steps["chosen_after"]["shown"]["layer"] == "inception4b"  # painterly's
    assert steps["after"]["shown"]["octaves"] == 3  # only while the dialog follows it
    script = steps["script"]
    # a PDB call: what it left at the default takes the preset's value; its own value wins
    assert script["sent"] == {"octaves": 3, "layer": "inception4c", "iterations": 20,
                              "strength": 0.5, "seed": 0}
    assert script["kept"]["strength"] == 0.5  # written back: what ran is what is remembered
