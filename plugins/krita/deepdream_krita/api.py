"""The scripting entry point: ``dream_layer(document, node, settings) -> Node``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdream_protocol.settings import wire_settings

from . import connection, job, preferences


def dream_layer(document: Any, node: Any, settings: Mapping[str, Any] | None = None) -> Any:
    """Dream ``node`` and add the result as a new paint layer directly above it.

    Blocks until the daemon answers (starting it when none is running); the same behaviour
    as the docker's Dream button.  ``settings`` uses the names of
    ``deepdream_protocol.settings.SETTINGS`` plus ``use_selection``; missing ones take the
    named preset's values, else their defaults.  Raises ``DreamError`` with a one-line
    reason; the document is then unchanged.
    """
    values = preferences.complete(settings)
    prepared = job.prepare(document, node, values["use_selection"], values["from_noise"])
    with connection.connected() as client:
        dreamed = connection.dream_blocking(client, wire_settings(values), prepared)
    return prepared.finish(dreamed)
