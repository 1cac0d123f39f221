"""Runs inside real Krita (kritarunner): prints the DeepDream settings Krita has saved, as a
fresh Krita start sees them.  Output: one line ``DD_RESULT <json>``."""

from __future__ import annotations

import json
from typing import Any

from deepdream_krita import preferences


def main(args: Any) -> None:
    print("DD_RESULT " + json.dumps([{"name": "saved", **preferences.load_saved()}]), flush=True)
