"""Test-only Krita plug-in for tests/hosts/test_install_hosts.py: once the window is up
(every plug-in is loaded by then), report what Krita loaded and which zmq/msgpack the
DeepDream plug-in gets, say hello to the daemon over pyzmq, then quit.  The facts go to
$DD_OUT as JSON.

It imports nothing of deepdream_krita's own (that would load it): Qt comes from PyQt.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from krita import Krita

try:
    from PyQt5.QtCore import QTimer
except ImportError:
    from PyQt6.QtCore import QTimer

tries = {"wait": 0, "quit": 0}


def _probe() -> None:
    facts = {"python": "{}.{}".format(*sys.version_info[:2])}
    try:
        facts["loaded"] = "deepdream_krita" in sys.modules
        facts["dockers"] = [type(d).__name__ for d in Krita.instance().dockers()]
        import msgpack
        import zmq
        facts["zmq"], facts["msgpack"] = zmq.__file__, msgpack.__file__
        from deepdream_protocol.client import Client
        client = Client(os.environ["DEEPDREAM_ENDPOINT"], transport="zmq", timeout=60)
        try:
            facts["hello"] = client.hello()
        finally:
            client.close()
    except Exception:
        facts["crash"] = traceback.format_exc()
    with open(os.environ["DD_OUT"], "w") as f:
        json.dump(facts, f, default=str)
    QTimer.singleShot(1000, _quit)


def _quit() -> None:
    # file_quit is ignored while Krita is still starting up: retry, then leave hard
    tries["quit"] += 1
    if tries["quit"] > 30:
        os._exit(0)
    Krita.instance().action("file_quit").trigger()
    QTimer.singleShot(1000, _quit)


def _wait() -> None:
    tries["wait"] += 1
    window = Krita.instance().activeWindow()
    if (window is None or not window.qwindow().isVisible()) and tries["wait"] < 600:
        QTimer.singleShot(250, _wait)
    else:
        _probe()


QTimer.singleShot(250, _wait)
