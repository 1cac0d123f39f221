"""Run inside gimp-console-3.0 (python-fu-eval): one ``FACT`` with case ``argument``, the
preset argument of plug-in-deepdream as GIMP's PDB describes it to scripts and dialogs, then
dream_cases.py's cases (DD_CASES)."""

from gi.repository import Gimp
from pdb_call import fact

spec = Gimp.get_pdb().lookup_procedure("plug-in-deepdream").find_argument("preset")
choice = Gimp.param_spec_choice_get_choice(spec)
fact(case="argument", type=spec.__gtype__.name,
     default=Gimp.param_spec_choice_get_default(spec),
     choices={nick: choice.get_label(nick) for nick in choice.list_nicks()})

import dream_cases  # noqa: E402, F401  (runs the cases)
