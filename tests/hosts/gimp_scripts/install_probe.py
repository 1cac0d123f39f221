"""Run inside gimp-console-3.0 (python-fu-eval) for tests/hosts/test_install_hosts.py: is
plug-in-deepdream registered, and does one tiny dream succeed?  One ``FACT {json}`` line
(case "install").

Environment: DD_SETTINGS (JSON PDB values).
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from images import image_with_layer  # noqa: E402
from pdb_call import fact, run_deepdream  # noqa: E402

if Gimp.get_pdb().procedure_exists("plug-in-deepdream"):
    img, layer = image_with_layer("photo", Gimp.ImageType.RGBA_IMAGE, width=40, height=32)
    status, error = run_deepdream(img, layer, json.loads(os.environ["DD_SETTINGS"]))
    fact(case="install", registered=True, status=status, error=error,
         layers=[item.get_name() for item in img.get_layers()])
    img.delete()
else:
    fact(case="install", registered=False)
