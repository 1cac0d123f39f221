"""Run inside gimp-console-3.0 (python-fu-eval): dream_cases.py's cases (DD_CASES), then one
``FACT`` with case ``left``: the ids of the layer effects still alive once every case's image
is deleted.  A copy of an effect the plug-in made and never appended would be one: GIMP 3.0.4
frees it only when it quits."""

import dream_cases  # noqa: F401  (runs the cases, deleting each image)
from gi.repository import Gimp
from pdb_call import fact

fact(case="left", effects=[i for i in range(1, 200) if Gimp.DrawableFilter.id_is_valid(i)])
