"""deepdream: the DeepDream engine, model registry, command line and daemon."""

__version__ = "0.1.0"
