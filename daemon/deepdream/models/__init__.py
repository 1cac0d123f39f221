"""Dreamable networks: the registry of names, their architectures and weights."""

from .network import DreamModel
from .registry import ModelSpec, available, load
from .weights import ModelError

__all__ = ["DreamModel", "ModelError", "ModelSpec", "available", "load"]
