"""Helpers the test folders share."""

from pathlib import Path

#: the material handed to the project (models, photos), beside the checkout as ../shared
MATERIAL = Path(__file__).resolve().parents[3] / "shared"
#: the tiny random-weight models file every test folder uses
TINY_MODELS = Path(__file__).with_name("tiny_models.toml")
