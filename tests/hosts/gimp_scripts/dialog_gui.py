"""Run inside the GIMP GUI under Xvfb (python-fu-eval): open the DeepDream dialog on a shown
image, screenshot it, press OK, then press Ctrl+Z in the image window and print ``FACT``
lines about the layer stack after each step (then Ctrl+Y and Ctrl+Z again); then repeat with
the last values, cancel the dialog, and cancel a long dream from the progress bar.

Environment: DD_SHOT and DD_PROGRESS_SHOT (screenshot paths), DD_SETTINGS (JSON values the
dialog starts from), DD_LONG_SETTINGS (a dream long enough to be cancelled midway).
"""

import json
import os
import subprocess
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from images import image_with_layer  # noqa: E402
from pdb_call import fact, run_deepdream  # noqa: E402


def xdotool(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=60)


img, layer = image_with_layer("photo", Gimp.ImageType.RGB_IMAGE)
# A layer effect: the result gets its copy once it is in the image, in the same undo step.
layer.append_filter(Gimp.DrawableFilter.new(layer, "gegl:gaussian-blur", None))
display = Gimp.Display.new(img)
Gimp.displays_flush()

# The dialog blocks this script inside proc.run(): a helper in the background waits for it,
# takes the screenshot and presses Return (OK is the dialog's default button).
helper = subprocess.Popen(["sh", "-c", """
    win=$(xdotool search --sync --onlyvisible --name 'DeepDream') || exit 1
    sleep 2
    import -window root "$DD_SHOT"
    xdotool windowfocus --sync $win key Return
"""])

status, error = run_deepdream(img, layer, json.loads(os.environ["DD_SETTINGS"]),
                              Gimp.RunMode.INTERACTIVE)
helper.wait(timeout=60)
fact(step="dialog", status=status, error=error, helper=helper.returncode,
     layers=[lay.get_name() for lay in img.get_layers()])


def press(key, layer_count):
    """``key`` in the image window, then wait (10 s at most) for ``layer_count`` layers."""
    if window:
        xdotool("windowfocus", "--sync", window[-1], "key", key)
    for _ in range(50):
        if len(img.get_layers()) == layer_count:
            break
        time.sleep(0.2)


def top_effects():
    return [f.get_operation_name() for f in img.get_layers()[0].get_filters()]


dreamed_effects = top_effects() if len(img.get_layers()) == 2 else None
# One Ctrl+Z in the image window must take the whole dream back, one Ctrl+Y bring it all
# back (its effect too), and a second Ctrl+Z take it back again.
window = xdotool("search", "--onlyvisible", "--name", "GIMP").stdout.split()
press("ctrl+z", 1)
fact(step="undo", windows=len(window), layers=[lay.get_name() for lay in img.get_layers()],
     dreamed_effects=dreamed_effects)
press("ctrl+y", 2)
fact(step="redo", layers=[lay.get_name() for lay in img.get_layers()],
     effects=top_effects())
press("ctrl+z", 1)
fact(step="undo_again", layers=[lay.get_name() for lay in img.get_layers()])

# "Repeat" runs with the values the dialog last accepted, not the defaults.
status, _ = run_deepdream(img, layer, {}, Gimp.RunMode.WITH_LAST_VALS)
fact(step="last_values", status=status,
     layers=[lay.get_name() for lay in img.get_layers()])
# Cancel in the dialog: an error status (not success) and the image as it was.
helper = subprocess.Popen(["sh", "-c", """
    win=$(xdotool search --sync --onlyvisible --name 'DeepDream') || exit 1
    sleep 1
    xdotool windowfocus --sync $win key Escape
"""])
before = [lay.get_name() for lay in img.get_layers()]
status, _ = run_deepdream(img, layer, {}, Gimp.RunMode.INTERACTIVE)
helper.wait(timeout=60)
fact(step="cancel", status=status, helper=helper.returncode,
     unchanged=[lay.get_name() for lay in img.get_layers()] == before)
# Cancel on the progress bar while a long dream runs: GIMP closes the plug-in, the call
# fails and the image is as it was (the test then checks that the daemon stopped the job).
# The status bar's Cancel button sits here in GIMP 3.0.4's default 1280x900 layout.
helper = subprocess.Popen(["sh", "-c", """
    sleep 8
    import -window root "$DD_PROGRESS_SHOT"
    xdotool mousemove 518 582 click 1
"""])
status, _ = run_deepdream(img, layer, json.loads(os.environ["DD_LONG_SETTINGS"]))
helper.wait(timeout=60)
fact(step="progress_cancel", status=status, helper=helper.returncode,
     unchanged=[lay.get_name() for lay in img.get_layers()] == before)
display.delete()
