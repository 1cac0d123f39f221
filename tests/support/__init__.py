"""Helpers the test folders share."""

from pathlib import Path

#: the material handed to the project (models, photos), beside the checkout as ../shared
MATERIAL = Path(__file__).resolve().parents[3] / "shared"
