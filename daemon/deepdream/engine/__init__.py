"""The dreaming engine: settings, the octave/step loop, objectives, priors and tiling.

It knows nothing of sockets or hosts; see docs/ARCHITECTURE.md for the contract.
"""

from .dream import Cancelled, DreamError, OutOfMemory, Progress, dream, octave_sizes
from .objectives import Objective, layer_l2, layers_l2
from .settings import DreamSettings, SettingsError

__all__ = [
    "Cancelled", "DreamError", "DreamSettings", "Objective", "OutOfMemory", "Progress",
    "SettingsError",
    "dream", "layer_l2", "layers_l2", "octave_sizes",
]
